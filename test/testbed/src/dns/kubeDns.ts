/*
 * Stand-in for kube-dns, GKE's default cluster DNS (Deployment kube-system/kube-dns behind the
 * `kube-dns` Service: kubedns serving the cluster domain, dnsmasq in front of it), as the CoreDNS
 * Corefile that answers the way it does, run by the CoreDNS stand-in (coreDns.ts). What a program
 * writes into ConfigMap kube-system/kube-dns (Tailmesh's tailnet stub domain among it) is what
 * name resolution in the cluster does.
 *
 * Follows github.com/kubernetes/dns 1.26.7:
 *  - pkg/dns/config/sync.go processUpdate, updateStubDomains, updateUpstreamNameservers: the keys
 *    `stubDomains` (a JSON object: domain → nameservers) and `upstreamNameservers` (a JSON array);
 *    a value that is not that JSON, or a configuration that does not validate, is logged and the
 *    update ignored: the running configuration stays. A deleted ConfigMap is the default
 *    configuration (no stub domains, the node's resolv.conf);
 *  - pkg/dns/config/config.go Validate: a stub domain must be a DNS-1123 subdomain; each of its
 *    nameservers an IP or `IP:port` (or a name, which the nanny looks up once at start); at most
 *    three upstream nameservers, each an IP or `IP:port` (pkg/dns/util ValidateNameserverIpAndPort);
 *  - pkg/dnsmasq/nanny.go Configure: dnsmasq gets `--server=/<domain>/<ip>#<port>` for each
 *    nameserver of a stub domain, and the upstream nameservers instead of resolv.conf.
 * Translated to a Corefile as kubeadm translated a kube-dns ConfigMap when it moved a cluster to
 * CoreDNS (kubernetes/kubernetes v1.20.0 cmd/kubeadm/app/phases/addons/dns/dns.go,
 * translateStubDomainOfKubeDNSToForwardCoreDNS and
 * translateUpstreamNameServerOfKubeDNSToUpstreamForwardCoreDNS): one server block per stub domain
 * forwarding to its nameservers, the cluster domain from the API, everything else upstream.
 *
 * Not modelled: stub domain nameservers given as names (the nanny resolves them once, at start;
 * here they are logged and left out), `federations` (ignored), dnsmasq's cache and the delay of
 * the kubelet's sync of the ConfigMap volume (changes apply at once).
 */
import net from 'node:net';

export interface KubeDnsConfig {
  stubDomains: Record<string, string[]>;
  upstreamNameservers: string[];
}

const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** net.SplitHostPort for `host:port` and `[v6]:port`; undefined when there is no port. */
function splitHostPort(s: string): { host: string; port: string } | undefined {
  const bracketed = /^\[([^\]]*)\]:(.*)$/.exec(s);
  if (bracketed) return { host: bracketed[1], port: bracketed[2] };
  const colon = s.lastIndexOf(':');
  if (colon === -1 || s.indexOf(':') !== colon) return undefined;
  return { host: s.slice(0, colon), port: s.slice(colon + 1) };
}

const validPort = (port: string) => /^\d+$/.test(port) && Number(port) >= 1 && Number(port) <= 65535;

/** ValidateNameserverIpAndPort: an IP, or `IP:port`. */
function ipAndPort(ns: string): { ip: string; port: number } | undefined {
  if (net.isIP(ns)) return { ip: ns, port: 53 };
  const split = splitHostPort(ns);
  if (!split || !net.isIP(split.host) || !validPort(split.port)) return undefined;
  return { ip: split.host, port: Number(split.port) };
}

/** A ConfigMap key's JSON, or the error kube-dns logs for it (sync.go processUpdate). */
function parseJson(key: string, text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    return new Error(`Invalid configuration for ${key}, ignoring update: ${(e as Error).message}`);
  }
}

/**
 * The configuration kube-dns runs for this ConfigMap data, or why it ignores the update.
 * `undefined` data (no ConfigMap) is the default configuration.
 */
