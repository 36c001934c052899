/*
 * Stand-in for CoreDNS as a kubeadm cluster runs it (Deployment `coredns` in kube-system behind
 * the `kube-dns` Service, its Corefile from ConfigMap kube-system/coredns): listens on UDP and TCP
 * port 53 of the kube-dns ClusterIP and answers from the Corefile it is given, so that what a
 * program writes into that Corefile (Tailmesh's `mesh:tailscale:configure-dns` tailnet stanza
 * among it) is what name resolution in the cluster does, as far as what is modelled goes.
 *
 * Follows github.com/coredns/coredns v1.12.1 (the CoreDNS of kubeadm for Kubernetes 1.34) and the
 * Caddyfile parser it is built with, github.com/coredns/caddy 8de985351a98:
 *  - caddy caddyfile/lexer.go, parse.go, dispenser.go: tokens, quotes, `#` comments, server blocks
 *    with their keys, directives grouped by name, snippets and `import`, `{$ENV}` references;
 *    caddy.go executeDirectives and loadServerBlocks: setup in plugin order, only for a block's
 *    first key; an empty Corefile means `.:53 { whoami log }`;
 *  - core/dnsserver/zdirectives.go: the valid directives and their order in the plugin chain;
 *  - core/dnsserver/register.go, address.go and plugin/normalize.go: keys `[transport://]zone[:port]`
 *    (reverse CIDR zones expanded), a zone served twice refused;
 *  - core/dnsserver/server.go ServeDNS: the most specific server block zone for the query name
 *    wins, `.` last; REFUSED when none covers the name or the block has no plugin that answers;
 *    REFUSED for a class other than IN unless forward (or chaos) is loaded; BADVERS for EDNS
 *    version > 0; errorFunc for a plugin's SERVFAIL/REFUSED/FORMERR/NOTIMP; request/writer.go
 *    ScrubWriter with request/request.go SizeAndDo and Scrub (OPT echoed, truncation to 512 bytes
 *    or the client's EDNS size on UDP, with TC; name compression when needed);
 *  - plugin/kubernetes handler.go, kubernetes.go, parse.go, setup.go, ns.go, namespace.go and
 *    plugin/backend_lookup.go: A/AAAA/SRV/TXT/CNAME/MX/SOA/NS/PTR for `<svc>.<ns>.svc.<zone>`,
 *    `<endpoint>.<svc>.<ns>.svc.<zone>`, `_<port>._<proto>.<svc>.<ns>.svc.<zone>` and
 *    (`pods insecure`) `<a-b-c-d>.<ns>.pod.<zone>`; ExternalName as a CNAME followed inside the
 *    zone or through this same server (plugin/pkg/upstream); NXDOMAIN / NODATA with the zone's
 *    SOA, as plugin.BackendError writes them; `fallthrough`, `ttl`, `namespaces`, `noendpoints`,
 *    `ignore empty_service`;
 *  - plugin/forward forward.go, setup.go, policy.go and plugin/pkg/proxy connect.go, proxy.go:
 *    `forward FROM TO...` with `except`, `policy`, `force_tcp`, `prefer_udp`, `max_concurrent`,
 *    `next`, ...; the upstream is asked over the client's transport (UDP unless the client used TCP,
 *    `force_tcp` or `prefer_udp` change that), a reply that overflows the UDP buffer comes back as
 *    an empty truncated reply, TCP is retried on truncation only with `prefer_udp`; 2 s per attempt,
 *    attempts repeated until 5 s have passed, then SERVFAIL; `/etc/resolv.conf` is the
 *    `upstream` given to startCoreDns;
 *  - plugin/reload reload.go, setup.go: a changed Corefile is loaded only while the running one
 *    has `reload`; one that does not parse or set up keeps the running configuration, logged as
 *    "Corefile parse failed" / "Corefile changed but reload failed";
 *  - the setup of errors, log, cache, health, ready, prometheus (metrics), loop, loadbalance and
 *    whoami, for the arguments they refuse.
 *
 * Modelled beyond that: errors and log write their lines through `log`; whoami answers. Accepted
 * and otherwise without effect: cache (answers are never stale), health, ready, prometheus (no
 * extra listeners), loop (no loop detection), loadbalance (records keep their order), reload's
 * interval (a change applies at once). Other CoreDNS plugins (hosts, rewrite, template, ...) and
 * options this stand-in cannot honour (kubernetes `labels`, `namespace_labels`,
 * `endpoint_pod_names`; forward to tls://; loadbalance `weighted`) make the Corefile refused, with
 * that reason logged, rather than silently ignored. The first Corefile is the pod's start: one
 * that does not load leaves CoreDNS down (crash-looping: the Service has no ready endpoint, so
 * the sockets are closed and clients see "connection refused"), until a Corefile that loads.
 *
 * `clusterDomain` (the kubelet's) only serves to log a Corefile whose kubernetes plugin does not
 * serve it; what is served is what the Corefile says. The SOA serial is the stand-in's start time.
 *
 * Not modelled: server blocks for other ports or transports (they are checked, then not served),
 * `{$ENV}` values (the pod's environment is not known here: they expand to nothing), imported
 * files (only the Corefile key is mounted, so `import <file>` finds nothing), reverse (PTR)
 * lookups of cluster IPs (the record source cannot be searched by IP: they fall through or get
 * NXDOMAIN), `pods verified` (no pod data: NXDOMAIN), SRV ports of headless endpoints (the
 * Service's ports are used, not the EndpointSlice's target ports), the NS/`ns.dns` address (this
 * server's own address), upstream health checks and connection reuse, the Kubernetes API sync.
 */
import * as dnsPacket from 'dns-packet';
import dgram from 'node:dgram';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  type DnsClient,
  type DnsListener,
  type Msg,
  type OptRR,
  type Question,
  type RR,
  ClassINET,
  Rcode,
  Type,
  acceptAction,
  classCode,
  copyMsg,
  countLabel,
  formatIPv4,
  formatIPv6,
  fqdn,
  fromPacketName,
  goAtoi,
  hostPort,
  isDomainName,
  isEdns0,
  isSubDomain,
  listenDns,
  msgToPacket,
  newMsg,
  nextLabel,
  packMsg,
  packetToMsg,
  parseGoDuration,
  parseGoIP,
  prevLabel,
  readHeader,
  rejectReply,
  setRcode,
  setReply,
  splitDomainName,
  to4,
  toPacketName,
  truncateMsg,
  typeCode,
  unpackMsg,
  unpackName,
} from './dnsServer';

export type Packet = dnsPacket.Packet;

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
   * The Corefile as the ConfigMap now holds it. The first one starts CoreDNS; later ones are
   * loaded as the reload plugin loads them (only while the running Corefile has `reload`); one
   * that does not load keeps the previous configuration and logs why.
   */
  setCorefile(text: string): void;
  close(): Promise<void>;
  /** `ip:port` this listens on (UDP and TCP). */
  address: string;
}

/** Where kubeadm mounts the Corefile (`-conf /etc/coredns/Corefile`); errors name it. */
const corefilePath = '/etc/coredns/Corefile';

/* =========================================================================================== */
/* Corefile: coredns/caddy caddyfile                                                            */
/* =========================================================================================== */

interface Token {
  file: string;
  line: number;
  text: string;
}

/** unicode.IsSpace. */
const isSpace = (ch: string) =>
  /[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]/.test(
    ch,
  );

/** lexer.go: load (BOM dropped) and next, over the whole input. */
function allTokens(input: string): Token[] {
  const tokens: Token[] = [];
  const chars = [...input];
  let i = chars[0] === '\ufeff' ? 1 : 0;
  let line = 1;
  for (;;) {
    let val = '';
    let has = false;
    let comment = false;
    let quoted = false;
    let escaped = false;
    let tokenLine = line;
    let done = false;
    while (!done) {
      if (i >= chars.length) {
        if (has) tokens.push({ file: '', line: tokenLine, text: val });
        return tokens;
      }
      const ch = chars[i++];
      if (quoted) {
        if (!escaped) {
          if (ch === '\\') {
            escaped = true;
            continue;
          } else if (ch === '"') {
            tokens.push({ file: '', line: tokenLine, text: val });
            done = true;
            continue;
          }
        }
        if (ch === '\n') line++;
        if (escaped && ch !== '"') val += '\\'; // only quotes are escaped
        val += ch;
        escaped = false;
        continue;
      }
      if (isSpace(ch)) {
        if (ch === '\r') continue;
        if (ch === '\n') {
          line++;
          comment = false;
        }
        if (has) {
          tokens.push({ file: '', line: tokenLine, text: val });
          done = true;
        }
        continue;
      }
      if (ch === '#') comment = true;
      if (comment) continue;
      if (!has) {
        tokenLine = line;
        has = true;
        if (ch === '"') {
          quoted = true;
          continue;
        }
      }
      val += ch;
    }
  }
}

/** parse.go replaceEnvVars / replaceEnvReferences; the pod's environment is unknown: empty. */
function replaceEnvVars(s: string): string {
  const replace = (input: string, start: string, end: string) => {
    let out = input;
    let index = out.indexOf(start);
    while (index !== -1) {
      let endIndex = out.slice(index).indexOf(end);
      if (endIndex === -1) break;
      endIndex += index;
      if (endIndex > index + start.length) {
        const ref = out.slice(index, endIndex + end.length);
        out = out.split(ref).join('');
      } else {
        return out;
      }
      index = out.indexOf(start);
    }
    return out;
  };
  return replace(replace(s, '{%', '%}'), '{$', '}');
}

/** dispenser.go Dispenser. */
class Dispenser {
  cursor = -1;
  nesting = 0;

  constructor(
    readonly filename: string,
    public tokens: Token[],
  ) {}

  next(): boolean {
    if (this.cursor < this.tokens.length - 1) {
      this.cursor++;
      return true;
    }
    return false;
  }

  private lineBreaks(i: number): number {
    if (i < 0 || i >= this.tokens.length) return 0;
    return this.tokens[i].text.split('\n').length - 1;
  }

  nextArg(): boolean {
    if (this.cursor < 0) {
      this.cursor++;
      return true;
    }
    if (this.cursor >= this.tokens.length) return false;
    const c = this.cursor;
    if (
      c < this.tokens.length - 1 &&
      this.tokens[c].file === this.tokens[c + 1].file &&
      this.tokens[c].line + this.lineBreaks(c) === this.tokens[c + 1].line
    ) {
      this.cursor++;
      return true;
    }
    return false;
  }

  nextBlock(): boolean {
    if (this.nesting > 0) {
      // Stops at the end of the tokens, as caddy does since its NextBlock fix (coredns/caddy#10);
      // setups only ever see balanced blocks, so the result is the same.
      if (!this.next()) return false;
      if (this.val() === '}') {
        this.nesting--;
        return false;
      }
      return true;
    }
    if (!this.nextArg()) return false;
    if (this.val() !== '{') {
      this.cursor--;
      return false;
    }
    if (!this.next()) return false;
    if (this.val() === '}') return false;
    this.nesting++;
    return true;
  }

  val(): string {
    if (this.cursor < 0 || this.cursor >= this.tokens.length) return '';
    return this.tokens[this.cursor].text;
  }

  line(): number {
    if (this.cursor < 0 || this.cursor >= this.tokens.length) return 0;
    return this.tokens[this.cursor].line;
  }

  file(): string {
    if (this.cursor < 0 || this.cursor >= this.tokens.length)
      return this.filename;
    return this.tokens[this.cursor].file || this.filename;
  }

  remainingArgs(): string[] {
    const args: string[] = [];
    while (this.nextArg()) {
      if (this.val() === '{') {
        this.cursor--;
        break;
      }
      args.push(this.val());
    }
    return args;
  }

  argErr(): Error {
    if (this.val() === '{')
      return this.err("Unexpected token '{', expecting argument");
    return this.err(
      `Wrong argument count or unexpected line ending after '${this.val()}'`,
    );
  }

