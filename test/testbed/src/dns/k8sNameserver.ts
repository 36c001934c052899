/*
 * Stand-in for Tailscale's in-cluster ts.net nameserver: the `nameserver` Deployment (image
 * tailscale/k8s-nameserver) that the Tailscale operator runs for a DNSConfig, behind the
 * `nameserver` Service whose ClusterIP this listens on (kube-proxy maps the Service's port 53 to
 * the pod's 1053; here port 53 of the ClusterIP is served directly).
 *
 * Follows tailscale.com v1.102.5:
 *  - cmd/k8s-nameserver/main.go: the handler registered for "ts.net" on miekg/dns's ServeMux
 *    (serve_mux.go: the zone matched case-insensitively; a name outside it is REFUSED) and
 *    `handleFunc`: A gets the name's `ip4` records, NXDOMAIN without any; AAAA its `ip6` records,
 *    NOERROR without answers when it has only IPv4 ones, NXDOMAIN without either; other types
 *    NOTIMP; answers and NXDOMAIN authoritative, RA clear, TTL 0 (`defaultTTL`), record names
 *    looked up case-sensitively (a Go map); `resetRecords`: an absent or empty configuration means
 *    no records, JSON that does not unmarshal or a `version` other than "v1alpha1" is fatal
 *    (`log.Fatalf`), an address of the wrong family is skipped with a log line;
 *  - k8s-operator/utils.go: `Records` {version, ip4, ip6} in key `records.json` of ConfigMap
 *    `dnsrecords`, written by the operator (cmd/k8s-operator/dnsrecords.go); the operator's
 *    deploy/manifests/nameserver/cm.yaml creates that ConfigMap without the key, so a fresh
 *    nameserver serves no records.
 *
 * A fatal configuration makes the real process exit; the pod restarts into the same ConfigMap and
 * crash-loops until it is fixed, while the Service has no ready endpoint and kube-proxy rejects
 * its packets. Modelled by closing the sockets (clients see "connection refused") until
 * `setRecords` gets a configuration that loads.
 *
 * Not modelled: the delay of the kubelet's ConfigMap sync and of the restart back-off (changes
 * apply at once), encoding/json's details (case-insensitive field names, merging, null), the
 * validation of record names (util/dnsname ToFQDN), Go's stricter reading of IP addresses, and
 * the process's own port 1053.
 */
import net from 'node:net';
import {
  AA,
  Rcode,
  canonical,
  hostPort,
  isSubDomain,
  listenDns,
  reply,
  type DnsListener,
  type Packet,
  type Query,
} from './dnsServer';

export interface K8sNameserver {
  /**
   * The `records.json` key of the operator's `dnsrecords` ConfigMap, or `undefined` when the key
   * (or the ConfigMap's data) is absent, as the nameserver reads it from its mounted volume.
   */
  setRecords(recordsJson: string | undefined): void;
  close(): Promise<void>;
  /** `ip:port` this listens on (UDP and TCP). */
  address: string;
}

/** Addresses by record name (without the final dot, case kept). */
interface Records {
  ip4: Map<string, string[]>;
  ip6: Map<string, string[]>;
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** main.go resetRecords: the records of a configuration, or the error that is fatal upstream. */
function loadRecords(
  json: string | undefined,
  log: (m: string) => void,
): Records | Error {
  const records: Records = { ip4: new Map(), ip6: new Map() };
  if (!json) return records;
  const unmarshalError = (why: string) =>
    new Error(`error unmarshalling nameserver configuration: ${why}`);
  let cfg: unknown;
  try {
    cfg = JSON.parse(json);
  } catch (err) {
    return unmarshalError((err as Error).message);
  }
  if (!isObject(cfg)) return unmarshalError('not a JSON object');
  if (cfg.version !== 'v1alpha1') {
    return new Error(
      `unsupported configuration version ${String(cfg.version ?? '')}, supported versions are v1alpha1`,
    );
  }
  for (const family of ['ip4', 'ip6'] as const) {
    const byName = cfg[family] ?? {};
    if (!isObject(byName)) return unmarshalError(`${family} is not an object`);
    for (const [name, ips] of Object.entries(byName)) {
      if (!Array.isArray(ips) || ips.some(ip => typeof ip !== 'string')) {
        return unmarshalError(`${family} of ${name} is not a list of strings`);
      }
      const valid = (ips as string[]).filter(ip => {
        const ok = net.isIP(ip) === (family === 'ip4' ? 4 : 6);
        if (!ok) {
          log(
            `invalid nameserver's configuration: ${ip} is not an ${family === 'ip4' ? 'IPv4' : 'IPv6'} address; skipping this record`,
          );
        }
        return ok;
      });
      if (valid.length > 0)
        records[family].set(name.replace(/^\.|\.$/g, ''), valid);
    }
  }
  return records;
}

/** main.go handleFunc behind the ServeMux's "ts.net" pattern. */
function answer(q: Query, records: Records, log: (m: string) => void): Packet {
  const { name, type } = q.questions[0];
  if (!isSubDomain('ts.net', canonical(name))) return reply(q, Rcode.Refused);
  if (type !== 'A' && type !== 'AAAA') {
    log(
      `[unexpected] nameserver received a query for an unsupported record type: ${name} ${type}`,
    );
    return reply(q, Rcode.NotImp);
  }
  const ip4 = records.ip4.get(name) ?? [];
  const ips = type === 'A' ? ip4 : (records.ip6.get(name) ?? []);
  if (ips.length === 0 && (type === 'A' || ip4.length === 0)) {
    return reply(q, Rcode.NXDomain, AA);
  }
  return {
    ...reply(q, Rcode.NoError, AA),
    answers: ips.map(data => ({ name, type, class: 'IN', ttl: 0, data })),
  };
}

export async function startK8sNameserver(opts: {
  host: string;
  port?: number;
  log?: (m: string) => void;
}): Promise<K8sNameserver> {
  const port = opts.port ?? 53;
  const log = opts.log ?? (() => undefined);
  let records: Records = { ip4: new Map(), ip6: new Map() };
  let healthy = true;
  let closed = false;
  let listener: DnsListener | undefined;
  let transition = Promise.resolve();
  const listen = () =>
    listenDns({
      host: opts.host,
      port,
      log,
      handler: async q => answer(q, records, log),
    });
  /** Brings the sockets to what the process's state says: open while it runs, else closed. */
  const reconcile = () => {
    transition = transition.then(async () => {
      const up = healthy && !closed;
      if (up && !listener) {
        listener = await listen().catch((err: unknown) => {
          log(
            `nameserver could not listen on ${hostPort(opts.host, port)}: ${String(err)}`,
          );
          return undefined;
        });
        if (listener) log('nameserver started with a configuration that loads');
      } else if (!up && listener) {
        const stopping = listener;
        listener = undefined;
        await stopping.close();
      }
    });
  };

  // A fresh nameserver: the operator's ConfigMap has no records.json yet (cm.yaml).
  listener = await listen();
  return {
    address: hostPort(opts.host, port),
    setRecords(recordsJson) {
      if (closed) return;
      const loaded = loadRecords(recordsJson, log);
      if (loaded instanceof Error) {
        log(
          `error resetting records: ${loaded.message}; the nameserver exits and crash-loops`,
        );
        healthy = false;
      } else {
        records = loaded;
        healthy = true;
      }
      reconcile();
    },
    async close() {
      closed = true;
      reconcile();
      await transition;
    },
  };
}

/** For tests: records.json as the nameserver loads it. */
export const internals = { loadRecords };
