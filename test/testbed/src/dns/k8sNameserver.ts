/*
 * Stand-in for Tailscale's in-cluster ts.net nameserver: the `nameserver` Deployment (image
 * tailscale/k8s-nameserver) that the Tailscale operator runs for a DNSConfig, behind the
 * `nameserver` Service whose ClusterIP this listens on (kube-proxy maps the Service's 53 to the
 * pod's 1053; here port 53 of the ClusterIP is served directly).
 *
 * Follows tailscale.com v1.102.5:
 *  - cmd/k8s-nameserver/main.go: the handler registered for "ts.net" on miekg/dns's ServeMux,
 *    `handleFunc` (A: the name's IPv4 records, NXDOMAIN if it has none; AAAA: its IPv6 records,
 *    NOERROR without answers if it has only IPv4 ones, NXDOMAIN if it has neither; any other type:
 *    NOTIMP; a name that `dnsname.ToFQDN` refuses: FORMERR, the request echoed back; answers and
 *    NXDOMAIN authoritative, RA clear, TTL 0 (`defaultTTL`), no name compression, no EDNS in
 *    replies, no truncation), `resetRecords` (an empty or absent configuration empties the
 *    records; JSON that does not unmarshal, or a `version` other than "v1alpha1", is fatal:
 *    `log.Fatalf`; names that are not valid FQDNs and addresses that are not IPv4 in `ip4` /
 *    not IPv6 in `ip6` are skipped with a log line), `configMapConfigReader` (file `records.json`
 *    of the mounted ConfigMap; a missing file is an empty configuration);
 *  - k8s-operator/utils.go: `Records` {version, ip4, ip6}, `Alpha1Version`, ConfigMap
 *    `dnsrecords` (`DNSRecordsCMName`) key `records.json` (`DNSRecordsCMKey`), written by the
 *    operator's cmd/k8s-operator/dnsrecords.go; deploy/manifests/nameserver/cm.yaml creates that
 *    ConfigMap without the key, so a fresh nameserver serves no records;
 *  - util/dnsname/dnsname.go `ToFQDN` (used as is for both record keys and query names, so
 *    lookups are case-sensitive, as upstream's map is);
 *  - github.com/miekg/dns v1.1.58 serve_mux.go (`ServeMux.match`: case-insensitive, most specific
 *    pattern; no pattern matches a name outside ts.net, and a message without a question matches
 *    none, both answered REFUSED by `handleRefused`) and server.go / acceptfunc.go (dnsServer.ts);
 *  - Go's encoding/json `Unmarshal` into `Records` (field names matched case-insensitively, null
 *    leaves a value as it is, a repeated object merges into the map, a value of the wrong JSON
 *    type fails the whole configuration).
 *
 * A fatal configuration makes the real process exit; the pod restarts into the same ConfigMap and
 * stays in CrashLoopBackOff until the ConfigMap is fixed, while the Service has no ready endpoint
 * and kube-proxy rejects its packets. Modelled by closing this server's sockets (a client then
 * sees "connection refused", as with kube-proxy's REJECT) until `setRecords` gets a configuration
 * that loads; then it listens again with it.
 *
 * Not modelled: the delay of the kubelet's ConfigMap sync and of the container restart back-off
 * (changes apply at once), Go's random order when two keys of one map name the same FQDN (here the
 * later key wins), duplicate-key subtleties of Go's JSON decoder within one object, and the
 * process's port 1053 (the Service port 53 is what clients reach).
 */
