/*
 * Stand-in for the Tailscale Kubernetes operator's API server proxy: the HTTPS endpoint on the
 * operator's tailnet node (`https://<operator>.<tailnet>.ts.net`) that lets tailnet peers reach the
 * cluster's kube-apiserver, either impersonating the caller's tailnet identity ("auth" mode) or
 * passing requests through for the apiserver to authenticate ("noauth" mode).
 * (tailscale.com/kb/1437 describes the feature; the real proxy runs inside the operator pod, which
 * in the test bed is one of kwok's fakes, so nothing real serves it here.)
 *
 * Upstream followed (tailscale/tailscale v1.102.5):
 *  - `k8s-operator/api-proxy/proxy.go`: `NewAPIServerProxy` (noauth mode uses
 *    `rest.AnonymousClientConfig`, i.e. no operator credentials upstream), `Run` in its https mode
 *    (TLS with `LocalClient.GetCertificate`, ALPN `http/1.1` only because SPDY exec/port-forward
 *    cannot run over HTTP/2), `serveDefault` / `sessionForProto` (WhoIs of the peer, else 500
 *    "failed to authenticate caller"), `addImpersonationHeadersAsRequired` and
 *    `addImpersonationHeaders` (the header rules below), `determineRecorderConfig`;
 *  - `kube/kubetypes/grants.go` (`KubernetesCapRule`, `ImpersonateRule`) and `tailcfg`
 *    (`PeerCapabilityKubernetes` = "tailscale.com/cap/kubernetes", `UnmarshalCapJSON`);
 *  - `cmd/k8s-operator/operator.go` and `api-server-proxy.go` (started only when APISERVER_PROXY is
 *    "true" = auth or "noauth"; the deprecated AUTH_PROXY boolean; see `apiServerProxyModeFromEnv`);
 *  - Go's `net/http/httputil.ReverseProxy` (go1.26) with a `Rewrite` hook, which the proxy uses:
 *    hop-by-hop headers (and those named in `Connection`) are removed both ways, `Te: trailers` is
 *    kept, client-sent `Forwarded` / `X-Forwarded-*` are dropped and none are added, the client's
 *    `Host` header is kept (only the URL's scheme and host are rewritten), responses are streamed
 *    and flushed as they come, a failed round trip is a bare 502, and an `Upgrade` is piped raw in
 *    both directions once the upstream answers 101 with the same protocol (502 otherwise);
 *  - client-go's transport: the operator's bearer token is added upstream (auth mode only), and the
 *    upstream's certificate is verified against the cluster CA.
 *
 * Header rules (auth mode): the caller's `Authorization`, `Impersonate-User`, `Impersonate-Group`,
 * `Impersonate-Uid` and every `Impersonate-Extra-*` are deleted; then one `Impersonate-Group` per
 * distinct group of every `impersonate` rule in the peer's capability
 * `tailscale.com/cap/kubernetes` (the legacy name `https://tailscale.com/cap/kubernetes` is read only
 * when the new one yields no rules); `Impersonate-User` is the user's login name for an untagged
 * node, otherwise the node's MagicDNS name without the trailing dot, and in that case, if no group
 * was added, each of the node's tags becomes an `Impersonate-Group`.
 *
 * Upstream behaviours kept on purpose, although surprising:
 *  - a capability value under the new name that does not decode as a rule makes the real proxy log
 *    and return without writing, which Go's server turns into an empty 200; the same happens here;
 *  - a legacy-name value that does not decode is only logged, and the request goes on WITHOUT
 *    impersonation headers, i.e. as the operator's own ServiceAccount (auth mode); kept, since
 *    faithfulness is the point of a stand-in (the product never writes the legacy name).
 *
 * Not modeled:
 *  - session recording: no recorder is modeled, so every request is served as if no rule asked for
 *    one (`recorder`, `recorderAddrs`, `enforceRecorder`, `enableEvents` are decoded for their types
 *    but otherwise ignored; the real proxy's fail-closed 403 when recording is enforced and no
 *    recorder is reachable does not happen here);
 *  - the http (k8s-proxy, PROXY protocol, `X-Forwarded-For` WhoIs fallback) mode: https only;
 *  - response trailers, 1xx informational responses other than Node's own `100 Continue`, Go's
 *    removal of unparsable query parameters, and the Go transport's transparent gzip (the client's
 *    `Accept-Encoding` is passed on as is);
 *  - graceful shutdown: `close()` drops every connection at once (the real one waits up to 10 s).
 *
 * Deviations: `getCertificate` may return a promise (Go's GetCertificate blocks; a Node SNI callback
 * can wait); a WhoIs of an untagged node without a user profile, which a real tailnet never
 * returns (Go would dereference nil), is answered like an unknown peer (500).
 *
 * The tailnet layer accepts and filters connections and hands each to `handle`. Tokens and
 * `Authorization` headers are never logged.
 */
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';