  syntaxErr(expected: string): Error {
    return new Error(
      `${this.file()}:${this.line()} - Syntax error: Unexpected token '${this.val()}', expecting '${expected}'`,
    );
  }

  eofErr(): Error {
    return this.err('Unexpected EOF');
  }

  err(msg: string): Error {
    return new Error(
      `${this.file()}:${this.line()} - Error during parsing: ${msg}`,
    );
  }

  isNewLine(): boolean {
    if (this.cursor < 1) return true;
    if (this.cursor > this.tokens.length - 1) return false;
    const c = this.cursor;
    return (
      this.tokens[c - 1].file !== this.tokens[c].file ||
      this.tokens[c - 1].line + this.lineBreaks(c - 1) < this.tokens[c].line
    );
  }
}

interface ServerBlock {
  keys: string[];
  tokens: Map<string, Token[]>;
}

/**
 * Cap on snippet imports. caddy 8de985351a98 has none (a snippet importing itself never ends
 * there); later caddy versions refuse beyond 10000, as this does.
 */
const maxSnippetExpansions = 10000;

/** parse.go parser. */
class CaddyfileParser extends Dispenser {
  private block: ServerBlock = { keys: [], tokens: new Map() };
  private eof = false;
  private readonly snippets = new Map<string, Token[]>();
  private snippetExpansions = 0;

  constructor(
    filename: string,
    input: string,
    private readonly validDirectives: readonly string[] | undefined,
  ) {
    super(filename, allTokens(input));
  }

  parseAll(): ServerBlock[] {
    const blocks: ServerBlock[] = [];
    while (this.next()) {
      this.block = { keys: [], tokens: new Map() };
      this.begin();
      if (this.block.keys.length > 0) blocks.push(this.block);
    }
    return blocks;
  }

  private begin() {
    if (this.tokens.length === 0) return;
    this.addresses();
    if (this.eof) return;
    const keys = this.block.keys;
    if (keys.length === 1 && keys[0].startsWith('(') && keys[0].endsWith(')')) {
      const name = keys[0].slice(1).replace(/\)$/, '');
      if (this.snippets.has(name)) {
        throw this.err(`redeclaration of previously declared snippet ${name}`);
      }
      this.snippets.set(name, this.snippetTokens());
      this.block.keys = [];
      return;
    }
    this.blockContents();
  }

  private addresses() {
    let expectingAnother = false;
    for (;;) {
      let tkn = replaceEnvVars(this.val());
      if (tkn === 'import' && this.isNewLine()) {
        this.doImport();
        continue;
      }
      if (tkn === '{') {
        if (expectingAnother) {
          throw this.err(
            `Expected another address but had '${tkn}' - check for extra comma`,
          );
        }
        break;
      }
      if (tkn !== '') {
        if (tkn.endsWith(',')) {
          tkn = tkn.slice(0, -1);
          expectingAnother = true;
        } else {
          expectingAnother = false;
        }
        this.block.keys.push(tkn);
      }
      const hasNext = this.next();
      if (expectingAnother && !hasNext) throw this.eofErr();
      if (!hasNext) {
        this.eof = true;
        break;
      }
      if (!expectingAnother && this.isNewLine()) break;
    }
  }

  private blockContents() {
    const open = this.val() === '{';
    if (!open) this.cursor--; // single-server configs don't need curly braces
    this.directives();
    if (open && this.val() !== '}') throw this.syntaxErr('}');
  }

  private directives() {
    while (this.next()) {
      if (this.val() === '}') break;
      if (this.val() === 'import') {
        this.doImport();
        this.cursor--;
        continue;
      }
      this.directive();
    }
  }

  private doImport() {
    if (!this.nextArg()) throw this.argErr();
    const pattern = replaceEnvVars(this.val());
    if (pattern === '') throw this.err('Import requires a non-empty filepath');
    if (this.nextArg())
      throw this.err('Import takes only one argument (glob pattern or file)');
    const before = this.tokens.slice(0, this.cursor - 1);
    const after = this.tokens.slice(this.cursor + 1);
    let imported: Token[] = [];
    const snippet = this.snippets.get(pattern);
    if (snippet) {
      if (this.snippetExpansions >= maxSnippetExpansions) {
        throw this.err(
          `maximum snippet import depth (${maxSnippetExpansions}) exceeded`,
        );
      }
      this.snippetExpansions++;
      imported = snippet;
    } else {
      // The pod mounts only the Corefile key of the ConfigMap: no other file matches.
      const abs = pattern.startsWith('/') ? pattern : `/etc/coredns/${pattern}`;
      if (
        (abs.match(/\*/g) ?? []).length > 1 ||
        (abs.match(/\?/g) ?? []).length > 1 ||
        (abs.includes('[') && abs.includes(']'))
      ) {
        throw this.err(
          `Glob pattern may only contain one wildcard (*), but has others: ${abs}`,
        );
      }
      if (!/[*?[\]]/.test(abs))
        throw this.err(`File to import not found: ${pattern}`);
    }
    this.tokens = [...before, ...imported, ...after];
    this.cursor--;
  }

  private directive() {
    const dir = replaceEnvVars(this.val());
    let nesting = 0;
    if (this.validDirectives && !this.validDirectives.includes(dir)) {
      throw this.err(`Unknown directive '${dir}'`);
    }
    const list = this.block.tokens.get(dir) ?? [];
    this.block.tokens.set(dir, list);
    list.push(this.tokens[this.cursor]);
    while (this.next()) {
      if (this.val() === '{') {
        nesting++;
      } else if (this.isNewLine() && nesting === 0) {
        this.cursor--; // read too far
        break;
      } else if (this.val() === '}' && nesting > 0) {
        nesting--;
      } else if (this.val() === '}' && nesting === 0) {
        throw this.err("Unexpected '}' because no matching opening brace");
      } else if (this.val() === 'import' && this.isNewLine()) {
        this.doImport();
        this.cursor--;
        continue;
      }
      const t = this.tokens[this.cursor];
      const replaced = { ...t, text: replaceEnvVars(t.text) };
      this.tokens[this.cursor] = replaced;
      list.push(replaced);
    }
    if (nesting > 0) throw this.eofErr();
  }

  private snippetTokens(): Token[] {
    if (this.val() !== '{') throw this.syntaxErr('{');
    let count = 1;
    const tokens: Token[] = [];
    while (this.next()) {
      if (this.val() === '}') {
        count--;
        if (count === 0) break;
      }
      if (this.val() === '{') count++;
      tokens.push(this.tokens[this.cursor]);
    }
    if (count !== 0) throw this.syntaxErr('}');
    return tokens;
  }
}

/** core/dnsserver/zdirectives.go (v1.12.1): every directive CoreDNS knows, in chain order. */
const directives = [
  'root',
  'metadata',
  'geoip',
  'cancel',
  'tls',
  'timeouts',
  'multisocket',
  'reload',
  'nsid',
  'bufsize',
  'bind',
  'debug',
  'trace',
  'ready',
  'health',
  'pprof',
  'prometheus',
  'errors',
  'log',
  'dnstap',
  'local',
  'dns64',
  'acl',
  'any',
  'chaos',
  'loadbalance',
  'tsig',
  'cache',
  'rewrite',
  'header',
  'dnssec',
  'autopath',
  'minimal',
  'template',
  'transfer',
  'hosts',
  'route53',
  'azure',
  'clouddns',
  'k8s_external',
  'kubernetes',
  'file',
  'auto',
  'secondary',
  'etcd',
  'loop',
  'forward',
  'grpc',
  'erratic',
  'whoami',
  'on',
  'sign',
  'view',
] as const;

/** The caddy.ServerType DefaultInput of core/dnsserver/register.go. */
const defaultInput = '.:53 {\nwhoami\nlog\n}\n';

function parseCorefile(text: string, validate: boolean): ServerBlock[] {
  return new CaddyfileParser(
    corefilePath,
    text,
    validate ? directives : undefined,
  ).parseAll();
}

/** What reload.go hashes: the parsed blocks (keys and tokens with their lines). */
function corefileDigest(blocks: ServerBlock[]): string {
  return JSON.stringify(
    blocks.map(b => ({
      keys: b.keys,
      tokens: [...b.tokens.entries()].sort(([a], [c]) =>
        a < c ? -1 : a > c ? 1 : 0,
      ),
    })),
  );
}

/* =========================================================================================== */
/* Zones and addresses: core/dnsserver/register.go, address.go, plugin/normalize.go            */
/* =========================================================================================== */

const transports = ['tls', 'dns', 'quic', 'grpc', 'https', 'unix'] as const;
const defaultPorts: Record<string, string> = {
  dns: '53',
  tls: '853',
  quic: '853',
  grpc: '443',
  https: '443',
};

/** plugin/pkg/parse/transport.go Transport. */
function splitTransport(s: string): [string, string] {
  for (const t of transports) {
    if (s.startsWith(`${t}://`)) return [t, s.slice(t.length + 3)];
  }
  return ['dns', s];
}

/** net.ParseCIDR: address bytes (4 or 16), prefix length. */
function parseCIDR(
  s: string,
): { ip: Uint8Array; ones: number; bits: number } | undefined {
  const slash = s.indexOf('/');
  if (slash < 0) return undefined;
  const addr = s.slice(0, slash);
  const mask = s.slice(slash + 1);
  const ip16 = parseGoIP(addr);
  if (!ip16) return undefined;
  const is4 = /^[^:]*\./.test(addr) && !addr.includes(':');
  const bits = is4 ? 32 : 128;
  if (!/^[0-9]+/.test(mask)) return undefined;
  const digits = /^[0-9]+/.exec(mask)?.[0] ?? '';
  if (digits.length !== mask.length) return undefined;
  const ones = Number(digits);
  if (ones > bits) return undefined;
  const ip = is4 ? ip16.slice(12) : ip16.slice();
  for (let b = ones; b < bits; b++) ip[b >> 3] &= ~(0x80 >> (b & 7));
  return { ip, ones, bits };
}

function bytesToBig(b: Uint8Array): bigint {
  return b.reduce((acc, x) => (acc << 8n) | BigInt(x), 0n);
}

function bigToBytes(v: bigint, len: number): Uint8Array {
  const out = new Uint8Array(len);
  let x = v;
  for (let i = len - 1; i >= 0; i--) {
    out[i] = Number(x & 0xffn);
    x >>= 8n;
  }
  return out;
}

/** miekg/dns ReverseAddr. */
function reverseAddr(ip: Uint8Array): string {
  if (ip.length === 4) return `${[...ip].reverse().join('.')}.in-addr.arpa.`;
  const nibbles: string[] = [];
  for (const b of ip)
    nibbles.push((b >> 4).toString(16), (b & 0xf).toString(16));
  return `${nibbles.reverse().join('.')}.ip6.arpa.`;
}

/** plugin/pkg/cidr Split and Reverse: the reverse zones of a network. */
function reverseZones(n: {
  ip: Uint8Array;
  ones: number;
  bits: number;
}): string[] {
  const boundary = n.bits === 32 ? 8 : 4;
  const mask = Math.ceil(n.ones / boundary) * boundary;
  const count = 2 ** (mask - n.ones);
  const step = 1n << BigInt(n.bits - mask);
  const base = bytesToBig(n.ip);
  const zones: string[] = [];
  for (let i = 0; i < count; i++) {
    const r = reverseAddr(bigToBytes(base + BigInt(i) * step, n.ip.length));
    let offset = 0;
    for (let l = 0; l < (n.bits - mask) / boundary; l++) {
      const [next, end] = nextLabel(r, offset);
      if (end) break;
      offset = next;
    }
    zones.push(r.slice(offset));
  }
  return zones;
}