import {
  type Msg,
  type DnsClient,
  type DnsListener,
  type Question,
  type RR,
  Rcode,
  Type,
  acceptAction,
  copyMsg,
  formatIPv4,
  formatIPv6,
  hostPort,
  listenDns,
  newMsg,
  nextLabel,
  packMsg,
  parseGoIP,
  readHeader,
  rejectReply,
  setRcode,
  to4,
  toPacketName,
  unpackMsg,
  unpackName,
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

/** main.go: the domain the handler is registered for. */
const tsNetDomain = 'ts.net.';
/** main.go defaultTTL. */
const defaultTTL = 0;
/** k8s-operator/utils.go Alpha1Version. */
const alpha1Version = 'v1alpha1';

/* util/dnsname/dnsname.go ToFQDN (maxLabelLength 63, maxNameLength 254). */
function toFQDN(input: string): string | Error {
  let s = input;
  if (s.length === 0 || s === '.') return '.';
  if (s[0] === '.') s = s.slice(1);
  let raw = s;
  // Go measures bytes.
  let totalLen = Buffer.byteLength(s);
  if (s.endsWith('.')) s = s.slice(0, -1);
  else totalLen += 1;
  if (totalLen > 254)
    return new Error(`${JSON.stringify(s)} is too long to be a DNS name`);
  let st = 0;
  const bytes = Buffer.from(s, 'utf8');
  for (let i = 0; i < bytes.length; i++) {
    if (bytes[i] !== 0x2e) continue;
    const labelLen = i - st;
    if (labelLen === 0 || labelLen > 63) {
      return new Error(
        `${JSON.stringify(bytes.subarray(st, i).toString('utf8'))} is not a valid DNS label`,
      );
    }
    st = i + 1;
  }
  if (raw === '' || !raw.endsWith('.')) raw = `${raw}.`;
  return raw;
}

interface Records {
  ip4: Map<string, Uint8Array[]>;
  ip6: Map<string, Uint8Array[]>;
}

const emptyRecords = (): Records => ({ ip4: new Map(), ip6: new Map() });

/* ---- encoding/json into k8s-operator.Records ---------------------------------------------- */

type RecordMap = Map<string, string[] | null>;

interface DecodedRecords {
  version: string;
  ip4: RecordMap | null;
  ip6: RecordMap | null;
}

function jsonKind(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'object') return 'object';
  return typeof v; // string, number, boolean
}

/** encoding/json's case folding of field names (ASCII upper case; others via lower then upper). */
function foldName(key: string): string {
  let out = '';
  for (const c of key) {
    if (c.charCodeAt(0) < 0x80) {
      out += c.toUpperCase();
      continue;
    }
    const lower = c.toLowerCase();
    const folded = [...lower].length === 1 ? lower.toUpperCase() : c;
    out += [...folded].length === 1 ? folded : c;
  }
  return out;
}

/** json.Unmarshal(data, &Records{}): the first type error fails it, as Go reports it. */
function unmarshalRecords(text: string): DecodedRecords | Error {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    return new Error(
      `error unmarshalling nameserver configuration: ${(err as Error).message}`,
    );
  }
  const out: DecodedRecords = { version: '', ip4: null, ip6: null };
  let firstError: Error | undefined;
  const typeError = (kind: string, field: string, goType: string) => {
    firstError ??= new Error(
      `error unmarshalling nameserver configuration: json: cannot unmarshal ${kind} into Go struct field Records.${field} of type ${goType}`,
    );
  };
  if (doc === null) return out;
  if (jsonKind(doc) !== 'object') {
    return new Error(
      `error unmarshalling nameserver configuration: json: cannot unmarshal ${jsonKind(doc)} into Go value of type kube.Records`,
    );
  }
  const decodeMap = (field: 'ip4' | 'ip6', value: unknown) => {
    if (value === null) {
      out[field] = null;
      return;
    }
    if (jsonKind(value) !== 'object') {
      typeError(jsonKind(value), field, 'map[string][]string');
      return;
    }
    // Decoding into a map that is already there adds to it.
    const target: RecordMap = out[field] ?? new Map();
    out[field] = target;
    for (const [name, ips] of Object.entries(
      value as Record<string, unknown>,
    )) {
      if (ips === null) {
        target.set(name, null);
        continue;
      }
      if (!Array.isArray(ips)) {
        typeError(jsonKind(ips), field, '[]string');
        continue;
      }
      const list: string[] = [];
      for (const ip of ips) {
        if (ip === null) list.push('');
        else if (typeof ip === 'string') list.push(ip);
        else {
          typeError(jsonKind(ip), field, 'string');
          list.push('');
        }
      }
      target.set(name, list);
    }
  };
  for (const [key, value] of Object.entries(doc as Record<string, unknown>)) {
    switch (foldName(key)) {
      case 'VERSION':
        if (value === null) break;
        if (typeof value === 'string') out.version = value;
        else typeError(jsonKind(value), 'version', 'string');
        break;
      case 'IP4':
        decodeMap('ip4', value);
        break;
      case 'IP6':
        decodeMap('ip6', value);
        break;
      default:
      // Unknown fields are ignored by encoding/json.
    }
  }
  return firstError ?? out;
}