/** tailcfg.PeerCapabilityKubernetes. */
export const PEER_CAPABILITY_KUBERNETES = 'tailscale.com/cap/kubernetes';
/** proxy.go `oldCapabilityName`, honoured for group impersonation only. */
export const LEGACY_PEER_CAPABILITY_KUBERNETES = `https://${PEER_CAPABILITY_KUBERNETES}`;

export type ApiServerProxyMode = 'auth' | 'noauth';

/** apitype.WhoIsResponse, the parts the proxy reads. */
export interface WhoIs {
  node: {
    /** FQDN with trailing dot, as tailcfg.Node.Name. */
    name: string;
    tags: string[];
  };
  userProfile?: { loginName: string };
  /** tailcfg.PeerCapMap: capability name to its JSON values, already parsed. */
  capMap: Record<string, unknown[]>;
}

export interface ApiServerProxyOptions {
  mode: ApiServerProxyMode;
  /**
   * Like LocalClient.GetCertificate: the TLS cert for the SNI name; throws (or rejects) when the
   * tailnet's HTTPS is off or the name is not this node's. Called per handshake, so turning HTTPS
   * off takes effect for new connections. A bare host label is the callee's to expand, as
   * LocalClient does with ExpandSNIName. Not called when the client sends no SNI: such handshakes
   * fail, as GetCertificate refuses "no SNI ServerName".
   */
  getCertificate(
    serverName: string,
  ): { key: string; cert: string } | Promise<{ key: string; cert: string }>;
  /** The tailnet's WhoIs of the connection's peer address; undefined = unknown peer. */
  whoIs(remoteAddress: string, remotePort: number): WhoIs | undefined;
  /** The real kube-apiserver and the operator's own credentials (its ServiceAccount token, re-read per request since it rotates). */
  upstream: { url: string; caPem: string; token(): string };
  log?: (msg: string) => void;
}

export interface ApiServerProxy {
  /** Serve one accepted TCP connection (the tailnet layer accepts and filters). */
  handle(socket: net.Socket): void;
  close(): Promise<void>;
}

/** kubetypes.KubernetesCapRule as decoded here (Go field names, JSON names in comments). */
export interface KubernetesCapRule {
  /** `impersonate` */
  impersonate?: { groups: string[] };
  /** `recorder` */
  recorders: string[];
  /** `recorderAddrs` */
  recorderAddrs: string[];
  /** `enforceRecorder` */
  enforceRecorder: boolean;
  /** `enableEvents` */
  enableEvents: boolean;
}

/**
 * cmd/k8s-operator parseAPIProxyMode: APISERVER_PROXY "true" = auth, "noauth" = noauth, "false" or
 * unset = no proxy; the deprecated AUTH_PROXY boolean means auth mode; both set is an error.
 */
export function apiServerProxyModeFromEnv(
  env: Record<string, string | undefined>,
): ApiServerProxyMode | undefined {
  const authProxy = env.AUTH_PROXY ?? '';
  const apiProxy = env.APISERVER_PROXY ?? '';
  if (authProxy !== '' && apiProxy !== '')
    throw new Error(
      'AUTH_PROXY (deprecated) and APISERVER_PROXY are mutually exclusive, please unset AUTH_PROXY',
    );
  if (authProxy !== '')
    return ['1', 't', 'T', 'TRUE', 'true', 'True'].includes(authProxy)
      ? 'auth'
      : undefined;
  switch (apiProxy) {
    case 'true':
      return 'auth';
    case 'false':
    case '':
      return undefined;
    case 'noauth':
      return 'noauth';
    default:
      throw new Error(
        `unknown APISERVER_PROXY value ${JSON.stringify(apiProxy)}`,
      );
  }
}

// ---------------------------------------------------------------------------------------------
// Capability decoding, as Go's encoding/json would decode into KubernetesCapRule