/** plugin/normalize.go SplitHostPort. */
function splitHostPort(input: string): { hosts: string[]; port: string } {
  let s = input;
  const colon = s.lastIndexOf(':');
  if (colon === s.length - 1)
    throw new Error(`expecting data after last colon: ${JSON.stringify(s)}`);
  let port = '';
  if (colon !== -1) {
    const p = goAtoi(s.slice(colon + 1));
    if (p !== undefined) {
      port = String(p);
      s = s.slice(0, colon);
    }
  }
  if (s.length > 255)
    throw new Error(`specified zone is too long: ${s.length} > 255`);
  if (!isDomainName(s))
    throw new Error(`zone is not a valid domain name: ${s}`);
  const n = parseCIDR(s);
  if (!n) return { hosts: [s], port };
  if (s[0] === ':' || (s[0] === '0' && s.includes(':')))
    throw new Error(`invalid CIDR ${s}`);
  return { hosts: reverseZones(n), port };
}

/** plugin.Name(n).Normalize: lower case, fully qualified. */
const normalizeName = (n: string) => fqdn(n).toLowerCase();

/** plugin.Host(h).NormalizeExact. */
function normalizeExact(h: string): string[] {
  try {
    return splitHostPort(splitTransport(h)[1]).hosts.map(normalizeName);
  } catch {
    return [];
  }
}

/** plugin.OriginsFromArgsOrServerBlock. */
function originsFromArgsOrServerBlock(
  args: string[],
  keys: string[],
): string[] {
  if (args.length === 0) return keys.map(k => normalizeExact(k)[0]);
  return args.flatMap(a => normalizeExact(a));
}

/** plugin.Zones.Matches: the longest zone the name is in, or "". */
function zonesMatch(zones: string[], qname: string): string {
  let zone = '';
  for (const z of zones)
    if (isSubDomain(z, qname) && z.length > zone.length) zone = z;
  return zone;
}

/** plugin.Name(n).Matches(child). */
const nameMatches = (n: string, child: string) =>
  n === child || isSubDomain(n, child);

/** Go's net.SplitHostPort, for the listen addresses of health, ready and prometheus. */
function checkHostPort(s: string): void {
  const missingPort = () => new Error(`address ${s}: missing port in address`);
  const i = s.lastIndexOf(':');
  if (i < 0) throw missingPort();
  if (s[0] === '[') {
    const end = s.indexOf(']');
    if (end < 0) throw new Error(`address ${s}: missing ']' in address`);
    if (end + 1 === s.length) throw missingPort();
    if (end + 1 !== i) {
      if (s[end + 1] === ':')
        throw new Error(`address ${s}: too many colons in address`);
      throw missingPort();
    }
  } else if (s.slice(0, i).includes(':')) {
    throw new Error(`address ${s}: too many colons in address`);
  }
}

/* =========================================================================================== */
/* Requests, writers, handlers                                                                  */
/* =========================================================================================== */

/** The name and class of a query's question as they were on the wire (exact escapes). */
const wireQuestion = new WeakMap<Question, { name: string; qclass: number }>();

interface Writer {
  readonly client: DnsClient;
  writeMsg(m: Msg): void;
}

/** What the network writer, and plugin/pkg/nonwriter for internal lookups, keep. */
class CaptureWriter implements Writer {
  msg: Msg | undefined;
  constructor(readonly client: DnsClient) {}
  writeMsg(m: Msg) {
    this.msg ??= m;
  }
}

/** request/request.go Request. */
class Req {
  zone = '';
  constructor(
    readonly r: Msg,
    readonly w: Writer,
  ) {}

  private q(): Question | undefined {
    return this.r.question[0];
  }

  /** QName: as asked (case kept). */
  qname(): string {
    const q = this.q();
    if (!q) return '.';
    return wireQuestion.get(q)?.name ?? fromPacketName(q.name);
  }

  /** Name: lower case. */
  name(): string {
    return this.qname().toLowerCase();
  }

  qtype(): number {
    const q = this.q();
    return q ? typeCode(q.type) : 0;
  }

  type(): string {
    return this.q()?.type ?? '';
  }

  qclass(): number {
    const q = this.q();
    if (!q) return 0;
    return wireQuestion.get(q)?.qclass ?? classCode(q.class);
  }

  proto(): 'udp' | 'tcp' {
    return this.w.client.transport;
  }

  family(): 1 | 2 {
    return net.isIPv6(this.w.client.address) &&
      !this.w.client.address.startsWith('::ffff:')
      ? 2
      : 1;
  }

  /** Size: the client's buffer (edns.Size: 512 at least on UDP, 65535 on TCP). */
  size(): number {
    if (this.proto() === 'tcp') return 65535;
    const o = isEdns0(this.r);
    const size = o?.udpPayloadSize ?? 0;
    return size < 512 ? 512 : size;
  }

  do(): boolean {
    return ((isEdns0(this.r)?.flags ?? 0) & dnsPacket.DNSSEC_OK) !== 0;
  }

  /** NewWithQuestion: a copy of the request asking `name` (made fully qualified), class IN. */
  withQuestion(name: string, type: string): Req {
    const r = copyMsg(this.r);
    r.question = [
      {
        name: toPacketName(fqdn(name)),
        type: type as dnsPacket.RecordType,
        class: 'IN',
      },
    ];
    return new Req(r, this.w);
  }

  /** Match: does `reply` answer this request's question. */
  match(reply: Msg): boolean {
    if (reply.question.length !== 1 || !reply.response) return false;
    if (fromPacketName(reply.question[0].name).toLowerCase() !== this.name())
      return false;
    return typeCode(reply.question[0].type) === this.qtype();
  }
}

/** edns.go supportedOptions: NSID, EXPIRE, COOKIE, TCP-KEEPALIVE, PADDING. */
const supportedOptionCodes = new Set([3, 9, 10, 11, 12]);

/** request.go SizeAndDo: give the reply an OPT matching the request's, if the request had one. */
function sizeAndDo(req: Msg, m: Msg): boolean {
  const o = isEdns0(req);
  if (!o) return false;
  const mo = isEdns0(m);
  if (mo) {
    const fixed: OptRR = {
      ...mo,
      name: '.',
      ednsVersion: 0,
      extendedRcode: 0,
      udpPayloadSize: o.udpPayloadSize,
      flags:
        ((mo.flags ?? 0) & 0xff00) | ((o.flags ?? 0) & dnsPacket.DNSSEC_OK),
    };
    m.extra = m.extra.map(rr => (rr === mo ? fixed : rr));
    return true;
  }
  m.extra.push({
    ...o,
    name: '.',
    ednsVersion: 0,
    extendedRcode: 0,
    flags: (o.flags ?? 0) & 0xff00,
    options: (o.options ?? []).filter(opt =>
      supportedOptionCodes.has(Number(opt.code)),
    ),
  });
  return true;
}

/** request/writer.go ScrubWriter: SizeAndDo, then Scrub (truncate, compress) on every write. */
class ScrubWriter implements Writer {
  constructor(
    private readonly req: Req,
    private readonly inner: Writer,
  ) {}

  get client() {
    return this.inner.client;
  }

  writeMsg(m: Msg) {
    sizeAndDo(this.req.r, m);
    truncateMsg(m, this.req.size());
    if (!m.compress && this.req.proto() === 'udp') {
      // "Last ditch attempt to avoid fragmentation" (request.go Scrub).
      const len = packMsg(m).length;
      if (
        (len > 1480 && this.req.family() === 1) ||
        (len > 1220 && this.req.family() === 2)
      ) {
        m.compress = true;
      }
    }
    this.inner.writeMsg(m);
  }
}

interface Ctx {
  server: Instance;
  /** Guards the upstream-through-ourselves recursion (plugin/pkg/upstream). */
  depth: number;
}

interface Result {
  rcode: number;
  err?: Error;
}

interface Handler {
  readonly name: string;
  serve(ctx: Ctx, w: Writer, r: Msg): Promise<Result>;
}

type HandlerFactory = (next: Handler | undefined) => Handler;

const pluginError = (name: string, err: Error | string) =>
  new Error(`plugin/${name}: ${typeof err === 'string' ? err : err.message}`);

/** plugin.NextOrFailure. */
async function nextOrFailure(
  name: string,
  next: Handler | undefined,
  ctx: Ctx,
  w: Writer,
  r: Msg,
): Promise<Result> {
  if (next) return next.serve(ctx, w, r);
  return {
    rcode: Rcode.ServerFailure,
    err: pluginError(name, 'no next plugin found'),
  };
}

/** plugin.ClientWrite: rcodes that mean "nothing was written, the server must answer". */
const clientWrite = (rcode: number) =>
  rcode !== Rcode.ServerFailure &&
  rcode !== Rcode.Refused &&
  rcode !== Rcode.FormatError &&
  rcode !== Rcode.NotImplemented;

/** server.go errorFunc. */
function errorFunc(w: Writer, r: Msg, rc: number) {
  const answer = setRcode(newMsg(), r, rc);
  sizeAndDo(r, answer);
  w.writeMsg(answer);
}

const rcodeNames: Record<number, string> = {
  0: 'NOERROR',
  1: 'FORMERR',
  2: 'SERVFAIL',
  3: 'NXDOMAIN',
  4: 'NOTIMP',
  5: 'REFUSED',
  6: 'YXDOMAIN',
  7: 'YXRRSET',
  8: 'NXRRSET',
  9: 'NOTAUTH',
  10: 'NOTZONE',
  16: 'BADVERS',
  17: 'BADKEY',
  18: 'BADTIME',
  19: 'BADMODE',
  20: 'BADNAME',
  21: 'BADALG',
  22: 'BADTRUNC',
  23: 'BADCOOKIE',
};

/* ---- errors, log, pass-through plugins, whoami ---------------------------------------------- */

function passThrough(name: string): HandlerFactory {
  return next => ({
    name,
    serve: (ctx, w, r) => nextOrFailure(name, next, ctx, w, r),
  });
}

function errorsHandler(log: (m: string) => void): HandlerFactory {
  return next => ({
    name: 'errors',
    async serve(ctx, w, r) {
      const res = await nextOrFailure('errors', next, ctx, w, r);
      if (res.err) {
        const state = new Req(r, w);
        log(
          `[ERROR] plugin/errors: ${res.rcode} ${state.name()} ${state.type()}: ${res.err.message}`,
        );
      }
      return res;
    },
  });
}

function logHandler(log: (m: string) => void): HandlerFactory {
  return next => ({
    name: 'log',
    async serve(ctx, w, r) {
      const started = Date.now();
      const recorder: Writer & { msg?: Msg } = {
        client: w.client,
        writeMsg(m) {
          this.msg = m;
          w.writeMsg(m);
        },
      };
      const res = await nextOrFailure('log', next, ctx, recorder, r);
      const state = new Req(r, w);
      const m = recorder.msg;
      const rcode = m ? m.rcode : res.rcode;
      const flags = m
        ? [
            m.response && 'qr',
            m.authoritative && 'aa',
            m.truncated && 'tc',
            m.recursionDesired && 'rd',
            m.recursionAvailable && 'ra',
          ]
            .filter(Boolean)
            .join(',')
        : '-';
      log(
        `[INFO] ${w.client.address}:${w.client.port} - ${r.id} "${state.type()} IN ${state.name()} ${state.proto()} ${packMsg(r).length} ${state.do()} ${state.size()}" ${rcodeNames[rcode] ?? rcode} ${flags} ${m ? packMsg(m).length : 0} ${((Date.now() - started) / 1000).toFixed(6)}s`,
      );
      return res;
    },
  });
}

