/*
 * Stand-in for CoreDNS as a kubeadm cluster runs it (Deployment `coredns` in kube-system behind
 * the `kube-dns` Service, its Corefile from ConfigMap kube-system/coredns): UDP and TCP on port 53
 * of the kube-dns ClusterIP, answering as the Corefile it is given says, so that what a program
 * writes there (Tailmesh's `mesh:tailscale:configure-dns` tailnet stanza among it) is what name
 * resolution in the cluster does.
 *
 * Follows github.com/coredns/coredns v1.12.1 (kubeadm's CoreDNS for Kubernetes 1.34) and the
 * Caddyfile parser it is built with, github.com/coredns/caddy 8de985351a98:
 *  - caddy caddyfile/lexer.go and parse.go: tokens split at whitespace, `"quoted"` tokens, `#`
 *    comments; server blocks `key [key...] {`, directives one a line with their nested `{ }`
 *    blocks; an unknown directive or an unbalanced brace is an error;
 *  - core/dnsserver/register.go and address.go: keys `[dns://]zone[:port]`, a zone served twice
 *    on one port refused; core/dnsserver/zdirectives.go: the directives CoreDNS knows, and the
 *    order of the plugin chain (kubernetes before forward, whatever the Corefile's order);
 *  - core/dnsserver/server.go ServeDNS: the block of the most specific zone answers; REFUSED when
 *    none covers the name, for a block without plugins, and for a class other than IN; SERVFAIL
 *    at the end of a chain (plugin.NextOrFailure); request/request.go SizeAndDo and Scrub (the
 *    client's OPT on the reply, UDP replies truncated as dnsServer.ts does);
 *  - plugin/kubernetes handler.go, parse.go, kubernetes.go (Records, findServices) and
 *    plugin/backend_lookup.go (A, AAAA, CNAME, SOA, BackendError): `<svc>.<ns>.svc.<zone>` to the
 *    ClusterIPs or, for a headless Service, its ready endpoints; `<endpoint>.<svc>.<ns>.svc.<zone>`
 *    by the endpoint's hostname (or dashed IP); an ExternalName as a CNAME, followed through this
 *    same server (plugin/pkg/upstream); NXDOMAIN for a name that does not exist, NOERROR without
 *    answers for one without records of the type asked, both authoritative with the zone's SOA in
 *    the authority section; options `fallthrough [zones]` and `ttl`;
 *  - plugin/forward forward.go and setup.go, plugin/pkg/proxy connect.go: `forward FROM TO...`,
 *    each TO an `ip[:port]` (`dns://` allowed) or `/etc/resolv.conf` (the `upstream` given to
 *    startCoreDns, by default the outside world, where no cluster or tailnet name exists); the
 *    targets are asked in turn over the client's transport, 2 s per attempt, until 5 s have
 *    passed; then SERVFAIL;
 *  - caddy caddyfile/parse.go doImport (coredns/caddy 768b8dbb105b): `import <file or glob>` at
 *    the start of a line is replaced by the tokens of the files it names, relative to the
 *    importing file's directory, from the files the pod mounts (its ConfigMap volumes: AKS mounts
 *    `coredns-custom` at /etc/coredns/custom and imports `custom/*.server`); a glob matching
 *    nothing is a warning, a missing plain file or a second wildcard an error;
 *  - plugin/reload (reload.go): it compares the parsed server blocks, imports expanded, so a new
 *    Corefile or a changed imported file replaces the running configuration once it loads; one
 *    that does not load leaves the running one in place, and why is logged. The first Corefile is
 *    the pod's start: until one loads, CoreDNS crash-loops and its Service has no ready endpoint,
 *    so nothing listens (clients see "connection refused").
 *
 * Accepted and without effect: errors (forward failures are logged as it would log them), cache
 * (answers are never stale), log, health, ready and prometheus (no listeners of their own), loop,
 * reload (every Corefile that loads is applied at once), loadbalance; kubernetes `pods`.
 *
 * Not modelled: other plugins and other kubernetes options (refused: the Corefile does not load,
 * the reason is logged); server blocks for ports other than 53 or transports other than dns://
 * (set up, then not served); snippets and `{$ENV}` (unknown directives, or literal text); the
 * delays of the kubelet's ConfigMap sync and of the reload interval (changes apply at once); a
 * server block without braces; reverse (CIDR) zones; PTR, SRV, TXT (dns-version) and NS
 * records (NODATA or NXDOMAIN as for any other type); pod names, whatever `pods` says (NXDOMAIN);
 * forward's options (its block is ignored), its health checks and connection reuse (targets are
 * asked in order); EDNS versions other than 0; DNSSEC; the whoami block an empty Corefile gets;
 * CoreDNS bugs (a zone written in upper case is served here, coredns/coredns#6624).
 */
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import * as dnsPacket from 'dns-packet';
import {
  AA,
  Rcode,
  canonical,
  exchange,
  hostPort,
  isSubDomain,
  listenDns,
  optOf,
  reply,
  truncate,
  udpSize,
  type DnsListener,
  type Packet,
  type Query,
  type Transport,
} from './dnsServer';

