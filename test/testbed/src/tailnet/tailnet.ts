/**
 * The test bed's model of a tailnet that enforces like Tailscale. No WireGuard runs here: each
 * tailnet node is a 100.64.0.0/10 address on the loopback of the test bed's network namespace, and
 * every connection to one passes a packet filter computed from the policy file the Tailscale API
 * stand-in holds (policy.ts), as each real node filters what it receives (tailscale.com/kb/1018
 * "ACLs are enforced on the destination"; the filter is computed from grants and ACLs). What a
 * Tailscale operator's devices do, the model does with small forwarders:
 *
 * - the API server proxy of each cluster's operator (node `<OPERATOR_HOSTNAME>`, tags
 *   OPERATOR_INITIAL_TAGS, tailscale.com v1.102.5 cmd/k8s-operator/deploy/chart deployment.yaml),
 *   while the operator Deployment has a ready replica and APISERVER_PROXY is "true" or "noauth":
 *   tcp:443 on its tailnet IP, served by apiServerProxy.ts with the operator ServiceAccount's
 *   credentials against the real kube-apiserver;
 * - each LoadBalancer Service of class `tailscale` (node from the operator stand-in's device
 *   registry, i.e. the hostname and 100.x address it wrote into the Service's status; tags
 *   `tailscale.com/tags` or the operator's PROXY_TAGS): every Service port on its tailnet IP,
 *   forwarded to a ready endpoint of the Service (the real ingress proxy DNATs to the ClusterIP,
 *   cmd/containerboot, and kube-proxy picks an endpoint);
 * - each egress Service (`tailscale.com/tailnet-fqdn`/`-ip`; node `<namespace>-<name>` or
 *   `tailscale.com/hostname`, tags `tailscale.com/tags` or PROXY_TAGS): its proxy pod's IP
 *   (operatorProxies.ts creates the pod) listens on the egress Service's ports and forwards to the
 *   target node on the same port, from the egress node's own tailnet address. This is the only
 *   way from a pod address into the tailnet, as in a cluster where pods cannot route to
 *   100.64.0.0/10 and the egress proxy DNATs to the target (cmd/containerboot);
 * - in front of each egress proxy pod, the cluster's NetworkPolicies (ingress), as a CNI that
 *   enforces them would apply them to that pod (network/networkPolicy.ts): every new connection
 *   is judged from the cluster's watch caches at accept time, so a policy, pod or namespace
 *   change applies to the next connection without a restart; a refused one is dropped like the
 *   tailnet filter drops (below). Which pod a connection comes from is the pod with its source
 *   address, except for the one kind of caller that cannot bind a pod address (see
 *   `networkPolicyGate`).
 *
 * A device exists only while its cluster's operator runs and can log it in: the operator's OAuth
 * client (Secret `operator-oauth`, keys client_id/client_secret) must be a client of the API
 * stand-in with the `auth_keys` scope, and every tag the device asks for must be one that client
 * may apply (tagOwners; policy.ts mayApplyTag). Otherwise the real operator or proxy fails to log
 * in, and the device is absent here; the reason is logged.
 *
 * The filter: a connection from an address that is not a tailnet node, or that the policy does
 * not allow from the source node to the destination node on tcp:<port>, is dropped: accepted by
 * the socket layer (loopback cannot silently drop a SYN) but never answered, then closed after
 * two minutes, so the caller sees what a dropped packet gives, a timeout. Nothing is logged per
 * packet; one line per new (source, destination, port) denial.
 *
 * Tailnet HTTPS (tailscale.com/kb/1153) is the API stand-in's `httpsEnabled` setting; the API
 * proxy's certificate (httpsCertificates.ts, standing in for Let's Encrypt) is refused while it
 * is off, as LocalClient.GetCertificate fails.
 */
import net from 'node:net';
import type { ClusterCache, Pod, Service } from '../kube/clusterCache';
import { describe } from '../kube/kubeClient';
import { pipeTo, targetPort } from '../network/forward';
import { LoopbackAddresses } from '../network/loopbackAddresses';
import { ingressVerdict, type Source, type SourcePod } from '../network/networkPolicy';
import { egressProxies } from '../standins/operatorProxies';
import { nameForService, TailnetDeviceRegistry } from '../standins/operatorReconcile';
import { createApiServerProxy, type ApiServerProxy, type WhoIs } from './apiServerProxy';
import type { TailnetCertificateAuthority } from './httpsCertificates';
import { compilePolicy, type CompiledPolicy, type TailnetNode, type TailnetUser } from './policy';