/** plugin/whoami: the client's address and port in the additional section. */
const whoamiHandler: HandlerFactory = () => ({
  name: 'whoami',
  async serve(_ctx, w, r) {
    const state = new Req(r, w);
    const a = setReply(newMsg(), r);
    a.authoritative = true;
    const name = toPacketName(state.qname());
    const ip = parseGoIP(w.client.address.replace(/^::ffff:(?=[0-9.]+$)/, ''));
    const v4 = ip && to4(ip);
    const addr: RR | undefined = v4
      ? { name, type: 'A', class: 'IN', ttl: 0, data: formatIPv4(v4) }
      : ip
        ? { name, type: 'AAAA', class: 'IN', ttl: 0, data: formatIPv6(ip) }
        : undefined;
    const srvName =
      state.qname() === '.'
        ? `_${state.proto()}.`
        : `_${state.proto()}.${state.qname()}`;
    const srv: RR = {
      name: toPacketName(srvName),
      type: 'SRV',
      class: 'IN',
      ttl: 0,
      data: { priority: 0, weight: 0, port: w.client.port, target: '.' },
    };
    a.extra = addr ? [addr, srv] : [srv];
    w.writeMsg(a);
    return { rcode: Rcode.Success };
  },
});

/* =========================================================================================== */
/* kubernetes                                                                                   */
/* =========================================================================================== */

interface KubernetesConfig {
  zones: string[];
  podMode: 'disabled' | 'verified' | 'insecure';
  fall: string[];
  ttl: number;
  namespaces: Set<string>;
  endpointsCache: boolean;
  ignoreEmptyService: boolean;
}

/** plugin/etcd/msg Service, the unit backend_lookup.go turns into records. */
interface Service {
  host: string;
  port: number;
  ttl: number;
  /** The owner name this service stands for (msg.Domain of its key), for SRV targets. */
  target: string;
  text?: string;
}

/** kubernetes.go errNoItems, errNsNotExposed, errInvalidRequest: all "name error". */
class NameError extends Error {}
const errNoItems = () => new NameError('no items found');
const errNsNotExposed = () => new NameError('namespace is not exposed');
const errInvalidRequest = () => new NameError('invalid query name');

/** msg.Service.HostType. */
function hostType(
  s: Service,
): ['CNAME' | 'TXT' | 'A' | 'AAAA', Uint8Array | undefined] {
  const ip = parseGoIP(s.host);
  if (!ip) return [s.text === undefined ? 'CNAME' : 'TXT', undefined];
  const v4 = to4(ip);
  return v4 ? ['A', v4] : ['AAAA', ip];
}

/** dnsutil.IsReverse. */
const isReverse = (name: string) =>
  name.endsWith('.in-addr.arpa.') ? 1 : name.endsWith('.ip6.arpa.') ? 2 : 0;

/** dnsutil.TrimZone (errors give ""). */
function trimZone(q: string, z: string): string {
  const [i, ok] = prevLabel(q, countLabel(z));
  if (ok || i - 1 < 0) return '';
  return q.slice(0, i - 1);
}

interface RecordRequest {
  port: string;
  protocol: string;
  endpoint: string;
  service: string;
  namespace: string;
  podOrSvc: string;
}

/** parse.go parseRequest. */
function parseRequest(name: string, zone: string): RecordRequest {
  const r: RecordRequest = {
    port: '',
    protocol: '',
    endpoint: '',
    service: '',
    namespace: '',
    podOrSvc: '',
  };
  const base = trimZone(name, zone);
  if (base === '' || base === 'svc' || base === 'pod') return r;
  const segs = splitDomainName(base);
  let last = segs.length - 1;
  if (last < 0) return r;
  r.podOrSvc = segs[last];
  if (r.podOrSvc !== 'pod' && r.podOrSvc !== 'svc') throw errInvalidRequest();
  if (--last < 0) return r;
  r.namespace = segs[last];
  if (--last < 0) return r;
  r.service = segs[last];
  if (--last < 0) return r;
  const strip = (s: string) => (s.startsWith('_') ? s.slice(1) : s);
  if (last === 0) r.endpoint = segs[last];
  else if (last === 1) {
    r.protocol = strip(segs[last]);
    r.port = strip(segs[last - 1]);
  } else throw errInvalidRequest();
  return r;
}

const equalFold = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();
const matchPortAndProtocol = (
  aPort: string,
  bPort: string,
  aProto: string,
  bProto: string,
) =>
  (equalFold(aPort, bPort) || aPort === '') &&
  (equalFold(aProto, bProto) || aProto === '');

/** kubernetes.go endpointHostname (endpoint_pod_names is refused at setup). */
function endpointHostname(ep: { ip: string; hostname?: string }): string {
  if (ep.hostname) return ep.hostname;
  if (ep.ip.includes('.')) return ep.ip.replaceAll('.', '-');
  if (ep.ip.includes(':')) return ep.ip.replaceAll(':', '-');
  return '';
}

class Kubernetes implements Handler {
  readonly name = 'kubernetes';

  constructor(
    private readonly cfg: KubernetesConfig,
    private readonly source: KubernetesRecordSource,
    private readonly host: string,
    private readonly serial: number,
    private readonly next: Handler | undefined,
  ) {}

  private namespaceExposed(ns: string): boolean {
    if (this.cfg.namespaces.size > 0 && !this.cfg.namespaces.has(ns))
      return false;
    return this.source.namespaceExists(ns);
  }

  /** kubernetes.go Records. */
  private records(state: Req): Service[] {
    const r = parseRequest(state.name(), state.zone);
    if (r.podOrSvc === '') return [];
    if (isReverse(state.name()) > 0) throw errNoItems();
    if (!this.namespaceExposed(r.namespace)) throw errNsNotExposed();
    return r.podOrSvc === 'pod'
      ? this.findPods(r, state.zone)
      : this.findServices(r, state.zone);
  }

  /** kubernetes.go findPods. */
  private findPods(r: RecordRequest, zone: string): Service[] {
    if (this.cfg.podMode === 'disabled') throw errNoItems();
    if (!this.namespaceExposed(r.namespace)) throw errNoItems();
    const podname = r.service;
    if (podname === '') return [];
    const ip =
      (podname.match(/-/g) ?? []).length === 3 && !podname.includes('--')
        ? podname.replaceAll('-', '.')
        : podname.replaceAll('-', ':');
    // `pods verified` needs the pods of the cluster, which the record source does not give.
    if (this.cfg.podMode !== 'insecure') throw errNoItems();
    if (!parseGoIP(ip)) throw errNoItems();
    return [
      {
        host: ip,
        port: 0,
        ttl: this.cfg.ttl,
        target: `${podname}.${r.namespace}.pod.${zone}`,
      },
    ];
  }

  /** kubernetes.go findServices. */
  private findServices(r: RecordRequest, zone: string): Service[] {
    if (!this.namespaceExposed(r.namespace)) throw errNoItems();
    if (r.service === '') return [];
    const svc = this.source.service(r.namespace, r.service);
    const services: Service[] = [];
    let found = false;
    const ttl = this.cfg.ttl;
    if (
      svc &&
      equalFold(r.namespace, svc.namespace) &&
      equalFold(r.service, svc.name)
    ) {
      const endpoints = this.cfg.endpointsCache
        ? svc.endpoints.filter(e => e.ready)
        : [];
      const base = `${svc.name}.${svc.namespace}.svc.${zone}`;
      // EndpointSlices without ports get one port -1 (object/endpoint.go), kept out of SRV.
      const epPorts =
        svc.ports.length > 0
          ? svc.ports
          : [{ name: '', port: -1, protocol: '' }];
      const skipEmpty =
        this.cfg.ignoreEmptyService &&
        svc.type !== 'ExternalName' &&
        !svc.headless &&
        endpoints.length === 0;
      if (skipEmpty) {
        // "ignore empty_service": no endpoints, no records.
      } else if (svc.type === 'ExternalName') {
        if (r.endpoint === '' && r.port === '' && r.protocol === '') {
          const s: Service = {
            host: svc.externalName ?? '',
            port: 0,
            ttl,
            target: base,
          };
          if (hostType(s)[0] === 'CNAME') {
            services.push(s);
            found = true;
          }
        }
      } else if (svc.headless || r.endpoint !== '') {
        for (const ep of endpoints) {
          if (r.endpoint !== '' && !equalFold(r.endpoint, endpointHostname(ep)))
            continue;
          for (const p of epPorts) {
            if (
              !matchPortAndProtocol(
                r.port,
                p.name ?? '',
                r.protocol,
                p.protocol,
              )
            )
              continue;
            services.push({
              host: ep.ip,
              port: p.port,
              ttl,
              target: `${endpointHostname(ep)}.${base}`,
            });
            found = true;
          }
        }
      } else {
        for (const p of svc.ports) {
          if (
            !matchPortAndProtocol(r.port, p.name ?? '', r.protocol, p.protocol)
          )
            continue;
          found = true;
          for (const ip of svc.clusterIPs)
            services.push({ host: ip, port: p.port, ttl, target: base });
        }
      }
    }
    if (!found) throw errNoItems();
    return services;
  }

  /** ns.go nsAddrs: this server's own address under ns.dns.<zone> (see the file header). */
  private nsAddrs(zone: string): Array<{ name: string; ip: Uint8Array }> {
    const ip = parseGoIP(this.host);
    return ip ? [{ name: `ns.dns.${zone}`, ip }] : [];
  }

  /** kubernetes.go Services. */
  private services(state: Req): Service[] {
    const qtype = state.qtype();
    if (qtype === Type.TXT) {
      const segs = splitDomainName(trimZone(state.name(), state.zone));
      if (segs.length === 1 && segs[0] === 'dns-version') {
        return [
          {
            host: '',
            port: 0,
            ttl: 28800,
            target: state.qname(),
            text: '1.1.0',
          },
        ];
      }
      let existing: Service[] = [];
      try {
        existing = this.records(state);
      } catch {
        existing = [];
      }
      if (existing.length > 0) return [];
      throw errNoItems();
    }
    const name = state.name();
    if (
      name.indexOf('ns.dns.') === 0 &&
      name.indexOf(state.zone) === 'ns.dns.'.length
    ) {
      const out: Service[] = [];
      for (const ns of this.nsAddrs(state.zone)) {
        const v4 = to4(ns.ip);
        if (v4 && qtype === Type.A)
          out.push({
            host: formatIPv4(v4),
            port: 0,
            ttl: this.cfg.ttl,
            target: state.qname(),
          });
        if (!v4 && qtype === Type.AAAA)
          out.push({
            host: formatIPv6(ns.ip),
            port: 0,
            ttl: this.cfg.ttl,
            target: state.qname(),
          });
      }
      return out;
    }
    const s = this.records(state);
    if (qtype !== Type.SRV) return s;
    return s.filter(svc => hostType(svc)[0] !== 'CNAME');
  }

  /** backend_lookup.go checkForApex. */
  private checkForApex(state: Req): Service[] {
    if (state.name() !== state.zone) return this.services(state);
    const apex = state.withQuestion(`apex.dns.${state.zone}`, state.type());
    apex.zone = state.zone;
    try {
      return this.services(apex);
    } catch {
      return this.services(state);
    }
  }

  private rr(
    name: string,
    type: 'A' | 'AAAA' | 'CNAME',
    ttl: number,
    data: string,
  ): RR {
    return {
      name: toPacketName(name),
      type,
      class: 'IN',
      ttl,
      data: type === 'CNAME' ? toPacketName(fqdn(data)) : data,
    };
  }