export type { Packet };

export interface ServiceRecord {
  namespace: string;
  name: string;
  /** Empty for headless Services. */
  clusterIPs: string[];
  headless: boolean;
  endpoints: Array<{ ip: string; hostname?: string; ready: boolean }>;
  type: 'ClusterIP' | 'NodePort' | 'LoadBalancer' | 'ExternalName';
  externalName?: string;
  ports: Array<{ name?: string; port: number; protocol: string }>;
}

export interface KubernetesRecordSource {
  service(namespace: string, name: string): ServiceRecord | undefined;
  namespaceExists(namespace: string): boolean;
}

export interface CoreDns {
  /**
   * The Corefile as the ConfigMap now holds it. The first one that loads starts CoreDNS; later
   * ones replace the running configuration when they load, and are logged and ignored otherwise.
   */
  setCorefile(text: string): void;
  /**
   * What the pod's other ConfigMap volumes hold now (the kubelet's sync). Files the Corefile
   * imports are part of its configuration: the reload plugin compares the parsed server blocks,
   * imports expanded, so a change in an imported file reloads as a Corefile change does.
   */
  setFiles(files: MountedFiles): void;
  close(): Promise<void>;
  /** `ip:port` this listens on (UDP and TCP). */
  address: string;
}

/** Where kubeadm mounts the Corefile (`-conf /etc/coredns/Corefile`); parse errors name it. */
const corefilePath = '/etc/coredns/Corefile';

/** A canonical zone as CoreDNS writes it: fully qualified. */
const fq = (zone: string) => `${zone}.`;

/* ---- Corefile: coredns/caddy caddyfile lexer.go, parse.go --------------------------------- */

interface Token {
  text: string;
  line: number;
  quoted: boolean;
  /** The file the token was read from: the Corefile, or a file it imports. */
  file: string;
}

/** Whether two tokens are on one line of one file (parse.go isNewLine compares both). */
const sameLine = (a: Token | undefined, b: Token) =>
  a !== undefined && a.line === b.line && a.file === b.file;