/** main.go resetRecords: the records of a configuration, or the error that is fatal upstream. */
function loadRecords(
  recordsJson: string | undefined,
  log: (m: string) => void,
): Records | Error {
  if (recordsJson === undefined || recordsJson.length === 0) {
    log(
      "nameserver's configuration is empty, any in-memory records will be unset",
    );
    return emptyRecords();
  }
  const cfg = unmarshalRecords(recordsJson);
  if (cfg instanceof Error) return cfg;
  if (cfg.version !== alpha1Version) {
    return new Error(
      `unsupported configuration version ${cfg.version}, supported versions are ${alpha1Version}`,
    );
  }
  const records = emptyRecords();
  if ((cfg.ip4?.size ?? 0) === 0 && (cfg.ip6?.size ?? 0) === 0) {
    log(
      "nameserver's configuration contains no records, any in-memory records will be unset",
    );
    return records;
  }
  for (const [name, ips] of cfg.ip4 ?? []) {
    const key = toFQDN(name);
    if (key instanceof Error) {
      log(
        `invalid nameserver's configuration: ${name} is not a valid FQDN: ${key.message}; skipping this record`,
      );
      continue;
    }
    const valid: Uint8Array[] = [];
    for (const s of ips ?? []) {
      const ip = parseGoIP(s);
      const v4 = ip && to4(ip);
      if (!v4) {
        log(
          `invalid nameserver's configuration: ${s} does not appear to be an IPv4 address; skipping this record`,
        );
        continue;
      }
      valid.push(v4);
    }
    if (valid.length > 0) records.ip4.set(key, valid);
  }
  for (const [name, ips] of cfg.ip6 ?? []) {
    const key = toFQDN(name);
    if (key instanceof Error) {
      log(
        `invalid nameserver's configuration: ${name} is not a valid FQDN: ${key.message}; skipping this record`,
      );
      continue;
    }
    const valid: Uint8Array[] = [];
    for (const s of ips ?? []) {
      const ip = parseGoIP(s);
      if (!ip) {
        log(
          `invalid nameserver's configuration: ${s} does not appear to be a valid IP address; skipping this record`,
        );
        continue;
      }
      if (to4(ip)) {
        log(
          `invalid nameserver's configuration: ${s} appears to be IPv4 but was in IPv6 records; skipping this record`,
        );
        continue;
      }
      valid.push(ip);
    }
    if (valid.length > 0) records.ip6.set(key, valid);
  }
  return records;
}

/* ---- queries -------------------------------------------------------------------------------- */

/** serve_mux.go match: whether a handler pattern ("ts.net.") covers the name, case-insensitively. */
function matchesTsNet(presentationName: string): boolean {
  const q = presentationName.toLowerCase();
  let off = 0;
  for (;;) {
    if (q.slice(off) === tsNetDomain) return true;
    const [next, end] = nextLabel(q, off);
    if (end) return false;
    off = next;
  }
}

function typeName(t: number): string {
  const name = Object.entries(Type).find(([, v]) => v === t)?.[0];
  return name ?? `TYPE${t}`;
}