  /** backend_lookup.go A and AAAA. */
  private async address(
    ctx: Ctx,
    state: Req,
    family: 'A' | 'AAAA',
    previous: string[],
  ): Promise<{ records: RR[]; truncated: boolean }> {
    const services = this.checkForApex(state);
    const records: RR[] = [];
    let truncated = false;
    const dup = new Set<string>();
    for (const serv of services) {
      const [what, ip] = hostType(serv);
      if (what === 'CNAME') {
        if (nameMatches(state.name(), fqdn(serv.host))) continue; // x CNAME x
        const target = fqdn(serv.host);
        const cname = this.rr(state.qname(), 'CNAME', serv.ttl, serv.host);
        if (previous.length > 10) continue; // maxCnameChainLength
        if (previous.includes(target)) continue; // dnsutil.DuplicateCNAME
        if (isSubDomain(state.zone, target)) {
          const state1 = state.withQuestion(serv.host, state.type());
          state1.zone = state.zone;
          try {
            const next = await this.address(ctx, state1, family, [
              ...previous,
              target,
            ]);
            if (next.records.length > 0) records.push(cname, ...next.records);
            truncated ||= next.truncated;
          } catch {
            // "Not only have we found something..." only on success.
          }
          continue;
        }
        let m1: Msg;
        try {
          m1 = await ctx.server.lookup(ctx, state, target, state.type());
        } catch {
          continue;
        }
        truncated ||= m1.truncated;
        records.push(cname, ...m1.answer);
        continue;
      }
      if (what === family && ip && !dup.has(serv.host)) {
        dup.add(serv.host);
        records.push(
          this.rr(
            state.qname(),
            family,
            serv.ttl,
            family === 'A' ? formatIPv4(ip) : formatIPv6(ip),
          ),
        );
      }
    }
    return { records, truncated };
  }

  /**
   * backend_lookup.go SRV. Services() leaves ExternalName (CNAME) entries out of SRV answers, so
   * only address entries remain: one SRV per target and port, the addresses as extra records.
   */
  private srv(state: Req): { records: RR[]; extra: RR[] } {
    const services = this.services(state);
    const records: RR[] = [];
    const extra: RR[] = [];
    const dup = new Set<string>();
    // One priority (0); weight 0 counts as 100 (the weights are summed before the -1 ports go).
    const weightTotal = services.length * 100;
    for (const serv of services) {
      if (serv.port === -1) continue;
      let weight = Math.floor((100 / weightTotal) * 100);
      if (weight === 0) weight = 1;
      const [what, ip] = hostType(serv);
      if ((what !== 'A' && what !== 'AAAA') || !ip) continue;
      const target = serv.target;
      const key = `${target}|${serv.port}`;
      if (!dup.has(key)) {
        dup.add(key);
        records.push({
          name: toPacketName(state.qname()),
          type: 'SRV',
          class: 'IN',
          ttl: serv.ttl,
          data: {
            priority: 0,
            weight,
            port: serv.port,
            target: toPacketName(target),
          },
        });
      }
      const addrKey = `${target}|${serv.host}`;
      if (!dup.has(addrKey)) {
        dup.add(addrKey);
        extra.push(
          this.rr(
            target,
            what,
            serv.ttl,
            what === 'A' ? formatIPv4(ip) : formatIPv6(ip),
          ),
        );
      }
    }
    return { records, extra };
  }

  /** backend_lookup.go SOA. */
  private soa(zone: string): RR {
    return {
      name: toPacketName(zone),
      type: 'SOA',
      class: 'IN',
      ttl: Math.min(this.cfg.ttl, 300),
      data: {
        mname: toPacketName(`ns.dns.${zone}`),
        rname: toPacketName(`hostmaster.${zone}`),
        serial: this.serial,
        refresh: 7200,
        retry: 1800,
        expire: 86400,
        minimum: this.cfg.ttl,
      },
    };
  }

  /** backend_lookup.go BackendError: rcode with the zone's SOA, authoritative. */
  private backendError(w: Writer, state: Req, rcode: number): Result {
    const m = setRcode(newMsg(), state.r, rcode);
    m.authoritative = true;
    m.ns = [this.soa(state.zone)];
    w.writeMsg(m);
    return { rcode: Rcode.Success };
  }

  /** handler.go ServeDNS. */
  async serve(ctx: Ctx, w: Writer, r: Msg): Promise<Result> {
    const state = new Req(r, w);
    const qname = state.qname();
    const matched = zonesMatch(this.cfg.zones, qname);
    if (matched === '') return nextOrFailure(this.name, this.next, ctx, w, r);
    state.zone = qname.slice(qname.length - matched.length); // keeps the query's case
    let records: RR[] = [];
    let extra: RR[] = [];
    let truncated = false;
    let err: Error | undefined;
    try {
      switch (state.qtype()) {
        case Type.A:
        case Type.AAAA:
          ({ records, truncated } = await this.address(
            ctx,
            state,
            state.qtype() === Type.A ? 'A' : 'AAAA',
            [],
          ));
          break;
        case Type.TXT:
          records = this.services(state)
            .filter(s => hostType(s)[0] === 'TXT')
            .map(s => ({
              name: toPacketName(state.qname()),
              type: 'TXT',
              class: 'IN',
              ttl: s.ttl,
              data: s.text ?? '',
            }));
          break;
        case Type.CNAME: {
          const s = this.services(state)[0];
          if (s && !parseGoIP(s.host))
            records = [this.rr(qname, 'CNAME', s.ttl, s.host)];
          break;
        }
        case Type.PTR: {
          // kubernetes.go Reverse: forward names give their Records error; a reverse name would
          // need the Services and endpoints with that IP (not searchable here): errNoItems.
          if (!/\.(in-addr|ip6)\.arpa\.$/.test(state.name()))
            this.records(state);
          else throw errNoItems();
          break;
        }
        case Type.MX:
          this.services(state); // no Service is a mail exchanger: NODATA or the name error
          break;
        case Type.SRV:
          ({ records, extra } = this.srv(state));
          break;
        case Type.SOA:
          if (qname === state.zone) records = [this.soa(state.zone)];
          break;
        case Type.AXFR:
        case Type.IXFR:
          return { rcode: Rcode.Refused };
        case Type.NS:
          if (state.name() === state.zone) {
            for (const ns of this.nsAddrs(state.zone)) {
              const v4 = to4(ns.ip);
              extra.push(
                this.rr(
                  ns.name,
                  v4 ? 'A' : 'AAAA',
                  this.cfg.ttl,
                  v4 ? formatIPv4(v4) : formatIPv6(ns.ip),
                ),
              );
              records.push({
                name: toPacketName(qname),
                type: 'NS',
                class: 'IN',
                ttl: this.cfg.ttl,
                data: toPacketName(ns.name),
              });
            }
            break;
          }
          await this.fakeA(ctx, state);
          break;
        default:
          await this.fakeA(ctx, state);
      }
    } catch (e) {
      err = e instanceof Error ? e : new Error(String(e));
    }
    if (err instanceof NameError) {
      if (zonesMatch(this.cfg.fall, state.name()) !== '') {
        return nextOrFailure(this.name, this.next, ctx, w, r);
      }
      return this.backendError(w, state, Rcode.NameError);
    }
    if (err) return { rcode: Rcode.ServerFailure, err };
    if (records.length === 0) return this.backendError(w, state, Rcode.Success);
    const m = setReply(newMsg(), r);
    m.truncated = truncated;
    m.authoritative = true;
    m.answer = records;
    m.extra = extra;
    w.writeMsg(m);
    return { rcode: Rcode.Success };
  }

  /** "Do a fake A lookup, so we can distinguish between NODATA and NXDOMAIN". */
  private async fakeA(ctx: Ctx, state: Req) {
    const fake = state.withQuestion(state.qname(), 'A');
    fake.zone = state.zone;
    await this.address(ctx, fake, 'A', []);
  }
}

/* =========================================================================================== */
/* forward                                                                                      */
/* =========================================================================================== */

type Upstream = (query: Packet) => Promise<Packet>;

type Proxy =
  | { kind: 'resolvconf'; addr: string }
  | { kind: 'dns'; host: string; port: number; addr: string };

interface ForwardConfig {
  from: string;
  ignored: string[];
  proxies: Proxy[];
  policy: 'random' | 'round_robin' | 'sequential';
  forceTcp: boolean;
  preferUdp: boolean;
  maxConcurrent: number;
  nextRcodes: number[];
}

/** plugin/forward defaultTimeout and plugin/pkg/proxy readTimeout / minDialTimeout. */
const forwardDeadlineMs = 5000;
const readTimeoutMs = 2000;
const dialTimeoutMs = 1000;

class ForwardError extends Error {}

/** What a plugin/pkg/proxy Proxy.Connect exchange does, over UDP or TCP to a real address. */
async function exchange(
  proxy: { host: string; port: number; addr: string },
  query: Msg,
  proto: 'udp' | 'tcp',
  udpSize: number,
  signal: AbortSignal,
): Promise<Msg> {
  const wire = packMsg({ ...query, compress: false });
  if (proto === 'udp') {
    return new Promise<Msg>((resolve, reject) => {
      const sock = dgram.createSocket(net.isIPv6(proxy.host) ? 'udp6' : 'udp4');
      let settled = false;
      const finish = (err: Error | undefined, m?: Msg) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        sock.close();
        if (err || !m) reject(err ?? new ForwardError('no reply'));
        else resolve(m);
      };
      const onAbort = () => finish(new ForwardError('shut down'));
      signal.addEventListener('abort', onAbort);
      const timer = setTimeout(
        () => finish(new ForwardError(`read udp ${proxy.addr}: i/o timeout`)),
        readTimeoutMs,
      );
      sock.on('error', e =>
        finish(new ForwardError(`read udp ${proxy.addr}: ${e.message}`)),
      );
      sock.on('message', buf => {
        const h = readHeader(buf);
        if (!h || h.id !== query.id) return; // "drop out-of-order responses"
        if (buf.length > udpSize) {
          // The read buffer is the client's size: the reply overflows it, and comes back
          // empty and truncated (connect.go shouldTruncateResponse / truncateResponse).
          const m = newMsg();
          m.id = h.id;
          m.response = true;
          m.truncated = true;
          m.rcode = h.bits & 0xf;
          m.question = query.question;
          finish(undefined, m);
          return;
        }
        try {
          finish(undefined, unpackMsg(buf));
        } catch (e) {
          finish(
            new ForwardError(`read udp ${proxy.addr}: ${(e as Error).message}`),
          );
        }
      });
      sock.connect(proxy.port, proxy.host, () => {
        sock.send(wire, e => {
          if (e)
            finish(new ForwardError(`write udp ${proxy.addr}: ${e.message}`));
        });
      });
    });
  }
  return new Promise<Msg>((resolve, reject) => {
    const sock = net.connect({ host: proxy.host, port: proxy.port });
    let settled = false;
    let buf = Buffer.alloc(0);
    let connected = false;
    const finish = (err: Error | undefined, m?: Msg) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      sock.destroy();
      if (err || !m) reject(err ?? new ForwardError('no reply'));
      else resolve(m);
    };
    const onAbort = () => finish(new ForwardError('shut down'));
    signal.addEventListener('abort', onAbort);
    let timer = setTimeout(
      () => finish(new ForwardError(`dial tcp ${proxy.addr}: i/o timeout`)),
      dialTimeoutMs,
    );
    sock.on('error', e =>
      finish(
        new ForwardError(
          `${connected ? 'read' : 'dial'} tcp ${proxy.addr}: ${e.message}`,
        ),
      ),
    );
    sock.on('close', () =>
      finish(new ForwardError(`read tcp ${proxy.addr}: EOF`)),
    );
    sock.on('connect', () => {
      connected = true;
      clearTimeout(timer);
      timer = setTimeout(
        () => finish(new ForwardError(`read tcp ${proxy.addr}: i/o timeout`)),
        readTimeoutMs,
      );
      const prefix = Buffer.alloc(2);
      prefix.writeUInt16BE(wire.length);
      sock.write(Buffer.concat([prefix, wire]));
    });
    sock.on('data', chunk => {
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        const msg = buf.subarray(2, 2 + buf.readUInt16BE(0));
        buf = buf.subarray(2 + msg.length);
        const h = readHeader(msg);
        if (!h || h.id !== query.id) continue;
        try {
          finish(undefined, unpackMsg(msg));
        } catch (e) {
          finish(
            new ForwardError(`read tcp ${proxy.addr}: ${(e as Error).message}`),
          );
        }
        return;
      }
    });
  });
}