/** lexer.go next: tokens split at whitespace, `"..."` (with `\"`) one token, `#` to line end. */
function tokenize(text: string, file = corefilePath): Token[] {
  const tokens: Token[] = [];
  const word = /[^\s#]+/y;
  let line = 1;
  for (let i = 0; i < text.length;) {
    const ch = text[i];
    if (ch === '#') {
      while (i < text.length && text[i] !== '\n') i++;
    } else if (/\s/.test(ch)) {
      if (ch === '\n') line++;
      i++;
    } else if (ch === '"') {
      const start = line;
      let val = '';
      for (i++; i < text.length && text[i] !== '"'; i++) {
        if (text[i] === '\\' && text[i + 1] === '"') i++;
        if (text[i] === '\n') line++;
        val += text[i];
      }
      i++;
      tokens.push({ text: val, line: start, quoted: true, file });
    } else {
      word.lastIndex = i;
      const val = word.exec(text)?.[0] ?? ch;
      tokens.push({ text: val, line, quoted: false, file });
      i += val.length;
    }
  }
  return tokens;
}

/** One directive: its name, its arguments (the rest of its line), the lines of its block. */
interface Directive {
  name: string;
  args: string[];
  block: Directive[];
  line: number;
  file: string;
}

interface ServerBlock {
  keys: string[];
  directives: Directive[];
}

/** The files a CoreDNS pod sees besides its Corefile: its ConfigMap volumes, by absolute path. */
export type MountedFiles = ReadonlyMap<string, string>;

/** parse.go: more file imports than this in one parse is an error (a file importing itself). */
const maxFileImports = 1000;

/** filepath.Match for the patterns doImport lets through: `*` and `?` stay within a path element. */
function globMatches(pattern: string, file: string): boolean {
  const re = pattern
    .split('')
    .map(c =>
      c === '*' ? '[^/]*' : c === '?' ? '[^/]' : c.replace(/[.+^${}()|[\]\\]/g, '\\$&'),
    )
    .join('');
  return new RegExp(`^${re}$`).test(file);
}

/**
 * parse.go doImport, wherever the parser meets an `import` that begins a line (among a server
 * block's keys, as a directive, on a line of a directive's block): the directive and its one
 * argument are replaced by the tokens of the files its glob matches, in name order
 * (filepath.Glob), relative to the directory of the file the `import` is in; what an imported
 * file imports is expanded in turn. A glob that matches nothing is a warning; a plain path that
 * does not exist, a second wildcard, a directory or a missing argument are errors.
 */
function expandImports(
  tokens: Token[],
  files: MountedFiles,
  log: (m: string) => void,
): Token[] {
  const out = [...tokens];
  const dirs = new Set(
    [...files.keys()].flatMap(f =>
      f
        .split('/')
        .slice(1, -1)
        .map((_, k, parts) => `/${parts.slice(0, k + 1).join('/')}`),
    ),
  );
  let expansions = 0;
  for (let i = 0; i < out.length; i++) {
    const t = out[i];
    if (t.text !== 'import' || sameLine(out[i - 1], t)) continue;
    const fail = (msg: string) =>
      new Error(`${t.file}:${t.line} - Error during parsing: ${msg}`);
    if (!sameLine(out[i + 1], t))
      throw fail("Wrong argument count or unexpected line ending after 'import'");
    if (sameLine(out[i + 2], t))
      throw fail('Import takes only one argument (glob pattern or file)');
    const pattern = out[i + 1].text;
    if (pattern === '') throw fail('Import requires a non-empty filepath');
    if (++expansions > maxFileImports)
      throw fail(`maximum file import depth (${maxFileImports}) exceeded`);
    const glob = pattern.startsWith('/')
      ? pattern
      : path.posix.join(path.posix.dirname(t.file), pattern);
    if (
      glob.split('*').length > 2 ||
      glob.split('?').length > 2 ||
      (glob.includes('[') && glob.includes(']'))
    )
      throw fail(
        `Glob pattern may only contain one wildcard (*), but has others: ${glob}`,
      );
    const matches = [...files.keys(), ...dirs]
      .filter(f => globMatches(glob, f))
      .sort();
    if (matches.length === 0) {
      if (/[*?[\]]/.test(glob))
        log(`[WARNING] No files matching import glob pattern: ${pattern}`);
      else throw fail(`File to import not found: ${pattern}`);
    }
    const imported = matches.flatMap(f => {
      const content = files.get(f);
      if (content === undefined)
        throw fail(`Could not import ${f}: is a directory`);
      return tokenize(content, f);
    });
    out.splice(i, 2, ...imported);
    i -= 1;
  }
  return out;
}

/** parse.go parseAll: server blocks, each `key [key...] {`, then directives up to its `}`. */
function parseCorefile(
  text: string,
  files: MountedFiles = new Map(),
  log: (m: string) => void = () => undefined,
): ServerBlock[] {
  const tokens = expandImports(
    tokenize(text),
    new Map([...files, [corefilePath, text]]),
    log,
  );
  const fail = (t: Token | undefined, msg: string) =>
    new Error(`${t?.file ?? corefilePath}:${t?.line ?? 0} - ${msg}`);
  const brace = (t: Token | undefined, b: '{' | '}') =>
    t !== undefined && !t.quoted && t.text === b;
  let i = 0;
  /** Lines up to the `}` that closes this block; a nested block may close on a line's end. */
  const directives = (nested: boolean): Directive[] => {
    const out: Directive[] = [];
    for (;;) {
      const t = tokens[i++];
      if (!t) throw fail(tokens[tokens.length - 1], 'Unexpected EOF');
      if (brace(t, '}')) return out;
      if (brace(t, '{')) throw fail(t, "Unexpected '{'");
      const d: Directive = {
        name: t.text,
        args: [],
        block: [],
        line: t.line,
        file: t.file,
      };
      out.push(d);
      while (sameLine(tokens[i], t)) {
        const arg = tokens[i++];
        if (brace(arg, '{')) {
          d.block = directives(true);
          break;
        }
        if (brace(arg, '}')) {
          if (nested) return out;
          throw fail(arg, "Unexpected '}' because no matching opening brace");
        }
        d.args.push(arg.text);
      }
    }
  };
  const blocks: ServerBlock[] = [];
  while (i < tokens.length) {
    // Keys run to the end of the first one's line, or on while a key ends with a comma.
    const first = tokens[i];
    const keys: string[] = [];
    for (
      let t: Token | undefined = first;
      t &&
      !brace(t, '{') &&
      (sameLine(t, first) || keys[keys.length - 1].endsWith(','));
      t = tokens[++i]
    ) {
      if (brace(t, '}')) throw fail(t, "Unexpected '}'");
      keys.push(t.text);
    }
    if (keys.length === 0 || !brace(tokens[i], '{')) {
      throw fail(
        tokens[i] ?? first,
        "Syntax error: expecting '{' after the server block's keys",
      );
    }
    i++;
    blocks.push({
      keys: keys.map(k => k.replace(/,$/, '')).filter(k => k !== ''),
      directives: directives(false),
    });
  }
  return blocks;
}

/* ---- Loading: core/dnsserver register.go, address.go, zdirectives.go, plugin setups --------- */

/** zdirectives.go (v1.12.1): every directive CoreDNS knows. */
const knownDirectives = new Set(
  `root metadata geoip cancel tls timeouts multisocket reload nsid bufsize bind debug trace ready
  health pprof prometheus errors log dnstap local dns64 acl any chaos loadbalance tsig cache
  rewrite header dnssec autopath minimal template transfer hosts route53 azure clouddns
  k8s_external kubernetes file auto secondary etcd loop forward grpc erratic whoami on sign
  view`.split(/\s+/),
);

/** Plugins accepted and without effect here (see the header). */
const ignoredDirectives = new Set(
  'errors cache log health ready prometheus loop reload loadbalance'.split(' '),
);

interface KubernetesConfig {
  zones: string[];
  fallthrough: string[];
  ttl: number;
}

type ForwardTarget = { host: string; port: number } | '/etc/resolv.conf';

interface ForwardConfig {
  from: string;
  to: ForwardTarget[];
}

/** A server block's plugins as they serve each of its zones. */
interface Site {
  kubernetes?: KubernetesConfig;
  forwards: ForwardConfig[];
  empty: boolean;
}

/** A loaded Corefile: the sites of dns://<zone>:53, by canonical zone. */
type Instance = Map<string, Site>;

/** address.go normalizeZone: `[transport://]zone[:port]`. */
function parseKey(key: string) {
  const m = /^(?:([a-z]+):\/\/)?(.*?)(?::([0-9]+))?$/.exec(key);
  const zone = canonical(m?.[2] ?? '');
  if (zone !== '' && zone.split('.').some(l => l === '' || l.length > 63)) {
    throw new Error(`zone is not a valid domain name: ${key}`);
  }
  const port = m?.[3];
  return {
    transport: m?.[1] ?? 'dns',
    zone,
    port: port === undefined ? '53' : String(Number(port)),
  };
}

/** plugin/kubernetes setup.go ParseStanza, for the options modelled. */
function setupKubernetes(d: Directive, blockZones: string[]): KubernetesConfig {
  const k: KubernetesConfig = {
    zones: d.args.length > 0 ? d.args.map(a => parseKey(a).zone) : blockZones,
    fallthrough: [],
    ttl: 5,
  };
  for (const o of d.block) {
    if (o.name === 'fallthrough') {
      k.fallthrough = o.args.length > 0 ? o.args.map(canonical) : [''];
    } else if (o.name === 'ttl') {
      const ttl = Number(o.args[0]);
      if (
        o.args.length !== 1 ||
        !Number.isInteger(ttl) ||
        ttl < 0 ||
        ttl > 3600
      ) {
        throw new Error(`ttl must be in range [0, 3600]: ${o.args.join(' ')}`);
      }
      k.ttl = ttl;
    } else if (o.name !== 'pods') {
      throw new Error(`option ${o.name} is not modelled by this stand-in`);
    }
  }
  return k;
}

/** plugin/forward setup.go parseStanza with parse.HostPortOrFile; the block is ignored. */
function setupForward(d: Directive): ForwardConfig {
  const [from, ...to] = d.args;
  if (from === undefined || to.length === 0) {
    throw new Error(
      `${d.file}:${d.line} - Wrong argument count or unexpected line ending`,
    );
  }
  return {
    from: parseKey(from).zone,
    to: to.map((arg): ForwardTarget => {
      const target = arg.replace(/^dns:\/\//, '');
      if (target === '/etc/resolv.conf') return target;
      const m =
        /^\[(.*)\]:([0-9]+)$/.exec(target) ?? /^([^:]*):([0-9]+)$/.exec(target);
      const host = m ? m[1] : target;
      const port = m ? Number(m[2]) : 53;
      if (!net.isIP(host) || port > 65535) {
        throw new Error(`not an IP address or file: ${JSON.stringify(arg)}`);
      }
      return { host, port };
    }),
  };
}

/** caddy Start for the dns server type: the Corefile's sites on :53, or why it does not load. */
function load(
  blocks: ServerBlock[],
  log: (m: string) => void,
): Instance {
  const sites: Instance = new Map();
  const seen = new Set<string>();
  for (const block of blocks) {
    const keys = block.keys.map(parseKey);
    const site: Site = { forwards: [], empty: block.directives.length === 0 };
    for (const d of block.directives) {
      if (!knownDirectives.has(d.name)) {
        throw new Error(
          `${d.file}:${d.line} - Error during parsing: Unknown directive '${d.name}'`,
        );
      }
      try {
        if (d.name === 'kubernetes') {
          if (site.kubernetes)
            throw new Error(
              'this plugin can only be used once per Server Block',
            );
          site.kubernetes = setupKubernetes(
            d,
            keys.map(k => k.zone),
          );
        } else if (d.name === 'forward') {
          site.forwards.push(setupForward(d));
        } else if (!ignoredDirectives.has(d.name)) {
          throw new Error(
            `${d.name} is a CoreDNS plugin this stand-in does not model`,
          );
        }
      } catch (err) {
        throw new Error(`plugin/${d.name}: ${(err as Error).message}`);
      }
    }
    for (const { transport, zone, port } of keys) {
      const key = `${transport}://${fq(zone)}:${port}`;
      if (seen.has(key))
        throw new Error(`cannot serve ${key} - it is already defined`);
      seen.add(key);
      if (transport === 'dns' && port === '53') sites.set(zone, site);
      else
        log(
          `server block ${key} is for another listener: not served by this stand-in`,
        );
    }
  }
  return sites;
}

/* ---- Serving: core/dnsserver/server.go, plugin/kubernetes, plugin/forward ------------------ */

type Upstream = (query: Packet) => Promise<Packet>;

interface Env {
  source: KubernetesRecordSource;
  upstream: Upstream;
  /** The SOA serial: the stand-in's start time, as CoreDNS's is its last sync. */
  serial: number;
  log: (m: string) => void;
}

/** How deep ExternalName targets are followed through the server (a CNAME loop ends here). */
const maxLookupDepth = 8;

/** server.go ServeDNS: the most specific zone's block, its plugins in zdirectives.go order. */
async function serve(
  inst: Instance,
  q: Query,
  transport: Transport,
  env: Env,
  depth = 0,
): Promise<Packet> {
  const { name: asked, class: qclass } = q.questions[0];
  if ((qclass ?? 'IN') !== 'IN') return reply(q, Rcode.Refused);
  const name = canonical(asked);
  const labels = name === '' ? [] : name.split('.');
  let site: Site | undefined;
  for (let i = 0; i <= labels.length && !site; i++)
    site = inst.get(labels.slice(i).join('.'));
  if (!site || site.empty) return reply(q, Rcode.Refused);
  if (site.kubernetes) {
    // plugin/pkg/upstream Lookup: the same server, asked again.
    const lookup = (target: string, type: 'A' | 'AAAA') =>
      depth < maxLookupDepth
        ? serve(
            inst,
            { ...q, questions: [{ name: target, type, class: 'IN' }] },
            transport,
            env,
            depth + 1,
          )
        : undefined;
    const answer = await kubernetes(site.kubernetes, q, name, env, lookup);
    if (answer) return answer;
  }
  for (const f of site.forwards) {
    if (isSubDomain(f.from, name)) return forward(f, q, transport, env);
  }
  return reply(q, Rcode.ServFail);
}

/** What a name in a kubernetes zone stands for: addresses, a CNAME, or nothing (NXDOMAIN). */
type Found = { ips: string[] } | { cname: string } | undefined;

/** kubernetes.go endpointHostname: the hostname, else the IP with dashes. */
const endpointHostname = (e: { ip: string; hostname?: string }) =>
  e.hostname || e.ip.replace(/[.:]/g, '-');

/** parse.go parseRequest and kubernetes.go Records / findServices for `name` in `zone`. */
function find(
  source: KubernetesRecordSource,
  name: string,
  zone: string,
): Found {
  if (name === zone) return { ips: [] };
  const base = zone === '' ? name : name.slice(0, -(zone.length + 1));
  const [kind, namespace, service, endpoint, ...rest] = base
    .split('.')
    .reverse();
  if ((kind === 'svc' || kind === 'pod') && namespace === undefined)
    return { ips: [] };
  // Pod names and `_port._proto` names are not modelled: they do not exist here.
  if (kind !== 'svc' || rest.length > 0 || !source.namespaceExists(namespace))
    return undefined;
  if (service === undefined) return { ips: [] };
  const svc = source.service(namespace, service);
  if (!svc) return undefined;
  const ready = svc.endpoints.filter(e => e.ready);
  if (endpoint !== undefined) {
    const ips = ready
      .filter(e => endpointHostname(e) === endpoint)
      .map(e => e.ip);
    return ips.length > 0 ? { ips } : undefined;
  }
  if (svc.type === 'ExternalName') {
    return svc.externalName
      ? { cname: canonical(svc.externalName) }
      : undefined;
  }
  if (!svc.headless) return { ips: svc.clusterIPs };
  // A headless Service without ready endpoints has no records at all: NXDOMAIN.
  return ready.length > 0 ? { ips: ready.map(e => e.ip) } : undefined;
}

/** backend_lookup.go SOA. */
function soa(
  k: KubernetesConfig,
  zone: string,
  serial: number,
): dnsPacket.Answer {
  const under = (label: string) => (zone === '' ? label : `${label}.${zone}`);
  return {
    name: zone || '.',
    type: 'SOA',
    class: 'IN',
    ttl: Math.min(k.ttl, 300),
    data: {
      mname: under('ns.dns'),
      rname: under('hostmaster'),
      serial,
      refresh: 7200,
      retry: 1800,
      expire: 86400,
      minimum: k.ttl,
    },
  };
}

/** handler.go ServeDNS; `undefined` passes the query on (not in its zones, or fallthrough). */
async function kubernetes(
  k: KubernetesConfig,
  q: Query,
  name: string,
  env: Env,
  lookup: (target: string, type: 'A' | 'AAAA') => Promise<Packet> | undefined,
): Promise<Packet | undefined> {
  const zone = k.zones
    .filter(z => isSubDomain(z, name))
    .sort((a, b) => b.length - a.length)[0];
  if (zone === undefined) return undefined;
  const { name: qname, type } = q.questions[0];
  const found = find(env.source, name, zone);
  // backend_lookup.go BackendError: authoritative, the zone's SOA for negative caching.
  const negative = (rcode: number): Packet => ({
    ...reply(q, rcode, AA),
    authorities: [soa(k, zone, env.serial)],
  });
  if (!found) {
    return k.fallthrough.some(z => isSubDomain(z, name))
      ? undefined
      : negative(Rcode.NXDomain);
  }
  const answers: dnsPacket.Answer[] = [];
  if ('cname' in found) {
    if (type === 'A' || type === 'AAAA' || type === 'CNAME') {
      answers.push({
        name: qname,
        type: 'CNAME',
        class: 'IN',
        ttl: k.ttl,
        data: found.cname,
      });
    }
    if (type === 'A' || type === 'AAAA') {
      answers.push(...((await lookup(found.cname, type))?.answers ?? []));
    }
  } else if (type === 'A' || type === 'AAAA') {
    for (const data of new Set(found.ips)) {
      if (net.isIP(data) === (type === 'A' ? 4 : 6)) {
        answers.push({ name: qname, type, class: 'IN', ttl: k.ttl, data });
      }
    }
  } else if (type === 'SOA' && name === zone) {
    answers.push(soa(k, zone, env.serial));
  }
  return answers.length > 0
    ? { ...reply(q, Rcode.NoError, AA), answers }
    : negative(Rcode.NoError);
}

/** forward.go defaultTimeout and plugin/pkg/proxy readTimeout. */
const forwardDeadlineMs = 5000;
const attemptTimeoutMs = 2000;

/** forward.go ServeDNS with proxy/connect.go Connect: the targets in turn until the deadline. */
async function forward(
  f: ForwardConfig,
  q: Query,
  transport: Transport,
  env: Env,
): Promise<Packet> {
  const deadline = Date.now() + forwardDeadlineMs;
  let failure = 'no healthy proxies';
  for (let i = 0; Date.now() < deadline; i++) {
    const to = f.to[i % f.to.length];
    const started = Date.now();
    const query = { ...q, id: Math.floor(Math.random() * 65536) };
    try {
      const answer = await (to === '/etc/resolv.conf'
        ? Promise.race([
            env.upstream(query),
            sleep(attemptTimeoutMs, undefined, { ref: false }).then(() => {
              throw new Error(`read ${transport} ${to}: i/o timeout`);
            }),
          ])
        : exchange(to.host, to.port, query, transport, attemptTimeoutMs));
      return { ...answer, id: q.id };
    } catch (err) {
      failure = (err as Error).message;
      // CoreDNS retries at once; a refused connection fails at once too, so pause not to spin.
      if (Date.now() - started < 10) await sleep(10);
    }
  }
  const { name, type } = q.questions[0];
  env.log(
    `[ERROR] plugin/errors: 2 ${fq(canonical(name))} ${type}: ${failure}`,
  );
  return reply(q, Rcode.ServFail);
}

/** request.go SizeAndDo and Scrub: the client's OPT (if it sent one), truncated to its size. */
function scrub(q: Query, answer: Packet, transport: Transport): Packet {
  const opt = optOf(q);
  const additionals: dnsPacket.Answer[] = (answer.additionals ?? []).filter(
    rr => rr.type !== 'OPT',
  );
  if (opt) {
    const echoed: dnsPacket.OptAnswer = {
      ...opt,
      extendedRcode: 0,
      ednsVersion: 0,
      options: [],
    };
    additionals.push(echoed);
  }
  const out = { ...answer, additionals };
  return transport === 'udp' ? truncate(out, udpSize(q)) : out;
}

/* ---- The server ----------------------------------------------------------------------------- */

/** What `forward . /etc/resolv.conf` reaches by default: public DNS knows none of these names. */
const nxdomainEverywhere: Upstream = async query => ({
  id: query.id,
  type: 'response',
  flags:
    ((query.flags ?? 0) & dnsPacket.RECURSION_DESIRED) |
    dnsPacket.RECURSION_AVAILABLE |
    Rcode.NXDomain,
  questions: query.questions,
});

export async function startCoreDns(opts: {
  host: string;
  port?: number;
  kubernetes: KubernetesRecordSource;
  upstream?: Upstream;
  log?: (m: string) => void;
}): Promise<CoreDns> {
  const port = opts.port ?? 53;
  const log = opts.log ?? (() => undefined);
  const env: Env = {
    source: opts.kubernetes,
    upstream: opts.upstream ?? nxdomainEverywhere,
    serial: Math.floor(Date.now() / 1000),
    log,
  };
  let running: Instance | undefined;
  let listener: DnsListener | undefined;
  let starting: Promise<void> | undefined;
  let closed = false;
  const listen = () =>
    listenDns({
      host: opts.host,
      port,
      log,
      handler: async (q, transport) =>
        running && scrub(q, await serve(running, q, transport, env), transport),
    });

  // Bind once to fail early on an address that is not there; then down until a Corefile loads.
  await (await listen()).close();

  let corefile: string | undefined;
  let files: MountedFiles = new Map();
  /** The running configuration, as plugin/reload hashes it: the parsed server blocks. */
  let runningBlocks: string | undefined;
  const apply = () => {
    if (closed || corefile === undefined) return;
    let inst: Instance;
    let blocks: string;
    try {
      const parsed = parseCorefile(corefile, files, log);
      blocks = JSON.stringify(parsed);
      if (running && blocks === runningBlocks) return;
      inst = load(parsed, log);
    } catch (err) {
      const why = (err as Error).message;
      log(
        running
          ? `[ERROR] plugin/reload: Corefile changed but reload failed: ${why}`
          : `CoreDNS cannot start with this Corefile, the pod crash-loops: ${why}`,
      );
      return;
    }
    const zones = [...inst.keys()].map(z => `dns://${fq(z)}:53`).join(' ');
    log(
      running
        ? '[INFO] Reloading complete'
        : `CoreDNS-1.12.1 started (${zones})`,
    );
    running = inst;
    runningBlocks = blocks;
    starting ??= listen().then(
      l => {
        listener = l;
      },
      (err: unknown) =>
        log(`cannot listen on ${hostPort(opts.host, port)}: ${String(err)}`),
    );
  };

  return {
    address: hostPort(opts.host, port),
    setCorefile(text) {
      corefile = text;
      apply();
    },
    setFiles(next) {
      files = next;
      apply();
    },
    async close() {
      closed = true;
      await starting;
      await listener?.close();
    },
  };
}

/** For tests: the Corefile parser. */
export const internals = { parseCorefile };