export type DeviceKind = 'api-server-proxy' | 'ingress' | 'egress';

export interface TailnetDeviceInfo extends TailnetNode {
  key: string;
  cluster: string;
  kind: DeviceKind;
  /** Host label (the MagicDNS name's first label). */
  hostname: string;
  ipv6?: string;
  /** For egress proxies: the node they forward to (FQDN or IP) and their pod IPs. */
  target?: string;
  podIPs?: string[];
  /** For ingress nodes: the Service they expose. */
  service?: string;
}

export interface TailnetOptions {
  tailnet: string;
  clusters: ClusterCache[];
  /** Shared with the operator stand-in, so ingress nodes have the addresses it wrote to Services. */
  registry: TailnetDeviceRegistry;
  addresses: LoopbackAddresses;
  certificates: TailnetCertificateAuthority;
  /** The API stand-in's state: policy text, HTTPS setting, OAuth clients. */
  api: {
    policy(): string;
    settings(): { httpsEnabled: boolean };
    oauthClient(clientId: string, clientSecret: string): { scopes: string[]; tags: string[] } | undefined;
  };
  users: TailnetUser[];
  /** Each cluster's apiserver as reachable inside the test bed, and its serving CA. */
  apiservers: Record<string, { url: string; caPem: string }>;
  log: (msg: string) => void;
}

interface OperatorConfig {
  hostname: string;
  tags: string[];
  proxyTags: string[];
  apiServerProxy: 'auth' | 'noauth' | 'off';
  oauth?: { scopes: string[]; tags: string[] };
  /** Why the operator's devices cannot log in, if they cannot. */
  refusal?: string;
}

interface Listener {
  key: string;
  ip: string;
  port: number;
  server: net.Server;
  handler: (socket: net.Socket) => void;
}

/** Two minutes of a denied connection outlast any client's connect or TLS timeout. */
const DROP_HOLD_MS = 120_000;

/** Where the istiod pods are whose `pilot-discovery` the test bed runs (kubelet/istiodRunner.ts). */
const ISTIOD_NAMESPACE = 'istio-system';
const ISTIOD_LABELS = { app: 'istiod' };

export interface Tailnet {
  devices(): TailnetDeviceInfo[];
  /** Re-evaluate everything now (tests call it after changing the policy or a setting). */
  refresh(): void;
  stop(): Promise<void>;
}