class Forward implements Handler {
  readonly name = 'forward';
  private concurrent = 0;
  private rr = 0;

  constructor(
    private readonly cfg: ForwardConfig,
    private readonly upstream: Upstream,
    private readonly signal: AbortSignal,
    readonly next: Handler | undefined,
  ) {}

  /** forward.go match and isAllowedDomain. */
  private matches(name: string): boolean {
    if (!nameMatches(this.cfg.from, name)) return false;
    if (name === this.cfg.from) return true;
    return !this.cfg.ignored.some(ignore => nameMatches(ignore, name));
  }

  /** policy.go random, round_robin, sequential. */
  private list(): Proxy[] {
    const p = this.cfg.proxies;
    if (this.cfg.policy === 'sequential' || p.length === 1) return [...p];
    if (this.cfg.policy === 'round_robin') {
      const start = this.rr++ % p.length;
      return [...p.slice(start), ...p.slice(0, start)];
    }
    const out = [...p];
    for (let i = out.length - 1; i > 0; i--) {
      const j = Math.floor(Math.random() * (i + 1));
      [out[i], out[j]] = [out[j], out[i]];
    }
    return out;
  }

  /** proxy/connect.go Connect. */
  private async connect(
    proxy: Proxy,
    state: Req,
    forceTcp: boolean,
  ): Promise<Msg> {
    const proto: 'udp' | 'tcp' = forceTcp
      ? 'tcp'
      : this.cfg.preferUdp
        ? 'udp'
        : state.proto();
    const query = copyMsg(state.r);
    query.id = Math.floor(Math.random() * 65536);
    let reply: Msg;
    if (proxy.kind === 'resolvconf') {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () =>
            reject(
              new ForwardError(`read ${proto} ${proxy.addr}: i/o timeout`),
            ),
          readTimeoutMs,
        );
      });
      try {
        const answer = await Promise.race([
          this.upstream(msgToPacket(query)),
          timeout,
        ]);
        reply = packetToMsg({ ...answer, id: query.id });
      } finally {
        clearTimeout(timer);
      }
    } else {
      reply = await exchange(
        proxy,
        query,
        proto,
        Math.max(512, state.size()),
        this.signal,
      );
    }
    reply.id = state.r.id;
    return reply;
  }

  /** forward.go ServeDNS. */
  async serve(ctx: Ctx, w: Writer, r: Msg): Promise<Result> {
    const state = new Req(r, w);
    if (!this.matches(state.name()))
      return nextOrFailure(this.name, this.next, ctx, w, r);
    if (
      this.cfg.maxConcurrent > 0 &&
      this.concurrent + 1 > this.cfg.maxConcurrent
    ) {
      return {
        rcode: Rcode.Refused,
        err: new Error(
          `concurrent queries exceeded maximum ${this.cfg.maxConcurrent}`,
        ),
      };
    }
    this.concurrent++;
    try {
      const deadline = Date.now() + forwardDeadlineMs;
      let upstreamErr: Error | undefined;
      const list = this.list();
      let i = 0;
      while (Date.now() < deadline && !this.signal.aborted) {
        if (i >= list.length) i = 0;
        const proxy = list[i++];
        const started = Date.now();
        let ret: Msg | undefined;
        let forceTcp = this.cfg.forceTcp;
        try {
          for (;;) {
            ret = await this.connect(proxy, state, forceTcp);
            // "Retry with TCP if truncated and prefer_udp configured."
            if (ret.truncated && !forceTcp && this.cfg.preferUdp) {
              forceTcp = true;
              continue;
            }
            break;
          }
        } catch (e) {
          upstreamErr = e instanceof Error ? e : new Error(String(e));
          // CoreDNS retries at once, until the deadline; a refused connection fails within
          // microseconds, so pause briefly instead of spinning the event loop.
          if (Date.now() - started < 10) await sleep(10);
          continue;
        }
        if (!state.match(ret)) {
          w.writeMsg(setRcode(newMsg(), r, Rcode.FormatError));
          return { rcode: Rcode.Success };
        }
        if (
          this.cfg.nextRcodes.includes(ret.rcode) &&
          this.next instanceof Forward
        ) {
          return nextOrFailure(this.name, this.next, ctx, w, r);
        }
        w.writeMsg(ret);
        return { rcode: Rcode.Success };
      }
      return {
        rcode: Rcode.ServerFailure,
        err: upstreamErr ?? new Error('no healthy proxies'),
      };
    } finally {
      this.concurrent--;
    }
  }
}

/* =========================================================================================== */
/* Plugin setup                                                                                 */
/* =========================================================================================== */

/** The plugins this stand-in models; every other directive is refused as not modelled. */
const modelled = new Set([
  'reload',
  'ready',
  'health',
  'prometheus',
  'errors',
  'log',
  'loadbalance',
  'cache',
  'kubernetes',
  'loop',
  'forward',
  'whoami',
]);

interface SetupEnv {
  source: KubernetesRecordSource;
  upstream: Upstream;
  host: string;
  serial: number;
  signal: AbortSignal;
  log: (m: string) => void;
}

interface SiteConfig {
  zone: string;
  port: string;
  transport: string;
  plugins: HandlerFactory[];
  chain?: Handler;
  hasForward: boolean;
}

/** caddy.Controller: the directive's tokens and the block's keys. */
class Controller extends Dispenser {
  constructor(
    tokens: Token[],
    readonly serverBlockKeys: string[],
  ) {
    super(corefilePath, tokens);
  }
}

const errOnce = () =>
  new Error('this plugin can only be used once per Server Block');

function parseDuration(s: string): number {
  return parseGoDuration(s);
}

function setupErrors(c: Controller) {
  let i = 0;
  while (c.next()) {
    if (i++ > 0) throw errOnce();
    const args = c.remainingArgs();
    if (args.length === 1 && args[0] !== 'stdout')
      throw c.err(`invalid log file: ${args[0]}`);
    if (args.length > 1) throw c.argErr();
    while (c.nextBlock()) {
      switch (c.val()) {
        case 'stacktrace':
          break;
        case 'consolidate': {
          const a = c.remainingArgs();
          if (a.length < 2 || a.length > 3) throw c.argErr();
          try {
            parseDuration(a[0]);
            new RegExp(a[1]);
          } catch (e) {
            throw c.err((e as Error).message);
          }
          if (
            a.length === 3 &&
            !['warning', 'error', 'info', 'debug'].includes(a[2])
          ) {
            throw c.err(`unknown log level argument in consolidate: ${a[2]}`);
          }
          break;
        }
        default:
          throw c.syntaxErr(`Unknown field ${c.val()}`);
      }
    }
  }
}

function setupLog(c: Controller) {
  while (c.next()) {
    c.remainingArgs();
    while (c.nextBlock()) {
      if (c.val() !== 'class') throw c.argErr();
      const classes = c.remainingArgs();
      if (classes.length === 0) throw c.argErr();
      for (const cls of classes) {
        if (!['all', 'success', 'denial', 'error'].includes(cls))
          throw new Error(`invalid Class: ${cls}`);
      }
    }
  }
}

function setupCache(c: Controller) {
  let j = 0;
  const atoi = (s: string) => {
    const n = goAtoi(s);
    if (n === undefined)
      throw new Error(
        `strconv.Atoi: parsing ${JSON.stringify(s)}: invalid syntax`,
      );
    return n;
  };
  while (c.next()) {
    if (j++ > 0) throw errOnce();
    let args = c.remainingArgs();
    if (args.length > 0) {
      const ttl = goAtoi(args[0]);
      if (ttl !== undefined) {
        if (ttl <= 0)
          throw new Error(`cache TTL can not be zero or negative: ${ttl}`);
        args = args.slice(1);
      }
    }
    originsFromArgsOrServerBlock(args, c.serverBlockKeys);
    while (c.nextBlock()) {
      const v = c.val();
      const a = c.remainingArgs();
      switch (v) {
        case 'success':
        case 'denial':
          if (a.length === 0) throw c.argErr();
          atoi(a[0]);
          if (a.length > 1 && atoi(a[1]) <= 0)
            throw new Error(`cache TTL can not be zero or negative: ${a[1]}`);
          if (a.length > 2 && atoi(a[2]) < 0)
            throw new Error(`cache min TTL can not be negative: ${a[2]}`);
          break;
        case 'prefetch':
          if (a.length === 0 || a.length > 3) throw c.argErr();
          if (atoi(a[0]) < 0)
            throw new Error(`prefetch amount should be positive: ${a[0]}`);
          if (a.length > 1) parseDuration(a[1]);
          if (a.length > 2) {
            if (!a[2].endsWith('%'))
              throw new Error(
                `last character of percentage should be \`%\`, but is: '${a[2].slice(-1)}'`,
              );
            const pct = atoi(a[2].slice(0, -1));
            if (pct < 10 || pct > 90)
              throw new Error(
                `percentage should fall in range [10, 90]: ${pct}`,
              );
          }
          break;
        case 'serve_stale':
          if (a.length > 2) throw c.argErr();
          if (a.length > 0 && parseDuration(a[0]) < 0)
            throw new Error('invalid negative duration for serve_stale');
          if (
            a.length > 1 &&
            !['immediate', 'verify'].includes(a[1].toLowerCase())
          ) {
            throw new Error(
              `invalid value for serve_stale refresh mode: ${a[1].toLowerCase()}`,
            );
          }
          break;
        case 'servfail': {
          if (a.length !== 1) throw c.argErr();
          const d = parseDuration(a[0]);
          if (d < 0) throw new Error('invalid negative ttl for servfail');
          if (d > 300e9)
            throw new Error(
              'caching SERVFAIL responses over 5 minutes is not permitted',
            );
          break;
        }
        case 'disable':
          if (a.length < 1) throw c.argErr();
          if (a[0] !== 'success' && a[0] !== 'denial') {
            throw new Error(
              'cache type for disable must be "success" or "denial"',
            );
          }
          break;
        case 'keepttl':
          if (a.length !== 0) throw c.argErr();
          break;
        default:
          throw c.argErr();
      }
    }
  }
}

function setupListenAddress(c: Controller, once: boolean) {
  let i = 0;
  while (c.next()) {
    if (once && i++ > 0) throw errOnce();
    const args = c.remainingArgs();
    if (args.length === 1) checkHostPort(args[0]);
    if (args.length > 1) throw c.argErr();
    if (once) continue;
    while (c.nextBlock()) {
      // health: lameduck DURATION
      if (c.val() !== 'lameduck') throw c.argErr();
      const a = c.remainingArgs();
      if (a.length !== 1) throw c.argErr();
      try {
        parseDuration(a[0]);
      } catch (e) {
        throw new Error(
          `unable to parse lameduck duration value: '${a[0]}' : ${(e as Error).message}`,
        );
      }
    }
  }
}

function setupReload(c: Controller) {
  c.next();
  const args = c.remainingArgs();
  if (args.length > 2) throw c.argErr();
  const interval = args.length > 0 ? parseDuration(args[0]) : 30e9;
  if (interval < 2e9)
    throw new Error('interval value must be greater or equal to 2s');
  const jitter = args.length > 1 ? parseDuration(args[1]) : 15e9;
  if (jitter < 1e9)
    throw new Error('jitter value must be greater or equal to 1s');
}

function setupLoop(c: Controller) {
  let i = 0;
  while (c.next()) {
    if (i++ > 0) throw errOnce();
    if (c.nextArg()) throw c.argErr();
  }
}

function setupLoadbalance(c: Controller) {
  while (c.next()) {
    const args = c.remainingArgs();
    if (args.length === 0) return;
    if (args[0] === 'round_robin') {
      if (args.length > 1) throw c.err(`unknown property for ${args[0]}`);
      return;
    }
    if (args[0] === 'weighted')
      throw new Error(
        'policy "weighted" (weight files) is not modelled by this stand-in',
      );
    throw new Error(`unknown policy: ${args[0]}`);
  }
  throw c.argErr();
}