/** One query, as miekg/dns's server, ServeMux and main.go's handler answer it. */
function answer(
  query: Buffer,
  records: Records,
  log: (m: string) => void,
): Buffer | undefined {
  const h = readHeader(query);
  if (!h) return undefined; // MsgInvalidFunc: "Let client hang, they are sending crap"
  const action = acceptAction(h);
  if (action === 'ignore') return undefined;
  if (action !== 'accept') return rejectReply(h, action);
  let r: Msg;
  try {
    r = unpackMsg(query);
  } catch {
    return rejectReply(h, 'reject');
  }

  const q: Question | undefined = r.question[0];
  let qname: string;
  let qtype: number;
  try {
    const { name, end } = unpackName(query, 12);
    qname = name;
    qtype = query.readUInt16BE(end);
  } catch {
    qname = '';
    qtype = 0;
  }
  // ServeMux.ServeDNS: no question, or a name outside ts.net: handleRefused.
  if (!q || !matchesTsNet(qname))
    return packMsg(setRcode(newMsg(), r, Rcode.Refused));

  let m = newMsg();
  switch (qtype) {
    case Type.A:
    case Type.AAAA: {
      const fqdn = toFQDN(qname);
      if (fqdn instanceof Error) {
        // r.SetRcodeFormatError(r): the request itself goes back.
        const formerr = copyMsg(r);
        formerr.rcode = Rcode.FormatError;
        formerr.opcode = 0;
        formerr.response = true;
        formerr.authoritative = false;
        return packMsg(formerr);
      }
      m.authoritative = true;
      m.recursionAvailable = false;
      const ip4s = records.ip4.get(fqdn) ?? [];
      const name = toPacketName(qname);
      if (qtype === Type.A) {
        if (ip4s.length === 0) {
          m = setRcode(m, r, Rcode.NameError);
          break;
        }
        setRcode(m, r, Rcode.Success);
        m.answer = ip4s.map((ip): RR => ({
          name,
          type: 'A',
          class: 'IN',
          ttl: defaultTTL,
          data: formatIPv4(ip),
        }));
        break;
      }
      const ip6s = records.ip6.get(fqdn) ?? [];
      if (ip6s.length === 0 && ip4s.length === 0) {
        m = setRcode(m, r, Rcode.NameError);
        break;
      }
      m.answer = ip6s.map((ip): RR => ({
        name,
        type: 'AAAA',
        class: 'IN',
        ttl: defaultTTL,
        data: formatIPv6(ip),
      }));
      setRcode(m, r, Rcode.Success);
      break;
    }
    default:
      log(
        `[unexpected] nameserver received a query for an unsupported record type: ;${qname}\t${
          q.class === undefined || q.class === 'IN' ? 'IN' : q.class
        }\t${typeName(qtype)}`,
      );
      setRcode(m, r, Rcode.NotImplemented);
  }
  return packMsg(m);
}

/* ---- server --------------------------------------------------------------------------------- */

export async function startK8sNameserver(opts: {
  host: string;
  port?: number;
  log?: (m: string) => void;
}): Promise<K8sNameserver> {
  const port = opts.port ?? 53;
  const log = opts.log ?? (() => undefined);
  let records = emptyRecords();
  let closed = false;
  let listener: DnsListener | undefined;
  let transition = Promise.resolve();

  const handler = async (query: Buffer, _client: DnsClient) =>
    answer(query, records, log);
  const listen = () =>
    listenDns({ host: opts.host, port, handler, tcpIdleTimeoutMs: 8_000, log });

  // A fresh nameserver: the operator's ConfigMap has no records.json yet (cm.yaml).
  log("updating nameserver's records from the provided configuration...");
  listener = await listen();
  log("nameserver's records were updated");
  log(`listening for udp and tcp queries on ${hostPort(opts.host, port)}`);

  return {
    address: hostPort(opts.host, port),
    setRecords(recordsJson) {
      if (closed) return;
      const loaded = loadRecords(recordsJson, log);
      if (loaded instanceof Error) {
        if (listener) {
          log(`error resetting records: ${loaded.message}`);
          log(
            'nameserver exited; its pod restarts into the same configuration (CrashLoopBackOff) and the Service has no ready endpoint',
          );
          const stopping = listener;
          listener = undefined;
          transition = transition.then(() => stopping.close());
        } else {
          log(
            `error setting nameserver's records: ${loaded.message} (still crash-looping)`,
          );
        }
        return;
      }
      records = loaded;
      if (listener) {
        log('nameserver records were reset');
        return;
      }
      transition = transition.then(async () => {
        if (closed || listener) return;
        try {
          listener = await listen();
          log('nameserver restarted with a configuration that loads');
        } catch (err) {
          log(
            `nameserver could not listen again on ${hostPort(opts.host, port)}: ${String(err)}`,
          );
        }
      });
    },
    async close() {
      closed = true;
      await transition;
      await listener?.close();
      listener = undefined;
    },
  };
}

/** For tests: the name checks and the JSON decoding as the nameserver applies them. */
export const internals = { toFQDN, loadRecords };