export function startTailnet(o: TailnetOptions): Tailnet {
  let devices: TailnetDeviceInfo[] = [];
  const listeners = new Map<string, Listener>();
  const heldIps = new Set<string>();
  const proxies = new Map<string, { proxy: ApiServerProxy; mode: 'auth' | 'noauth' }>();
  const operatorTokens = new Map<string, { token: string; refreshAt: number }>();
  const oauthSecrets = new Map<string, { at: number; value?: { clientId: string; clientSecret: string } }>();
  const denials = new Set<string>();
  const held = new Set<net.Socket>();
  let policy: { text: string; compiled?: CompiledPolicy; error?: string } = { text: '' };
  let stopped = false;
  let running: Promise<void> | undefined;
  let again = false;

  const currentPolicy = (): CompiledPolicy | undefined => {
    const text = o.api.policy();
    if (text !== policy.text) {
      try {
        policy = { text, compiled: compilePolicy(text, { users: o.users, nodes: devices }) };
      } catch (err) {
        policy = { text, error: describe(err) };
        o.log(`tailnet: policy file does not compile, every connection is denied: ${policy.error}`);
      }
    }
    return policy.compiled;
  };

  const byIp = (ip: string) => devices.find(d => d.ipv4 === ip.replace(/^::ffff:/, ''));

  /** Accept and never answer: what a dropped SYN looks like to the caller, bounded in time. */
  const drop = (socket: net.Socket, why: string) => {
    if (!denials.has(why)) {
      denials.add(why);
      o.log(`tailnet: dropped ${why}`);
    }
    socket.pause();
    held.add(socket);
    const timer = setTimeout(() => socket.destroy(), DROP_HOLD_MS);
    socket.once('close', () => {
      clearTimeout(timer);
      held.delete(socket);
    });
    socket.on('error', () => undefined);
  };

  /**
   * Connections the filter let through, so that a policy change applies to them too: Tailscale
   * checks every packet against the destination's current filter (only replies of allowed flows
   * pass), so a revoked grant stops an established connection as well as new ones.
   */
  const flows = new Set<{ socket: net.Socket; src: string; dst: string; port: number }>();

  /** The packet filter in front of every tailnet node's listener. */
  const filtered = (dst: TailnetDeviceInfo, port: number, serve: (socket: net.Socket, src: TailnetDeviceInfo) => void) =>
    (socket: net.Socket) => {
      const src = byIp(socket.remoteAddress ?? '');
      const desc = `tcp ${src?.name ?? socket.remoteAddress} -> ${dst.name}:${port}`;
      if (!src) return drop(socket, `${desc} (source is not a tailnet node)`);
      const compiled = currentPolicy();
      if (!compiled || !compiled.allows(src, dst, 'tcp', port)) return drop(socket, `${desc} (no grant or ACL allows it)`);
      denials.delete(`${desc} (no grant or ACL allows it)`);
      const flow = { socket, src: src.key, dst: dst.key, port };
      flows.add(flow);
      socket.once('close', () => flows.delete(flow));
      serve(socket, src);
    };

  /** Re-checks established flows against the current policy and devices; stops those now denied. */
  const recheckFlows = () => {
    const compiled = currentPolicy();
    for (const flow of flows) {
      const src = devices.find(d => d.key === flow.src);
      const dst = devices.find(d => d.key === flow.dst);
      if (src && dst && compiled?.allows(src, dst, 'tcp', flow.port)) continue;
      flows.delete(flow);
      // Its next packets are dropped. The model cannot silence a socket it handed to a TLS
      // server, so it ends the connection; the caller's reconnect is then dropped like any new one.
      o.log(`tailnet: ended tcp ${src?.name ?? flow.src} -> ${dst?.name ?? flow.dst}:${flow.port}: no longer allowed`);
      flow.socket.destroy();
    }
  };

  /** `(source, destination, port)` of a NetworkPolicy denial -> the drop reason it was logged with. */
  const policyDenials = new Map<string, string>();
  const policyStateSynced = new Set<string>();
  for (const cache of o.clusters) {
    void cache.networkPolicyStateSynced().then(() => policyStateSynced.add(cache.name));
  }

  const podName = (pod: Pod) => `${pod.metadata.namespace ?? ''}/${pod.metadata.name}`;
  const sourcePod = (pod: Pod): SourcePod => ({ namespace: pod.metadata.namespace ?? '', labels: pod.metadata.labels });

  /**
   * The cluster's NetworkPolicies (ingress) in front of the egress proxy pod at `podIP`, judged
   * for one new connection on `port` as a CNI that enforces NetworkPolicy would judge its first
   * packet (network/networkPolicy.ts): `admit` runs if it is admitted, else the connection is
   * dropped like the tailnet filter drops it, with one log line per new (source, destination,
   * port) denial naming the policies that isolate the pod. Everything is read from the watch
   * caches at this moment, so changes to policies, pods or namespaces apply to new connections.
   * Established ones are left alone: the concept page leaves it to the implementation whether a
   * change affects them (https://kubernetes.io/docs/concepts/services-networking/network-policies/,
   * "Behavior of existing connections").
   *
   * The source is the pod whose pod IP the connection comes from, or no pod (then only `ipBlock`
   * rules can admit it). One exception, because the test bed is not a real pod network: a process
   * the test bed runs for a pod that dials an egress proxy without binding a source address gets
   * the destination's own address as source (both are on the same loopback, and the kernel picks
   * the destination address itself). The only such dialer of egress proxies is the real
   * `pilot-discovery` the test bed runs for each istiod pod (kubelet/istiodRunner.ts), which
   * cannot be told to bind its pod IP for its outgoing connections. So a connection whose source
   * is the destination pod's own IP is attributed to the cluster's istiod pods (namespace
   * istio-system, label app=istiod, phase Running), each judged as if the connection came from
   * its own pod IP; it is admitted if any of them would be. In a real cluster it would carry the
   * one istiod pod's IP.
   */
  const networkPolicyGate = (cache: ClusterCache, podIP: string, port: number, socket: net.Socket, admit: () => void) => {
    const judge = () => {
      const remote = (socket.remoteAddress ?? '').replace(/^::ffff:/i, '');
      const dest = cache.podsByIP(podIP).find(p => p.metadata.namespace === cache.operatorNamespace);
      const unbound = remote === podIP;
      const candidates = unbound ? cache.runningPods(ISTIOD_NAMESPACE, ISTIOD_LABELS) : cache.podsByIP(remote);
      const from = unbound
        ? `${remote} (unbound local dialer, taken for istiod pods ${candidates.map(podName).join(', ') || '(none running)'})`
        : candidates.length
          ? `${remote} (pod ${candidates.map(podName).join(', ')})`
          : remote;
      const to = `${dest ? podName(dest) : 'no pod'} (${podIP})`;
      const flow = `tcp ${from} -> ${to}:${port}`;
      if (!dest) return drop(socket, `${flow} (no pod of ${cache.operatorNamespace} has this IP: nothing would answer)`);
      const sources: Source[] =
        unbound && candidates.length
          ? candidates.map(pod => ({ ip: pod.status?.podIP ?? remote, pods: [sourcePod(pod)] }))
          : [{ ip: remote, pods: candidates.map(sourcePod) }];
      const destination = {
        namespace: dest.metadata.namespace ?? '',
        labels: dest.metadata.labels,
        containerPorts: (dest.spec?.containers ?? []).flatMap(c => c.ports ?? []),
      };
      const ctx = {
        policies: cache.networkPoliciesIn(destination.namespace),
        namespaceLabels: (ns: string) => cache.namespaceLabels(ns),
      };
      const verdicts = sources.map(source => ingressVerdict(ctx, destination, source, port, 'TCP'));
      if (!verdicts.some(v => v.allowed)) {
        const why = `${flow} (NetworkPolicies isolating the pod: ${verdicts[0].policies.join(', ')}; none admits this source on tcp:${port})`;
        const before = policyDenials.get(flow);
        if (before !== undefined && before !== why) denials.delete(before);
        policyDenials.set(flow, why);
        return drop(socket, why);
      }
      // Admitted again: a later denial of the same flow is news, and is logged again.
      const denied = policyDenials.get(flow);
      if (denied !== undefined) {
        denials.delete(denied);
        policyDenials.delete(flow);
      }
      admit();
    };
    if (policyStateSynced.has(cache.name)) return judge();
    // Until pods, namespaces and policies have been listed once, there is nothing to judge by:
    // the connection waits (an empty cache would admit everything).
    socket.pause();
    socket.on('error', () => undefined);
    void cache.networkPolicyStateSynced().then(() => {
      if (!socket.destroyed) judge();
    });
  };

  const whoIs = (dst: TailnetDeviceInfo) => (remoteAddress: string): WhoIs | undefined => {
    const src = byIp(remoteAddress);
    const compiled = currentPolicy();
    if (!src || !compiled) return undefined;
    const tags = compiled.effectiveTags(src);
    return {
      node: { name: `${src.name}.`, tags },
      userProfile: tags.length ? undefined : { loginName: src.user ?? '' },
      capMap: compiled.capabilities(src, dst),
    };
  };

  // ---- the operator of each cluster ----------------------------------------------------------------

  const operatorSecret = async (cache: ClusterCache) => {
    const cached = oauthSecrets.get(cache.name);
    if (cached && Date.now() - cached.at < 5000) return cached.value;
    let value: { clientId: string; clientSecret: string } | undefined;
    try {
      const secret = await cache.rest.json<{ data?: Record<string, string> }>(
        'GET',
        `/api/v1/namespaces/${encodeURIComponent(cache.operatorNamespace)}/secrets/operator-oauth`,
      );
      const get = (k: string) => Buffer.from(secret.data?.[k] ?? '', 'base64').toString('utf8');
      value = { clientId: get('client_id'), clientSecret: get('client_secret') };
    } catch {
      value = undefined;
    }
    oauthSecrets.set(cache.name, { at: Date.now(), value });
    return value;
  };

  const operatorConfig = async (cache: ClusterCache): Promise<OperatorConfig | undefined> => {
    const deployment = cache.operatorDeployments.cache.get(`${cache.operatorNamespace}/operator`);
    if (!deployment || (deployment.status?.readyReplicas ?? 0) < 1) return undefined;
    const env = Object.fromEntries(
      (deployment.spec?.template?.spec?.containers?.[0]?.env ?? []).map(e => [e.name, e.value ?? '']),
    );
    const split = (v: string | undefined) => (v ?? '').split(',').map(t => t.trim()).filter(Boolean);
    const mode = env.APISERVER_PROXY === 'true' ? 'auth' : env.APISERVER_PROXY === 'noauth' ? 'noauth' : 'off';
    const config: OperatorConfig = {
      hostname: env.OPERATOR_HOSTNAME || 'tailscale-operator',
      tags: split(env.OPERATOR_INITIAL_TAGS ?? 'tag:k8s-operator'),
      proxyTags: split(env.PROXY_TAGS || 'tag:k8s'),
      apiServerProxy: mode,
    };
    const creds = await operatorSecret(cache);
    const client = creds && o.api.oauthClient(creds.clientId, creds.clientSecret);
    if (!client) config.refusal = 'the operator-oauth Secret holds no OAuth client the tailnet knows';
    else if (!client.scopes.some(s => s === 'auth_keys' || s === 'all')) {
      config.refusal = `the operator's OAuth client lacks the auth_keys scope (has ${client.scopes.join(', ')})`;
    } else config.oauth = client;
    return config;
  };

  /** Tags a credential of the operator may not apply, per the policy's tagOwners. */
  const unownedTags = (tags: string[], op: OperatorConfig) => {
    const compiled = currentPolicy();
    if (!compiled || !op.oauth) return tags;
    return tags.filter(t => !compiled.mayApplyTag(t, { tags: op.oauth?.tags ?? [] }));
  };

  const deviceOf = (
    cache: ClusterCache,
    key: string,
    label: string,
    tags: string[],
    kind: DeviceKind,
    observed?: { ipv4?: string; label?: string },
  ): TailnetDeviceInfo => {
    const d = o.registry.ensure(key, label, observed);
    return { key, cluster: cache.name, kind, hostname: d.hostLabel, name: d.fqdn, ipv4: d.ipv4, ipv6: d.ipv6, tags };
  };

  /** Desired devices of one cluster, with refusals logged once each. */
  const clusterDevices = async (cache: ClusterCache, refusals: Set<string>): Promise<TailnetDeviceInfo[]> => {
    const op = await operatorConfig(cache);
    if (!op) return [];
    if (op.refusal) {
      refusals.add(`${cache.name}: operator cannot log in: ${op.refusal}`);
      return [];
    }
    const out: TailnetDeviceInfo[] = [];
    const missing = unownedTags(op.tags, op);
    if (missing.length) refusals.add(`${cache.name}: operator cannot log in with tags ${missing.join(', ')}: not permitted by tagOwners`);
    else if (op.apiServerProxy !== 'off') {
      out.push(deviceOf(cache, `tailnet:${cache.name}/operator`, op.hostname, op.tags, 'api-server-proxy'));
    }
    const tagsOf = (svc: Service) => {
      const a = svc.metadata.annotations?.['tailscale.com/tags'];
      return a ? a.split(',').map(t => t.trim()).filter(Boolean) : op.proxyTags;
    };
    for (const svc of cache.services.cache.values()) {
      if (svc.spec?.type !== 'LoadBalancer' || svc.spec.loadBalancerClass !== 'tailscale') continue;
      const ingress = svc.status?.loadBalancer?.ingress ?? [];
      const ip = ingress.find(i => i.ip?.startsWith('100.'))?.ip;
      const host = ingress.find(i => i.hostname)?.hostname;
      if (!ip || !host || svc.metadata.deletionTimestamp) continue;
      const tags = tagsOf(svc);
      const denied = unownedTags(tags, op);
      const key = `${cache.name}/${svc.metadata.namespace}/${svc.metadata.name}`;
      if (denied.length) {
        refusals.add(`${key}: ingress proxy cannot log in with tags ${denied.join(', ')}: not permitted by tagOwners`);
        continue;
      }
      const existing = o.registry.get(key);
      if (!existing || existing.ipv4 !== ip) continue; // the operator stand-in owns these addresses
      out.push({
        key,
        cluster: cache.name,
        kind: 'ingress',
        hostname: existing.hostLabel,
        name: existing.fqdn,
        ipv4: existing.ipv4,
        ipv6: existing.ipv6,
        tags,
        service: `${svc.metadata.namespace}/${svc.metadata.name}`,
      });
    }
    for (const { proxy, parent, target } of egressProxies(cache)) {
      const tags = tagsOf(parent);
      // Keys of the registry without the `tailnet:` prefix belong to the operator stand-in, which
      // releases any `<cluster>/...` key that names no Service of its own.
      const key = `tailnet:${cache.name}/${parent.metadata.namespace}/${parent.metadata.name}`;
      const denied = unownedTags(tags, op);
      if (denied.length) {
        refusals.add(`${key}: egress proxy cannot log in with tags ${denied.join(', ')}: not permitted by tagOwners`);
        continue;
      }
      const podIPs = cache.readyEndpoints(cache.operatorNamespace, proxy.metadata.name).map(e => e.ip);
      if (!podIPs.length) continue; // no proxy pod yet: no device yet
      const d = deviceOf(cache, key, nameForService(parent), tags, 'egress');
      out.push({ ...d, target, podIPs, service: `${parent.metadata.namespace}/${parent.metadata.name}` });
    }
    return out;
  };

  // ---- listeners ------------------------------------------------------------------------------------

  const apiProxyFor = (cache: ClusterCache, device: TailnetDeviceInfo, mode: 'auth' | 'noauth') => {
    const existing = proxies.get(device.key);
    if (existing && existing.mode === mode) return existing.proxy;
    void existing?.proxy.close();
    const upstream = o.apiservers[cache.name];
    const proxy = createApiServerProxy({
      mode,
      getCertificate: serverName => {
        if (!o.api.settings().httpsEnabled) throw new Error('HTTPS is not enabled for this tailnet (tailscale.com/kb/1153)');
        const current = devices.find(d => d.key === device.key);
        if (!current || serverName.toLowerCase() !== current.name.toLowerCase()) {
          throw new Error(`no certificate for ${serverName}: this node is ${current?.name ?? 'gone'}`);
        }
        return o.certificates.issue(current.name);
      },
      whoIs: whoIs(device),
      upstream: { url: upstream.url, caPem: upstream.caPem, token: () => operatorTokens.get(cache.name)?.token ?? '' },
      log: msg => o.log(`${device.name}: ${msg}`),
    });
    proxies.set(device.key, { proxy, mode });
    return proxy;
  };

  /** The operator's own ServiceAccount token, as its pod would have it mounted. */
  const refreshOperatorToken = async (cache: ClusterCache) => {
    const cur = operatorTokens.get(cache.name);
    if (cur && Date.now() < cur.refreshAt) return;
    const res = await cache.rest.json<{ status?: { token?: string; expirationTimestamp?: string } }>(
      'POST',
      `/api/v1/namespaces/${encodeURIComponent(cache.operatorNamespace)}/serviceaccounts/operator/token`,
      { body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { expirationSeconds: 3600 } } },
    );
    const token = res.status?.token;
    if (!token) throw new Error(`${cache.name}: TokenRequest for the operator returned no token`);
    const expires = Date.parse(res.status?.expirationTimestamp ?? '') || Date.now() + 3600_000;
    operatorTokens.set(cache.name, { token, refreshAt: Date.now() + (expires - Date.now()) * 0.8 });
  };

  const desiredListeners = async (): Promise<Map<string, Omit<Listener, 'server'>>> => {
    const out = new Map<string, Omit<Listener, 'server'>>();
    const add = (ip: string, port: number, handler: (s: net.Socket) => void) => {
      const key = `${ip}:${port}`;
      out.set(key, { key, ip, port, handler });
    };
    for (const device of devices) {
      const cache = o.clusters.find(c => c.name === device.cluster);
      if (!cache) continue;
      if (device.kind === 'api-server-proxy') {
        const op = await operatorConfig(cache);
        if (!op || op.apiServerProxy === 'off') continue;
        await refreshOperatorToken(cache);
        const proxy = apiProxyFor(cache, device, op.apiServerProxy);
        add(device.ipv4, 443, filtered(device, 443, socket => proxy.handle(socket)));
      } else if (device.kind === 'ingress' && device.service) {
        const [ns, name] = device.service.split('/');
        const svc = cache.service(ns, name);
        for (const p of svc?.spec?.ports ?? []) {
          if ((p.protocol ?? 'TCP') !== 'TCP') continue;
          add(
            device.ipv4,
            p.port,
            filtered(device, p.port, socket => {
              const ep = cache.readyEndpoints(ns, name);
              const target = ep[Math.floor(Math.random() * ep.length)];
              const port = targetPort(p, target?.ports);
              if (!target || port === undefined) {
                socket.resetAndDestroy();
                return;
              }
              pipeTo(socket, target.ip, port);
            }),
          );
        }
      } else if (device.kind === 'egress' && device.service) {
        const [ns, name] = device.service.split('/');
        const svc = cache.service(ns, name);
        for (const podIP of device.podIPs ?? []) {
          for (const p of svc?.spec?.ports ?? []) {
            if ((p.protocol ?? 'TCP') !== 'TCP') continue;
            add(podIP, p.port, socket =>
              networkPolicyGate(cache, podIP, p.port, socket, () => {
                const targetNode = devices.find(
                  d => d.name.toLowerCase() === (device.target ?? '').replace(/\.$/, '').toLowerCase() || d.ipv4 === device.target,
                );
                // The proxy cannot resolve or reach a node that is not on the tailnet: reset, like
                // a DNAT to an address nothing answers on.
                if (!targetNode) {
                  socket.resetAndDestroy();
                  return;
                }
                pipeTo(socket, targetNode.ipv4, p.port, device.ipv4);
              }),
            );
          }
        }
      }
    }
    return out;
  };

  const reconcile = async () => {
    const refusals = new Set<string>();
    const next: TailnetDeviceInfo[] = [];
    for (const cache of o.clusters) {
      try {
        next.push(...(await clusterDevices(cache, refusals)));
      } catch (err) {
        o.log(`tailnet: ${cache.name}: ${describe(err)}`);
      }
    }
    for (const r of refusals) if (!denials.has(r)) {
      denials.add(r);
      o.log(`tailnet: ${r}`);
    }
    // Devices that are gone give their addresses back (ingress addresses belong to the operator stand-in).
    for (const d of devices) {
      if (!next.some(n => n.key === d.key) && d.kind !== 'ingress') o.registry.release(d.key);
    }
    for (const d of devices) if (!next.some(n => n.key === d.key)) o.log(`tailnet: ${d.name} (${d.ipv4}) left`);
    for (const d of next) if (!devices.some(n => n.key === d.key)) {
      o.log(`tailnet: ${d.name} (${d.ipv4}, ${d.tags.join(',') || 'untagged'}) joined`);
    }
    devices = next;
    recheckFlows();
    for (const key of [...proxies.keys()]) {
      if (!devices.some(d => d.key === key)) {
        void proxies.get(key)?.proxy.close();
        proxies.delete(key);
      }
    }

    const wanted = await desiredListeners();
    const wantedIps = new Set([...devices.map(d => d.ipv4), ...[...wanted.values()].map(l => l.ip)]);
    for (const ip of wantedIps) if (!heldIps.has(ip)) {
      await o.addresses.acquire(ip);
      heldIps.add(ip);
    }
    for (const [key, l] of listeners) {
      if (!wanted.has(key)) {
        l.server.close();
        listeners.delete(key);
      }
    }
    for (const [key, want] of wanted) {
      const cur = listeners.get(key);
      if (cur) {
        cur.handler = want.handler;
        continue;
      }
      const entry: Listener = { ...want, server: net.createServer(s => entry.handler(s)) };
      await new Promise<void>((resolve, reject) => {
        entry.server.once('error', reject);
        entry.server.listen({ host: want.ip, port: want.port, exclusive: true }, () => resolve());
      }).catch(err => o.log(`tailnet: cannot listen on ${key}: ${describe(err)}`));
      if (entry.server.listening) listeners.set(key, entry);
    }
    for (const ip of [...heldIps]) if (!wantedIps.has(ip)) {
      heldIps.delete(ip);
      await o.addresses.release(ip).catch(() => undefined);
    }
  };

  const kick = () => {
    if (stopped) return;
    if (running) {
      again = true;
      return;
    }
    running = reconcile()
      .catch(err => o.log(`tailnet: reconcile failed: ${describe(err)}`))
      .finally(() => {
        running = undefined;
        if (again) {
          again = false;
          kick();
        }
      });
  };
  const unsubscribe = o.clusters.map(c => c.onChange(kick));
  // Policy edits and settings changes come through the API, not the clusters; tokens expire.
  const timer = setInterval(kick, 2000);
  timer.unref();
  kick();

  return {
    devices: () => devices.map(d => ({ ...d })),
    refresh: kick,
    async stop() {
      stopped = true;
      clearInterval(timer);
      for (const u of unsubscribe) u();
      await running;
      for (const l of listeners.values()) l.server.close();
      for (const s of held) s.destroy();
      await Promise.all([...proxies.values()].map(p => p.proxy.close()));
      for (const ip of heldIps) await o.addresses.release(ip).catch(() => undefined);
    },
  };
}