function setupWhoami(c: Controller) {
  c.next();
  if (c.nextArg()) throw c.argErr();
}

/** kubernetes setup.go kubernetesParse / ParseStanza. */
function setupKubernetes(c: Controller): KubernetesConfig {
  let cfg: KubernetesConfig | undefined;
  let i = 0;
  while (c.next()) {
    if (i++ > 0) throw errOnce();
    const k: KubernetesConfig = {
      zones: originsFromArgsOrServerBlock(c.remainingArgs(), c.serverBlockKeys),
      podMode: 'disabled',
      fall: [],
      ttl: 5,
      namespaces: new Set(),
      endpointsCache: true,
      ignoreEmptyService: false,
    };
    if (!k.zones.some(z => isReverse(z) === 0))
      throw new Error('non-reverse zone name must be used');
    while (c.nextBlock()) {
      const v = c.val();
      switch (v) {
        case 'endpoint_pod_names':
        case 'labels':
        case 'namespace_labels':
          throw new Error(
            `option ${v} is not modelled by this stand-in (the record source has no pod names or labels)`,
          );
        case 'pods': {
          const a = c.remainingArgs();
          if (a.length !== 1) throw c.argErr();
          if (
            a[0] !== 'disabled' &&
            a[0] !== 'insecure' &&
            a[0] !== 'verified'
          ) {
            throw new Error(
              `wrong value for pods: ${a[0]},  must be one of: disabled, verified, insecure`,
            );
          }
          k.podMode = a[0];
          break;
        }
        case 'namespaces': {
          const a = c.remainingArgs();
          if (a.length === 0) throw c.argErr();
          for (const ns of a) k.namespaces.add(ns);
          break;
        }
        case 'endpoint': {
          if (c.remainingArgs().length === 0) throw c.argErr();
          break;
        }
        case 'tls':
          if (c.remainingArgs().length !== 3) throw c.argErr();
          break;
        case 'fallthrough': {
          const a = c.remainingArgs();
          k.fall = (a.length === 0 ? ['.'] : a).flatMap(z => normalizeExact(z));
          break;
        }
        case 'ttl': {
          const a = c.remainingArgs();
          if (a.length === 0) throw c.argErr();
          const t = goAtoi(a[0]);
          if (t === undefined)
            throw new Error(
              `strconv.Atoi: parsing ${JSON.stringify(a[0])}: invalid syntax`,
            );
          if (t < 0 || t > 3600)
            throw c.err(`ttl must be in range [0, 3600]: ${t}`);
          k.ttl = t;
          break;
        }
        case 'noendpoints':
          if (c.remainingArgs().length !== 0) throw c.argErr();
          k.endpointsCache = false;
          break;
        case 'ignore': {
          const a = c.remainingArgs();
          if (a.length > 0) {
            if (a[0] !== 'empty_service')
              throw new Error(`unable to parse ignore value: '${a[0]}'`);
            k.ignoreEmptyService = true;
          }
          break;
        }
        case 'kubeconfig': {
          const a = c.remainingArgs();
          if (a.length !== 1 && a.length !== 2) throw c.argErr();
          break;
        }
        default:
          throw c.err(`unknown property '${v}'`);
      }
    }
    cfg = k;
  }
  if (!cfg) throw new Error('no kubernetes stanza');
  return cfg;
}

const stringToRcode: Record<string, number> = Object.fromEntries(
  Object.entries(rcodeNames).map(([code, name]) => [name, Number(code)]),
);

/** forward setup.go parseForward / parseStanza / parseBlock. */
function setupForward(c: Controller): ForwardConfig[] {
  const out: ForwardConfig[] = [];
  while (c.next()) {
    if (!c.nextArg()) throw c.argErr();
    const origFrom = c.val();
    const zones = normalizeExact(origFrom);
    if (zones.length === 0)
      throw new Error(`unable to normalize '${origFrom}'`);
    const to = c.remainingArgs();
    if (to.length === 0) throw c.argErr();
    const proxies: Proxy[] = [];
    for (const h of to) {
      const [trans, host] = splitTransport(h);
      if (host.length === 0)
        throw new Error(`invalid address: ${JSON.stringify(h)}`);
      if (trans === 'unix')
        throw new Error(
          `'unix' is not supported as a destination protocol in forward: unix://${host}`,
        );
      // parse.HostPortOrFile: IP, IP:port, or a resolv.conf-like file (only /etc/resolv.conf,
      // the node's, exists in the pod: it is the `upstream`).
      let ip: string;
      let port: number;
      const m =
        /^\[([^\]]*)\]:([^:]*)$/.exec(host) ??
        /^([^:[\]]*):([^:]*)$/.exec(host);
      if (m && parseGoIP(m[1].replace(/%.*$/, ''))) {
        [ip, port] = [m[1], Number(m[2])];
      } else if (!m && parseGoIP(host.replace(/%.*$/, ''))) {
        ip = host;
        port = Number(defaultPorts[trans]);
      } else if (host === '/etc/resolv.conf') {
        proxies.push({ kind: 'resolvconf', addr: '/etc/resolv.conf' });
        continue;
      } else {
        throw new Error(`not an IP address or file: ${JSON.stringify(host)}`);
      }
      if (trans !== 'dns' && trans !== 'tls') {
        throw new Error(
          `'${trans}' is not supported as a destination protocol in forward: ${trans}://${hostPort(ip, port)}`,
        );
      }
      if (trans === 'tls')
        throw new Error(
          `forwarding over TLS (${h}) is not modelled by this stand-in`,
        );
      if (!Number.isInteger(port) || port < 0 || port > 65535)
        throw new Error(`invalid port in ${JSON.stringify(h)}`);
      proxies.push({
        kind: 'dns',
        host: ip.replace(/%.*$/, ''),
        port,
        addr: hostPort(ip, port),
      });
    }
    const f: ForwardConfig = {
      from: zones[0],
      ignored: [],
      proxies,
      policy: 'random',
      forceTcp: false,
      preferUdp: false,
      maxConcurrent: 0,
      nextRcodes: [],
    };
    while (c.nextBlock()) {
      const v = c.val();
      switch (v) {
        case 'except': {
          const a = c.remainingArgs();
          if (a.length === 0) throw c.argErr();
          for (const z of a) f.ignored.push(...normalizeExact(z));
          break;
        }
        case 'max_fails':
          if (!c.nextArg()) throw c.argErr();
          if (!/^[0-9]+$/.test(c.val()) || Number(c.val()) > 0xffffffff) {
            throw new Error(
              `strconv.ParseUint: parsing ${JSON.stringify(c.val())}: invalid syntax`,
            );
          }
          break;
        case 'health_check': {
          if (!c.nextArg()) throw c.argErr();
          const d = parseDuration(c.val());
          if (d < 0) throw new Error(`health_check can't be negative: ${d}`);
          while (c.nextArg()) {
            if (c.val() === 'no_rec') continue;
            if (c.val() === 'domain') {
              if (!c.nextArg()) throw c.argErr();
              if (!isDomainName(c.val()))
                throw new Error(`health_check: invalid domain name ${c.val()}`);
              continue;
            }
            throw new Error(`health_check: unknown option ${c.val()}`);
          }
          break;
        }
        case 'force_tcp':
          if (c.nextArg()) throw c.argErr();
          f.forceTcp = true;
          break;
        case 'prefer_udp':
          if (c.nextArg()) throw c.argErr();
          f.preferUdp = true;
          break;
        case 'tls': {
          const a = c.remainingArgs();
          if (a.length > 3) throw c.argErr();
          if (a.length > 0)
            throw new Error(`open ${a[0]}: no such file or directory`);
          break;
        }
        case 'tls_servername':
          if (!c.nextArg()) throw c.argErr();
          break;
        case 'expire': {
          if (!c.nextArg()) throw c.argErr();
          if (parseDuration(c.val()) < 0)
            throw new Error(`expire can't be negative: ${c.val()}`);
          break;
        }
        case 'policy': {
          if (!c.nextArg()) throw c.argErr();
          const p = c.val();
          if (p !== 'random' && p !== 'round_robin' && p !== 'sequential')
            throw c.err(`unknown policy '${p}'`);
          f.policy = p;
          break;
        }
        case 'max_concurrent': {
          if (!c.nextArg()) throw c.argErr();
          const n = goAtoi(c.val());
          if (n === undefined)
            throw new Error(
              `strconv.Atoi: parsing ${JSON.stringify(c.val())}: invalid syntax`,
            );
          if (n < 0) throw new Error(`max_concurrent can't be negative: ${n}`);
          f.maxConcurrent = n;
          break;
        }
        case 'next': {
          const a = c.remainingArgs();
          if (a.length === 0) throw c.argErr();
          for (const rc of a) {
            const code = stringToRcode[rc.toUpperCase()];
            if (code === undefined)
              throw new Error(`${rc} is not a valid rcode`);
            f.nextRcodes.push(code);
          }
          break;
        }
        case 'failfast_all_unhealthy_upstreams':
          if (c.remainingArgs().length !== 0) throw c.argErr();
          break;
        default:
          throw c.err(`unknown property '${v}'`);
      }
    }
    if (f.proxies.length > 15)
      throw new Error(`more than 15 TOs configured: ${f.proxies.length}`);
    out.push(f);
  }
  return out;
}

/** Runs one directive's setup for one server block; returns the handlers it adds (AddPlugin). */
function setupDirective(
  dir: string,
  c: Controller,
  env: SetupEnv,
  kubernetesZones: string[],
): HandlerFactory[] {
  switch (dir) {
    case 'errors':
      setupErrors(c);
      return [errorsHandler(env.log)];
    case 'log':
      setupLog(c);
      return [logHandler(env.log)];
    case 'cache':
      setupCache(c);
      return [passThrough('cache')];
    case 'health':
      setupListenAddress(c, false);
      return [];
    case 'ready':
      setupListenAddress(c, true);
      return [];
    case 'prometheus':
      setupListenAddress(c, true);
      return [passThrough('prometheus')];
    case 'reload':
      setupReload(c);
      return [];
    case 'loop':
      setupLoop(c);
      return [passThrough('loop')];
    case 'loadbalance':
      setupLoadbalance(c);
      return [passThrough('loadbalance')];
    case 'whoami':
      setupWhoami(c);
      return [whoamiHandler];
    case 'kubernetes': {
      const k = setupKubernetes(c);
      kubernetesZones.push(...k.zones);
      if (k.podMode === 'verified')
        env.log(
          'kubernetes: `pods verified` has no pod data here: pod names get NXDOMAIN',
        );
      return [
        next => new Kubernetes(k, env.source, env.host, env.serial, next),
      ];
    }
    case 'forward': {
      const fs = setupForward(c);
      // The forwarders chain to each other, the last one to the next plugin (forward setup.go).
      return [
        next => {
          let chain = next;
          for (let i = fs.length - 1; i >= 0; i--)
            chain = new Forward(fs[i], env.upstream, env.signal, chain);
          return chain ?? passThrough('forward')(next);
        },
      ];
    }
    default:
      throw new Error(
        `${dir} is a CoreDNS plugin this stand-in does not model`,
      );
  }
}

/* =========================================================================================== */
/* Instances: a loaded Corefile                                                                 */
/* =========================================================================================== */

interface Instance {
  zones: Map<string, SiteConfig[]>;
  kubernetesZones: string[];
  classChaos: boolean;
  reload: boolean;
  digest: string;
  serveDNS(ctx: Ctx, w: Writer, r: Msg): Promise<void>;
  lookup(ctx: Ctx, state: Req, name: string, type: string): Promise<Msg>;
}