class CapDecodeError extends Error {}

/** Go's encoding/json matches object keys to struct fields case-insensitively; the last match wins. */
function field(object: Record<string, unknown>, name: string): unknown {
  let found: unknown;
  for (const [key, value] of Object.entries(object)) {
    if (key.toLowerCase() === name.toLowerCase()) found = value;
  }
  return found;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function typeName(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  return typeof value;
}

/** A Go []string: null is nil, a null element is "" (json leaves the zero value). */
function stringList(value: unknown, where: string): string[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value))
    throw new CapDecodeError(
      `json: cannot unmarshal ${typeName(value)} into ${where} of type []string`,
    );
  return value.map(item => {
    if (item === null) return '';
    if (typeof item !== 'string')
      throw new CapDecodeError(
        `json: cannot unmarshal ${typeName(item)} into ${where} of type string`,
      );
    return item;
  });
}

function bool(value: unknown, where: string): boolean {
  if (value === undefined || value === null) return false;
  if (typeof value !== 'boolean')
    throw new CapDecodeError(
      `json: cannot unmarshal ${typeName(value)} into ${where} of type bool`,
    );
  return value;
}

const ADDR_PORT =
  /^(?:\d{1,3}(?:\.\d{1,3}){3}|\[[0-9A-Fa-f:.]+(?:%[^\]]+)?\]):(\d{1,5})$/;

/** A Go []netip.AddrPort: each a string "ip:port" (netip.ParseAddrPort). */
function addrPortList(value: unknown, where: string): string[] {
  return stringList(value, where).map(text => {
    if (text === '') return text;
    const match = ADDR_PORT.exec(text);
    const host = match
      ? text.slice(0, text.lastIndexOf(':')).replace(/^\[|\]$/g, '')
      : '';
    if (
      !match ||
      Number(match[1]) > 65535 ||
      net.isIP(host.replace(/%.*$/, '')) === 0
    )
      throw new CapDecodeError(
        `invalid AddrPort ${JSON.stringify(text)} in ${where}`,
      );
    return text;
  });
}

function decodeRule(value: unknown): KubernetesCapRule {
  if (value === null)
    return {
      recorders: [],
      recorderAddrs: [],
      enforceRecorder: false,
      enableEvents: false,
    };
  if (!isObject(value))
    throw new CapDecodeError(
      `json: cannot unmarshal ${typeName(value)} into Go value of type kubetypes.KubernetesCapRule`,
    );
  const impersonate = field(value, 'impersonate');
  let rule: KubernetesCapRule['impersonate'];
  if (impersonate !== undefined && impersonate !== null) {
    if (!isObject(impersonate))
      throw new CapDecodeError(
        `json: cannot unmarshal ${typeName(impersonate)} into Go struct field KubernetesCapRule.impersonate of type kubetypes.ImpersonateRule`,
      );
    rule = {
      groups: stringList(
        field(impersonate, 'groups'),
        'Go struct field ImpersonateRule.impersonate.groups',
      ),
    };
  }
  return {
    impersonate: rule,
    recorders: stringList(
      field(value, 'recorder'),
      'Go struct field KubernetesCapRule.recorder',
    ),
    recorderAddrs: addrPortList(
      field(value, 'recorderAddrs'),
      'Go struct field KubernetesCapRule.recorderAddrs',
    ),
    enforceRecorder: bool(
      field(value, 'enforceRecorder'),
      'Go struct field KubernetesCapRule.enforceRecorder',
    ),
    enableEvents: bool(
      field(value, 'enableEvents'),
      'Go struct field KubernetesCapRule.enableEvents',
    ),
  };
}

/** tailcfg.UnmarshalCapJSON[KubernetesCapRule]: [] when the capability is absent; throws on a value that does not decode. */
export function kubernetesCapRules(
  capMap: Record<string, unknown[]>,
  capability: string,
): KubernetesCapRule[] {
  const values = Object.prototype.hasOwnProperty.call(capMap, capability)
    ? capMap[capability]
    : undefined;
  return (values ?? []).map(decodeRule);
}

// ---------------------------------------------------------------------------------------------
// Header lists: [name, value] pairs, so that repeated headers and their order survive

type HeaderList = Array<[string, string]>;

function headerPairs(raw: string[]): HeaderList {
  const out: HeaderList = [];
  for (let i = 0; i + 1 < raw.length; i += 2) out.push([raw[i], raw[i + 1]]);
  return out;
}