export function parseKubeDnsConfig(
  data: Record<string, string> | undefined,
): KubeDnsConfig | { error: string } {
  const config: KubeDnsConfig = { stubDomains: {}, upstreamNameservers: [] };
  if (!data) return config;
  if (data.stubDomains !== undefined) {
    const parsed = parseJson('stubDomains', data.stubDomains);
    if (parsed instanceof Error) return { error: parsed.message };
    // json.Unmarshal into map[string][]string: null is an empty map; anything else not of that shape fails.
    if (parsed !== null) {
      if (typeof parsed !== 'object' || Array.isArray(parsed)) {
        return { error: 'Invalid configuration for stubDomains, ignoring update: not a JSON object' };
      }
      for (const [domain, list] of Object.entries(parsed as Record<string, unknown>)) {
        if (list !== null && (!Array.isArray(list) || list.some(v => typeof v !== 'string'))) {
          return { error: `Invalid configuration for stubDomains, ignoring update: ${domain} is not a list of strings` };
        }
        config.stubDomains[domain] = (list ?? []) as string[];
      }
    }
  }
  if (data.upstreamNameservers !== undefined) {
    const parsed = parseJson('upstreamNameservers', data.upstreamNameservers);
    if (parsed instanceof Error) return { error: parsed.message };
    if (parsed !== null && (!Array.isArray(parsed) || parsed.some(v => typeof v !== 'string'))) {
      return { error: 'Invalid configuration for upstreamNameservers, ignoring update: not a list of strings' };
    }
    config.upstreamNameservers = (parsed ?? []) as string[];
  }
  // config.go validateStubDomains and validateUpstreamNameserver.
  for (const [domain, list] of Object.entries(config.stubDomains)) {
    if (domain.length > 253 || !DNS1123_SUBDOMAIN.test(domain)) {
      return { error: `Invalid configuration: invalid domain name: "${domain}", ignoring update` };
    }
    for (const ns of list) {
      // ParseUint(port, 10, 16), then an IP host or the whole entry a DNS-1123 subdomain.
      const split = splitHostPort(ns);
      const badPort = !!split?.port && (!/^\d+$/.test(split.port) || Number(split.port) > 65535);
      const host = split ? split.host : ns;
      if (badPort || (!net.isIP(host) && !(ns.length <= 253 && DNS1123_SUBDOMAIN.test(ns)))) {
        return { error: `Invalid configuration: invalid nameserver: "${ns}", ignoring update` };
      }
    }
  }
  if (config.upstreamNameservers.length > 3) {
    return { error: 'Invalid configuration: upstreamNameserver cannot have more than three entries, ignoring update' };
  }
  for (const ns of config.upstreamNameservers) {
    if (!ipAndPort(ns)) return { error: `Invalid configuration: bad nameserver "${ns}", ignoring update` };
  }
  return config;
}

const forwardTarget = (ns: { ip: string; port: number }) =>
  net.isIPv6(ns.ip) ? `[${ns.ip}]:${ns.port}` : `${ns.ip}:${ns.port}`;

/**
 * The Corefile that answers as kube-dns with this configuration does (kubeadm's translation), and
 * what it had to leave out (nameservers given as names).
 */
export function kubeDnsCorefile(
  config: KubeDnsConfig,
  clusterDomain = 'cluster.local',
): { corefile: string; skipped: string[] } {
  const skipped: string[] = [];
  const upstream = config.upstreamNameservers.length
    ? config.upstreamNameservers.map(ns => forwardTarget(ipAndPort(ns)!)).join(' ')
    : '/etc/resolv.conf';
  const blocks = [
    [
      '.:53 {',
      '    errors',
      `    kubernetes ${clusterDomain} in-addr.arpa ip6.arpa {`,
      '        pods insecure',
      '        fallthrough in-addr.arpa ip6.arpa',
      '    }',
      `    forward . ${upstream}`,
      '    cache 30',
      '}',
    ].join('\n'),
  ];
  // Sorted so that one configuration is always the same Corefile (Go's map order is random).
  for (const domain of Object.keys(config.stubDomains).sort()) {
    const targets: string[] = [];
    for (const ns of config.stubDomains[domain]) {
      const parsed = ipAndPort(ns);
      if (parsed) targets.push(forwardTarget(parsed));
      else skipped.push(`${domain}: nameserver ${ns} is not an IP address (with a port), which dnsmasq needs`);
    }
    if (targets.length === 0) continue;
    blocks.push([`${domain}:53 {`, '    errors', '    cache 30', `    forward . ${targets.join(' ')}`, '}'].join('\n'));
  }
  return { corefile: `${blocks.join('\n')}\n`, skipped };
}