/** register.go InspectServerBlocks: keys to zones (reverse CIDRs expanded) and ports. */
function inspectServerBlocks(blocks: ServerBlock[], sites: SiteConfig[][]) {
  for (const block of blocks) {
    const configs: SiteConfig[] = [];
    const keys: string[] = [];
    for (const key of block.keys) {
      const [trans, k1] = splitTransport(key);
      const { hosts, port: parsedPort } = splitHostPort(k1);
      for (const h of hosts) splitHostPort(fqdn(h));
      const port = parsedPort === '' ? (defaultPorts[trans] ?? '') : parsedPort;
      for (const h of hosts) {
        // The zone keeps the case it was written in while queries are matched lower-cased, so a
        // zone written in upper case is never reached (coredns/coredns#6624, fixed after 1.12.1).
        const zone = fqdn(h);
        configs.push({
          zone,
          port,
          transport: trans,
          plugins: [],
          hasForward: false,
        });
        keys.push(`${trans}://${zone}:${port}`);
      }
    }
    block.keys = keys;
    sites.push(configs);
  }
}

/** caddy Start/Restart for the dns server type: parse, inspect, set up, make servers. */
function loadInstance(text: string, env: SetupEnv): Instance {
  let blocks = parseCorefile(text, true);
  const digest = corefileDigest(parseCorefile(text, false));
  if (blocks.length === 0) blocks = parseCorefile(defaultInput, true);

  // register.go InspectServerBlocks.
  const sites: SiteConfig[][] = [];
  try {
    inspectServerBlocks(blocks, sites);
  } catch (err) {
    throw new Error(
      `error inspecting server blocks: ${(err as Error).message}`,
    );
  }

  // caddy.go executeDirectives: directive by directive, block by block, first key only.
  let reload = false;
  const kubernetesZones: string[] = [];
  for (const dir of directives) {
    blocks.forEach((block, i) => {
      const tokens = block.tokens.get(dir);
      if (!tokens) return;
      if (!modelled.has(dir))
        throw new Error(
          `plugin/${dir}: ${dir} is a CoreDNS plugin this stand-in does not model`,
        );
      let factories: HandlerFactory[];
      try {
        factories = setupDirective(
          dir,
          new Controller(tokens, block.keys),
          env,
          kubernetesZones,
        );
      } catch (e) {
        throw pluginError(dir, e as Error);
      }
      if (dir === 'reload') reload = true;
      for (const cfg of sites[i]) {
        cfg.plugins.push(...factories);
        if (dir === 'forward') cfg.hasForward = true;
      }
    });
  }

  // MakeServers: listen addresses, then overlapping zones.
  const seen = new Set<string>();
  for (const cfg of sites.flat()) {
    if (
      cfg.port !== '' &&
      (!/^[0-9]+$/.test(cfg.port) || Number(cfg.port) > 65535)
    ) {
      throw new Error(`address :${cfg.port}: invalid port`);
    }
    const key = `${cfg.transport}://${cfg.zone}:${cfg.port}`;
    if (seen.has(key))
      throw new Error(`cannot serve ${key} - it is already defined`);
    seen.add(key);
  }

  // NewServer for dns://:53, the one listener modelled; its chains are built back to front.
  const zones = new Map<string, SiteConfig[]>();
  let classChaos = false;
  for (const cfg of sites.flat()) {
    if (cfg.transport !== 'dns' || cfg.port !== '53') {
      env.log(
        `server block ${cfg.transport}://${cfg.zone}:${cfg.port} is for another listener: not served by this stand-in`,
      );
      continue;
    }
    let stack: Handler | undefined;
    for (let i = cfg.plugins.length - 1; i >= 0; i--)
      stack = cfg.plugins[i](stack);
    cfg.chain = stack;
    if (cfg.hasForward) classChaos = true;
    zones.set(cfg.zone, [...(zones.get(cfg.zone) ?? []), cfg]);
  }

  const inst: Instance = {
    zones,
    kubernetesZones,
    classChaos,
    reload,
    digest,
    serveDNS: (ctx, w, r) => serveDNS(inst, ctx, w, r),
    async lookup(ctx, state, name, type) {
      // plugin/pkg/upstream Lookup: the same server, again, for the new question.
      if (ctx.depth > 8) throw new Error('upstream lookup nested too deep');
      const req = state.withQuestion(name, type);
      const nw = new CaptureWriter(state.w.client);
      await serveDNS(inst, { ...ctx, depth: ctx.depth + 1 }, nw, req.r);
      if (!nw.msg) throw new Error('no reply');
      return nw.msg;
    },
  };
  return inst;
}

/** core/dnsserver/server.go ServeDNS. */
async function serveDNS(
  inst: Instance,
  ctx: Ctx,
  wIn: Writer,
  r: Msg,
): Promise<void> {
  if (r.question.length === 0) {
    errorFunc(wIn, r, Rcode.ServerFailure);
    return;
  }
  const state = new Req(r, wIn);
  if (!inst.classChaos && state.qclass() !== ClassINET) {
    errorFunc(wIn, r, Rcode.Refused);
    return;
  }
  const opt = isEdns0(r);
  if (opt && (opt.ednsVersion ?? 0) !== 0) {
    // edns.Version: BADVERS, written as is.
    const m = setReply(newMsg(), r);
    m.rcode = Rcode.BadVers;
    m.extra = [
      {
        name: '.',
        type: 'OPT',
        udpPayloadSize: 0,
        extendedRcode: 0,
        ednsVersion: 0,
        flags: 0,
        flag_do: false,
        options: [],
      },
    ];
    wIn.writeMsg(m);
    return;
  }
  const w = new ScrubWriter(state, wIn);
  const run = async (cfg: SiteConfig) => {
    if (!cfg.chain) {
      errorFunc(w, r, Rcode.Refused);
      return;
    }
    const res = await cfg.chain.serve(ctx, w, r);
    if (!clientWrite(res.rcode)) errorFunc(w, r, res.rcode);
  };
  const q = state.qname().toLowerCase();
  const isDS = state.qtype() === Type.DS;
  let dsHandler: SiteConfig | undefined;
  let off = 0;
  for (;;) {
    const configs = inst.zones.get(q.slice(off));
    if (configs) {
      for (const h of configs) {
        if (!h.chain) {
          errorFunc(w, r, Rcode.Refused);
          return;
        }
        if (!isDS) {
          await run(h);
          return;
        }
        dsHandler = h;
      }
    }
    const [next, end] = nextLabel(q, off);
    if (end) break;
    off = next;
  }
  if (isDS && dsHandler?.chain) {
    await run(dsHandler);
    return;
  }
  for (const h of inst.zones.get('.') ?? []) {
    if (!h.chain) continue;
    await run(h);
    return;
  }
  errorFunc(w, r, Rcode.Refused);
}

/** miekg/dns server.go and acceptfunc.go, then ServeDNS, for one message off the wire. */
async function handleWire(
  inst: Instance,
  query: Buffer,
  client: DnsClient,
): Promise<Buffer | undefined> {
  const h = readHeader(query);
  if (!h) return undefined;
  const action = acceptAction(h);
  if (action === 'ignore') return undefined;
  if (action !== 'accept') return rejectReply(h, action);
  let r: Msg;
  try {
    r = unpackMsg(query);
  } catch {
    return rejectReply(h, 'reject');
  }
  if (r.question.length > 0) {
    try {
      const { name, end } = unpackName(query, 12);
      wireQuestion.set(r.question[0], {
        name,
        qclass: query.readUInt16BE(end + 2),
      });
    } catch {
      // dns-packet read it; keep its form.
    }
  }
  const w = new CaptureWriter(client);
  await inst.serveDNS({ server: inst, depth: 0 }, w, r);
  return w.msg ? packMsg(w.msg) : undefined;
}

/* =========================================================================================== */
/* The server                                                                                   */
/* =========================================================================================== */

/** What `forward . /etc/resolv.conf` reaches by default: public DNS knows none of these names. */
const nxdomainEverywhere: Upstream = async query => ({
  id: query.id,
  type: 'response',
  flags:
    ((query.flags ?? 0) & dnsPacket.RECURSION_DESIRED) |
    dnsPacket.RECURSION_AVAILABLE |
    Rcode.NameError,
  questions: query.questions,
});

export async function startCoreDns(opts: {
  host: string;
  port?: number;
  clusterDomain?: string;
  kubernetes: KubernetesRecordSource;
  upstream?: (query: Packet) => Promise<Packet>;
  log?: (m: string) => void;
}): Promise<CoreDns> {
  const port = opts.port ?? 53;
  const log = opts.log ?? (() => undefined);
  const abort = new AbortController();
  const env: SetupEnv = {
    source: opts.kubernetes,
    upstream: opts.upstream ?? nxdomainEverywhere,
    host: opts.host,
    serial: Math.floor(Date.now() / 1000),
    signal: abort.signal,
    log,
  };
  let running: Instance | undefined;
  /** reload.go's sha512sum: the last Corefile it tried, loaded or not. */
  let lastDigest: string | undefined;
  let listener: DnsListener | undefined;
  let transition = Promise.resolve();
  let closed = false;

  const listen = () =>
    listenDns({
      host: opts.host,
      port,
      tcpIdleTimeoutMs: 10_000,
      log,
      handler: async (query, client) =>
        running ? handleWire(running, query, client) : undefined,
    });

  // Bind once to fail early on an address that is not there; then down until a Corefile loads.
  await (await listen()).close();
  // The kubelet's cluster domain: what pods' search paths name. CoreDNS serves what the
  // Corefile's kubernetes zones say; a Corefile that does not serve the domain is reported.
  const clusterDomain = normalizeName(opts.clusterDomain ?? 'cluster.local');
  const checkClusterDomain = (inst: Instance) => {
    if (!inst.kubernetesZones.includes(clusterDomain)) {
      log(
        `the Corefile's kubernetes plugin does not serve the cluster domain ${clusterDomain}`,
      );
    }
  };

  const start = (inst: Instance) => {
    running = inst;
    transition = transition.then(async () => {
      if (closed || listener) return;
      try {
        listener = await listen();
      } catch (err) {
        log(`cannot listen on ${hostPort(opts.host, port)}: ${String(err)}`);
      }
    });
  };

  return {
    address: hostPort(opts.host, port),
    setCorefile(text: string) {
      if (closed) return;
      if (!running) {
        // The pod starts (or restarts) with what the ConfigMap holds now.
        try {
          const inst = loadInstance(text, env);
          lastDigest = inst.digest;
          start(inst);
          checkClusterDomain(inst);
          log(
            `CoreDNS-1.12.1 started (${[...inst.zones.keys()].map(z => `dns://${z}:53`).join(' ')})`,
          );
        } catch (err) {
          log(
            `CoreDNS cannot start with this Corefile, the pod crash-loops: ${(err as Error).message}`,
          );
        }
        return;
      }
      if (!running.reload) {
        log(
          'Corefile changed; the running Corefile has no reload plugin: CoreDNS keeps its configuration until it restarts',
        );
        return;
      }
      // reload.go hook: parse, compare with the last tried Corefile, restart if it differs.
      let digest: string;
      try {
        digest = corefileDigest(parseCorefile(text, false));
      } catch (err) {
        log(
          `[WARNING] plugin/reload: Corefile parse failed: ${(err as Error).message}`,
        );
        return;
      }
      if (digest === lastDigest) return;
      lastDigest = digest;
      try {
        running = loadInstance(text, env);
        log('[INFO] Reloading complete');
        checkClusterDomain(running);
      } catch (err) {
        log(
          `[ERROR] plugin/reload: Corefile changed but reload failed: ${(err as Error).message}`,
        );
      }
    },
    async close() {
      closed = true;
      abort.abort();
      await transition;
      await listener?.close();
      listener = undefined;
    },
  };
}

/** For tests: the Corefile parser and the names it yields. */
export const internals = {
  parseCorefile,
  splitHostPort,
  reverseZones,
  parseCIDR,
  Type,
};