const flat = (headers: HeaderList): string[] => headers.flat();

function valuesOf(headers: HeaderList, name: string): string[] {
  const lower = name.toLowerCase();
  return headers.filter(([n]) => n.toLowerCase() === lower).map(([, v]) => v);
}

function tokens(values: string[]): string[] {
  return values
    .flatMap(v => v.split(','))
    .map(t => t.trim().toLowerCase())
    .filter(t => t !== '');
}

/** httputil.ReverseProxy hopHeaders (RFC 7230 §6.1 plus the RFC 2616 list). */
const HOP_HEADERS = new Set([
  'connection',
  'proxy-connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

function removeHopByHop(headers: HeaderList): HeaderList {
  const listed = new Set(tokens(valuesOf(headers, 'connection')));
  return headers.filter(([n]) => {
    const lower = n.toLowerCase();
    return !HOP_HEADERS.has(lower) && !listed.has(lower);
  });
}

/** httputil upgradeType: the Upgrade value when Connection names "upgrade", else "". */
function upgradeType(headers: HeaderList): string {
  if (!tokens(valuesOf(headers, 'connection')).includes('upgrade')) return '';
  return valuesOf(headers, 'upgrade')[0] ?? '';
}

const FORWARDING_HEADERS = new Set([
  'forwarded',
  'x-forwarded-for',
  'x-forwarded-host',
  'x-forwarded-proto',
]);

function isCallerAuthHeader(name: string): boolean {
  const lower = name.toLowerCase();
  return (
    lower === 'authorization' ||
    lower === 'impersonate-group' ||
    lower === 'impersonate-user' ||
    lower === 'impersonate-uid' ||
    lower.startsWith('impersonate-extra-')
  );
}

// ---------------------------------------------------------------------------------------------
// The proxy

interface Peer {
  address: string;
  port: number;
}

/** What to do with one request, decided before anything goes upstream. */
type Decision =
  | { kind: 'reply'; status: number; body: string }
  | { kind: 'forward'; headers: HeaderList; upgrade: string };

class ProxyError extends Error {}

export function createApiServerProxy(
  opts: ApiServerProxyOptions,
): ApiServerProxy {
  const log = opts.log ?? (() => undefined);
  const upstreamUrl = new URL(opts.upstream.url);
  if (upstreamUrl.protocol !== 'https:' || upstreamUrl.hostname === '')
    throw new Error(
      `the API server proxy requires an https URL with a host but got: ${JSON.stringify(opts.upstream.url)}`,
    );
  const upstreamHost = upstreamUrl.hostname.replace(/^\[|\]$/g, '');
  const upstreamPort = Number(upstreamUrl.port || 443);
  const agent = new https.Agent({
    keepAlive: true,
    ca: opts.upstream.caPem,
    // SNI only for names; the certificate is checked against the URL's host either way.
    servername: net.isIP(upstreamHost) ? '' : upstreamHost,
    checkServerIdentity: (_host, cert) =>
      tls.checkServerIdentity(upstreamHost, cert),
  });

  const peers = new WeakMap<Duplex, Peer>();
  const live = new Set<net.Socket | Duplex>();
  const upstreamRequests = new Set<http.ClientRequest>();
  let closed = false;

  // A context without a certificate: a client that sends no SNI fails the handshake.
  const baseContext = tls.createSecureContext({});
  const contexts = new Map<string, tls.SecureContext>();
  function contextFor(pair: { key: string; cert: string }): tls.SecureContext {
    const id = `${pair.cert}\0${pair.key}`;
    let context = contexts.get(id);
    if (!context) {
      if (contexts.size >= 32) contexts.clear();
      context = tls.createSecureContext({ key: pair.key, cert: pair.cert });
      contexts.set(id, context);
    }
    return context;
  }

  function track<T extends net.Socket | Duplex>(stream: T): T {
    live.add(stream);
    stream.once('close', () => live.delete(stream));
    return stream;
  }

  /** serveDefault up to the ReverseProxy's Rewrite: WhoIs, recorder config, outbound headers. */
  function decide(req: http.IncomingMessage, peer: Peer | undefined): Decision {
    let who: WhoIs | undefined;
    let whoIsError = 'peer not known to the tailnet';
    try {
      who = peer ? opts.whoIs(peer.address, peer.port) : undefined;
    } catch (err) {
      whoIsError = err instanceof Error ? err.message : String(err);
    }
    if (who && !who.node.tags.length && !who.userProfile) {
      who = undefined;
      whoIsError = 'WhoIs has neither tags nor a user profile';
    }
    if (!who) {
      log(
        `failed to authenticate caller ${peer ? `${peer.address}:${peer.port}` : '(unknown address)'}: ${whoIsError}`,
      );
      return {
        kind: 'reply',
        status: 500,
        body: 'failed to authenticate caller\n',
      };
    }

    // determineRecorderConfig: only the new capability name counts for recording.
    let rules: KubernetesCapRule[];
    try {
      rules = kubernetesCapRules(who.capMap, PEER_CAPABILITY_KUBERNETES);
    } catch (err) {
      log(
        `error trying to determine whether the kubernetes api request ${JSON.stringify(req.url)} needs to be recorded: failed to unmarshal Kubernetes capability: ${(err as Error).message}`,
      );
      // proxy.go returns without writing; Go's server then sends an empty 200.
      return { kind: 'reply', status: 200, body: '' };
    }
    if (
      rules.some(
        r =>
          r.recorderAddrs.length ||
          r.recorders.length ||
          r.enforceRecorder ||
          r.enableEvents,
      )
    ) {
      log(
        'a tailscale.com/cap/kubernetes rule asks for session recording, which this stand-in does not model; serving as if no recorder were configured',
      );
    }

    let headers = headerPairs(req.rawHeaders);
    const upgrade = upgradeType(headers);
    const wantsTrailers = tokens(valuesOf(headers, 'te')).includes('trailers');
    headers = removeHopByHop(headers);
    if (wantsTrailers) headers.push(['Te', 'trailers']);
    if (upgrade) headers.push(['Connection', 'Upgrade'], ['Upgrade', upgrade]);
    headers = headers.filter(([n]) => !FORWARDING_HEADERS.has(n.toLowerCase()));
    if (valuesOf(headers, 'host').length === 0)
      headers.push(['Host', upstreamUrl.host]);
    // Transfer-Encoding is hop-by-hop; a body of unknown length goes on chunked, as Go's transport sends it.
    if (
      req.headers['transfer-encoding'] !== undefined &&
      req.headers['content-length'] === undefined
    )
      headers.push(['Transfer-Encoding', 'chunked']);

    if (opts.mode === 'auth') {
      // "Out of paranoia, remove all authentication headers that might have been set by the client."
      headers = headers.filter(([n]) => !isCallerAuthHeader(n));
      try {
        headers.push(...impersonationHeaders(who, rules));
      } catch (err) {
        log(
          `failed to add impersonation headers: failed to unmarshal capability: ${(err as Error).message}`,
        );
      }
    }
    return { kind: 'forward', headers, upgrade };
  }

  /** proxy.go addImpersonationHeaders. `rules` are the new-name rules, already decoded. */
  function impersonationHeaders(
    who: WhoIs,
    rules: KubernetesCapRule[],
  ): HeaderList {
    const effective =
      rules.length === 0
        ? kubernetesCapRules(who.capMap, LEGACY_PEER_CAPABILITY_KUBERNETES)
        : rules;
    const out: HeaderList = [];
    const groups = new Set<string>();
    for (const rule of effective) {
      for (const group of rule.impersonate?.groups ?? []) {
        if (groups.has(group)) continue;
        groups.add(group);
        out.push(['Impersonate-Group', group]);
      }
    }
    if (who.node.tags.length === 0) {
      out.push(['Impersonate-User', who.userProfile?.loginName ?? '']);
      return out;
    }
    // "Impersonate-Group" requires "Impersonate-User", so tagged nodes act as their FQDN.
    out.push(['Impersonate-User', who.node.name.replace(/\.$/, '')]);
    // Legacy behaviour from before capabilities: the node's tags are its groups.
    if (groups.size === 0) {
      for (const tag of who.node.tags) out.push(['Impersonate-Group', tag]);
    }
    return out;
  }

  /** The transport: client-go's bearer token in auth mode (rest.AnonymousClientConfig in noauth mode). */
  function upstreamRequest(
    req: http.IncomingMessage,
    headers: HeaderList,
  ): http.ClientRequest {
    const outgoing = [...headers];
    if (opts.mode === 'auth') {
      let token: string;
      try {
        token = opts.upstream.token();
      } catch {
        throw new ProxyError(
          "could not read the operator's ServiceAccount token",
        );
      }
      outgoing.push(['Authorization', `Bearer ${token}`]);
    }
    const upReq = https.request({
      protocol: 'https:',
      host: upstreamHost,
      port: upstreamPort,
      method: req.method,
      path: req.url,
      headers: flat(outgoing),
      agent,
    });
    upstreamRequests.add(upReq);
    upReq.once('close', () => upstreamRequests.delete(upReq));
    return upReq;
  }

  // ---- ordinary requests ------------------------------------------------------------------------

  function onRequest(
    req: http.IncomingMessage,
    res: http.ServerResponse,
  ): void {
    const decision = decide(req, peers.get(req.socket));
    if (decision.kind === 'reply') {
      replyTo(res, decision.status, decision.body);
      req.resume();
      return;
    }
    let upReq: http.ClientRequest;
    try {
      upReq = upstreamRequest(req, decision.headers);
    } catch (err) {
      log(`http: proxy error: ${(err as Error).message}`);
      replyTo(res, 502, '');
      req.resume();
      return;
    }
    let clientGone = false;
    upReq.on('response', upRes => {
      const headers = removeHopByHop(headerPairs(upRes.rawHeaders));
      res.writeHead(upRes.statusCode ?? 502, flat(headers));
      // Flush the status line and headers now: a watch may send its first event much later.
      res.flushHeaders();
      upRes.pipe(res);
      // Mid-stream failure: all that can be done is to abort (ReverseProxy panics ErrAbortHandler).
      upRes.on('close', () => {
        if (!upRes.complete) res.destroy();
      });
    });
    upReq.on('error', err => {
      if (clientGone) return;
      if (!res.headersSent) {
        log(`http: proxy error: ${err.message}`);
        replyTo(res, 502, '');
      } else {
        res.destroy();
      }
    });
    // The client went away: cancel the upstream request, as the request's context would.
    res.on('close', () => {
      if (!res.writableFinished) {
        clientGone = true;
        upReq.destroy();
      }
    });
    req.pipe(upReq);
  }

  // ---- upgrades (exec, attach, port-forward; SPDY or WebSocket) ---------------------------------

  function onUpgrade(
    req: http.IncomingMessage,
    socket: Duplex,
    head: Buffer,
  ): void {
    const decision = decide(req, peers.get(socket));
    if (decision.kind === 'reply') {
      writeRaw(socket, decision.status, [], decision.body);
      return;
    }
    let upReq: http.ClientRequest;
    try {
      upReq = upstreamRequest(req, decision.headers);
    } catch (err) {
      log(`http: proxy error: ${(err as Error).message}`);
      writeRaw(socket, 502, [], '');
      return;
    }
    let settled = false;
    const clientGone = () => {
      if (settled) return;
      settled = true;
      upReq.destroy();
    };
    socket.on('error', clientGone);
    socket.on('close', clientGone);

    upReq.on(
      'upgrade',
      (upRes: http.IncomingMessage, upSocket: net.Socket, upHead: Buffer) => {
        settled = true;
        track(upSocket);
        const resHeaders = headerPairs(upRes.rawHeaders);
        const resType = upgradeType(resHeaders);
        if (resType.toLowerCase() !== decision.upgrade.toLowerCase()) {
          log(
            `http: proxy error: backend tried to switch protocol ${JSON.stringify(resType)} when ${JSON.stringify(decision.upgrade)} was requested`,
          );
          upSocket.destroy();
          writeRaw(socket, 502, [], '');
          return;
        }
        // Go writes the 101 with all of the upstream's headers (Connection and Upgrade included).
        const lines = [`HTTP/1.1 101 ${http.STATUS_CODES[101]}`];
        for (const [n, v] of resHeaders) lines.push(`${n}: ${v}`);
        socket.write(`${lines.join('\r\n')}\r\n\r\n`);
        if (upHead.length) socket.write(upHead);
        if (head.length) upSocket.write(head);
        socket.pipe(upSocket);
        upSocket.pipe(socket);
        const done = () => {
          socket.destroy();
          upSocket.destroy();
        };
        socket.on('close', done);
        upSocket.on('close', done);
        socket.on('error', done);
        upSocket.on('error', done);
      },
    );

    // Not switched (e.g. 400, 403): an ordinary response; the connection is closed after it.
    upReq.on('response', upRes => {
      settled = true;
      const headers = removeHopByHop(headerPairs(upRes.rawHeaders)).filter(
        ([n]) => n.toLowerCase() !== 'content-length',
      );
      writeHead(socket, upRes.statusCode ?? 502, [
        ...headers,
        ['Connection', 'close'],
      ]);
      upRes.on('data', (chunk: Buffer) => socket.write(chunk));
      upRes.on('end', () => socket.end());
      upRes.on('error', () => socket.destroy());
      socket.once('close', () => upRes.destroy());
    });
    upReq.on('error', err => {
      if (settled) return;
      settled = true;
      log(`http: proxy error: ${err.message}`);
      writeRaw(socket, 502, [], '');
    });
    upReq.end();
  }

  const server = http.createServer({ maxHeaderSize: 1 << 20 }, onRequest);
  // Go's http.Server in proxy.go sets no timeouts: watches and exec sessions last as long as they last.
  server.keepAliveTimeout = 0;
  server.requestTimeout = 0;
  server.on('upgrade', onUpgrade);

  function handle(socket: net.Socket): void {
    if (closed) {
      socket.destroy();
      return;
    }
    track(socket);
    const peer: Peer | undefined =
      socket.remoteAddress !== undefined && socket.remotePort !== undefined
        ? { address: socket.remoteAddress, port: socket.remotePort }
        : undefined;
    const secure = track(
      new tls.TLSSocket(socket, {
        isServer: true,
        secureContext: baseContext,
        // Kubernetes uses SPDY for exec and port-forward, which cannot run over HTTP/2 (proxy.go).
        ALPNProtocols: ['http/1.1'],
        SNICallback: (serverName, done) => {
          Promise.resolve()
            .then(() => opts.getCertificate(serverName))
            .then(
              pair => done(null, contextFor(pair)),
              (err: unknown) =>
                done(err instanceof Error ? err : new Error(String(err))),
            );
        },
      }),
    );
    if (peer) peers.set(secure, peer);
    let established = false;
    secure.once('secure', () => {
      established = true;
      server.emit('connection', secure);
    });
    secure.on('error', err => {
      if (!established)
        log(
          `http: TLS handshake error from ${peer ? `${peer.address}:${peer.port}` : 'unknown peer'}: ${err.message}`,
        );
      secure.destroy();
      socket.destroy();
    });
    socket.on('error', () => secure.destroy());
  }

  return {
    handle,
    close: async () => {
      closed = true;
      // Every stream in `live` has yet to emit 'close' (track() removes it then).
      const waits = [...live].map(
        stream =>
          new Promise<void>(resolve => stream.once('close', () => resolve())),
      );
      for (const upReq of upstreamRequests) upReq.destroy();
      for (const stream of live) stream.destroy();
      agent.destroy();
      await Promise.race([
        Promise.all(waits),
        new Promise(resolve => setTimeout(resolve, 1000).unref()),
      ]);
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Helpers

/** http.Error for a message (text/plain, nosniff); a bare status with an empty body otherwise. */
function replyTo(res: http.ServerResponse, status: number, body: string): void {
  const headers: Record<string, string> = {
    'Content-Length': String(Buffer.byteLength(body)),
  };
  if (body !== '') {
    headers['Content-Type'] = 'text/plain; charset=utf-8';
    headers['X-Content-Type-Options'] = 'nosniff';
  }
  res.writeHead(status, headers);
  res.end(body);
}

function writeHead(socket: Duplex, status: number, headers: HeaderList): void {
  const lines = [`HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? ''}`];
  for (const [n, v] of headers) lines.push(`${n}: ${v}`);
  socket.write(`${lines.join('\r\n')}\r\n\r\n`);
}

/** A whole response on a raw (upgrade) connection, which is then closed. */
function writeRaw(
  socket: Duplex,
  status: number,
  headers: HeaderList,
  body: string,
): void {
  if (socket.destroyed) return;
  const all: HeaderList = [...headers];
  if (body !== '') {
    all.push(
      ['Content-Type', 'text/plain; charset=utf-8'],
      ['X-Content-Type-Options', 'nosniff'],
    );
  }
  all.push(
    ['Content-Length', String(Buffer.byteLength(body))],
    ['Connection', 'close'],
  );
  writeHead(socket, status, all);
  socket.end(body);
}
