import { webcrypto } from 'node:crypto';
import { once } from 'node:events';
import http from 'node:http';
import https from 'node:https';
import net, { type AddressInfo } from 'node:net';
import tls from 'node:tls';
import * as x509 from '@peculiar/x509';
import {
  apiServerProxyModeFromEnv,
  createApiServerProxy,
  kubernetesCapRules,
  LEGACY_PEER_CAPABILITY_KUBERNETES,
  PEER_CAPABILITY_KUBERNETES,
  type ApiServerProxy,
  type ApiServerProxyOptions,
  type WhoIs,
} from './apiServerProxy';
import {
  createTailnetCertificateAuthority,
  type TailnetCertificateAuthority,
} from './httpsCertificates';

const TAILNET = 'tailmesh-test.ts.net';
const PROXY_NAME = `operator-cluster1.${TAILNET}`;
const OPERATOR_TOKEN = 'operator-sa-token-aaaaaaaaaaaaaaaa';
const CALLER_TOKEN = 'caller-token-bbbbbbbbbbbbbbbbbbbb';

// Each "tailnet peer" connects from its own loopback address, so WhoIs can tell them apart.
const TAGGED_WITH_RULE = '127.0.0.2';
const TAGGED_NO_RULE = '127.0.0.3';
const USER = '127.0.0.4';
const UNKNOWN = '127.0.0.5';
const LEGACY = '127.0.0.6';
const MALFORMED = '127.0.0.7';
const RECORDED = '127.0.0.8';

const identities = new Map<string, WhoIs>([
  [
    TAGGED_WITH_RULE,
    {
      node: { name: `istio-cluster2.${TAILNET}.`, tags: ['tag:k8s'] },
      userProfile: { loginName: 'tagged-devices' },
      capMap: {
        [PEER_CAPABILITY_KUBERNETES]: [
          {
            impersonate: {
              groups: ['group:istio-readers', 'system:authenticated'],
            },
          },
          { impersonate: { groups: ['group:istio-readers'] } },
          {},
        ],
        // Ignored: the new name has rules.
        [LEGACY_PEER_CAPABILITY_KUBERNETES]: [
          { impersonate: { groups: ['legacy-group'] } },
        ],
      },
    },
  ],
  [
    TAGGED_NO_RULE,
    {
      node: {
        name: `mesh-cluster3.${TAILNET}.`,
        tags: ['tag:k8s', 'tag:mesh'],
      },
      userProfile: { loginName: 'tagged-devices' },
      capMap: {},
    },
  ],
  [
    USER,
    {
      node: { name: `alice-laptop.${TAILNET}.`, tags: [] },
      userProfile: { loginName: 'alice@example.com' },
      capMap: {
        [PEER_CAPABILITY_KUBERNETES]: [{ Impersonate: { Groups: ['devs'] } }],
      },
    },
  ],
  [
    LEGACY,
    {
      node: { name: `old-cluster4.${TAILNET}.`, tags: ['tag:k8s'] },
      capMap: {
        [LEGACY_PEER_CAPABILITY_KUBERNETES]: [
          { impersonate: { groups: ['legacy-group'] } },
        ],
      },
    },
  ],
  [
    MALFORMED,
    {
      node: { name: `bad-cluster5.${TAILNET}.`, tags: ['tag:k8s'] },
      capMap: { [PEER_CAPABILITY_KUBERNETES]: ['not an object'] },
    },
  ],
  [
    RECORDED,
    {
      node: { name: `rec-cluster6.${TAILNET}.`, tags: ['tag:k8s'] },
      capMap: {
        [PEER_CAPABILITY_KUBERNETES]: [
          {
            impersonate: { groups: ['recorded'] },
            recorder: ['tag:recorder'],
            recorderAddrs: ['100.64.0.9:80'],
            enforceRecorder: true,
          },
        ],
      },
    },
  ],
]);

interface Echo {
  method: string;
  url: string;
  headers: Array<[string, string]>;
  body: string;
}

/** Values of one header as the upstream saw it, in order. */
const headerValues = (echo: Echo, name: string) =>
  echo.headers
    .filter(([n]) => n.toLowerCase() === name.toLowerCase())
    .map(([, v]) => v);

const pairsOf = (raw: string[]): Array<[string, string]> => {
  const out: Array<[string, string]> = [];
  for (let i = 0; i < raw.length; i += 2) out.push([raw[i], raw[i + 1]]);
  return out;
};

/** A kube-apiserver look-alike: its own self-signed CA, a certificate for 127.0.0.1. */
async function upstreamCertificate(): Promise<{ key: string; cert: string }> {
  const crypto = webcrypto as unknown as Crypto;
  const keys = await crypto.subtle.generateKey(
    { name: 'ECDSA', namedCurve: 'P-256' },
    true,
    ['sign', 'verify'],
  );
  const cert = await x509.X509CertificateGenerator.createSelfSigned(
    {
      serialNumber: '01',
      name: 'CN=kube-apiserver test upstream',
      notBefore: new Date(Date.now() - 60_000),
      notAfter: new Date(Date.now() + 24 * 3600_000),
      keys,
      signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
      extensions: [
        new x509.BasicConstraintsExtension(true, undefined, true),
        new x509.KeyUsagesExtension(
          x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyCertSign,
          true,
        ),
        new x509.SubjectAlternativeNameExtension([
          { type: 'ip', value: '127.0.0.1' },
        ]),
      ],
    },
    crypto,
  );
  const pkcs8 = Buffer.from(
    await crypto.subtle.exportKey('pkcs8', keys.privateKey),
  );
  return {
    key: `-----BEGIN PRIVATE KEY-----\n${pkcs8.toString('base64').replace(/.{64}/g, '$&\n')}\n-----END PRIVATE KEY-----\n`,
    cert: cert.toString('pem'),
  };
}

describe('API server proxy stand-in', () => {
  let tailnetCa: TailnetCertificateAuthority;
  let upstream: https.Server;
  let upstreamUrl: string;
  let upstreamCaPem: string;
  let upstreamCalls = 0;
  let operatorToken = OPERATOR_TOKEN;
  let httpsEnabled = true;
  const logs: string[] = [];
  /** Resolved by the upstream's /watch handler's second chunk, so the test controls its timing. */
  let releaseWatch: () => void = () => undefined;
  let uploadFirstChunk: (chunk: string) => void = () => undefined;

  const proxies: Array<{ proxy: ApiServerProxy; server: net.Server }> = [];

  async function startProxy(
    overrides: Partial<ApiServerProxyOptions> = {},
  ): Promise<number> {
    const proxy = createApiServerProxy({
      mode: 'auth',
      getCertificate: async serverName => {
        if (!httpsEnabled)
          throw new Error(
            'your Tailscale account does not support getting TLS certs',
          );
        if (serverName !== PROXY_NAME)
          throw new Error(
            `invalid domain ${JSON.stringify(serverName)}; must be one of ["${PROXY_NAME}"]`,
          );
        return tailnetCa.issue(serverName);
      },
      whoIs: address => identities.get(address),
      upstream: {
        url: upstreamUrl,
        caPem: upstreamCaPem,
        token: () => operatorToken,
      },
      log: msg => logs.push(msg),
      ...overrides,
    });
    const server = net.createServer(socket => proxy.handle(socket));
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
    proxies.push({ proxy, server });
    return (server.address() as AddressInfo).port;
  }

  let authPort: number;
  let noauthPort: number;

  beforeAll(async () => {
    tailnetCa = await createTailnetCertificateAuthority();
    const upstreamCert = await upstreamCertificate();
    upstreamCaPem = upstreamCert.cert;
    upstream = https.createServer(upstreamCert, (req, res) => {
      upstreamCalls++;
      const url = new URL(req.url ?? '/', 'https://upstream.invalid');
      if (url.pathname === '/watch') {
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.write('{"type":"ADDED","object":{"kind":"Service"}}\n');
        releaseWatch = () => {
          res.write('{"type":"MODIFIED","object":{"kind":"Service"}}\n');
          res.end();
        };
        return;
      }
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => {
        if (chunks.length === 0) uploadFirstChunk(chunk.toString());
        chunks.push(chunk);
      });
      req.on('end', () => {
        const echo: Echo = {
          method: req.method ?? '',
          url: req.url ?? '',
          headers: pairsOf(req.rawHeaders),
          body: Buffer.concat(chunks).toString(),
        };
        res.writeHead(200, {
          'Content-Type': 'application/json',
          'Keep-Alive': 'timeout=5',
          'X-Upstream': 'yes',
        });
        res.end(JSON.stringify(echo));
      });
    });
    upstream.on('upgrade', (req: http.IncomingMessage, socket: net.Socket) => {
      upstreamCalls++;
      if (req.url?.includes('forbidden')) {
        const body = '{"kind":"Status","code":403}';
        socket.end(
          `HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
        );
        return;
      }
      const echo = JSON.stringify(pairsOf(req.rawHeaders));
      socket.write(
        `HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: ${req.headers.upgrade}\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\nX-Seen-Headers: ${Buffer.from(echo).toString('base64')}\r\n\r\n`,
      );
      socket.on('data', (chunk: Buffer) =>
        socket.write(chunk.toString().toUpperCase()),
      );
    });
    await new Promise<void>(resolve =>
      upstream.listen(0, '127.0.0.1', resolve),
    );
    upstreamUrl = `https://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
    authPort = await startProxy();
    noauthPort = await startProxy({ mode: 'noauth' });
  });

  afterAll(async () => {
    for (const { proxy, server } of proxies) {
      server.close();
      await proxy.close();
    }
    upstream.closeAllConnections();
    await new Promise(resolve => upstream.close(resolve));
  });

  interface Reply {
    status: number;
    headers: http.IncomingHttpHeaders;
    body: string;
  }

  function call(
    port: number,
    from: string,
    path: string,
    init: {
      method?: string;
      headers?: Record<string, string | string[]>;
      body?: string;
      servername?: string;
    } = {},
  ): Promise<Reply> {
    return new Promise((resolve, reject) => {
      const req = https.request(
        {
          host: '127.0.0.1',
          port,
          localAddress: from,
          path,
          method: init.method ?? 'GET',
          headers: { Host: PROXY_NAME, ...init.headers },
          ca: tailnetCa.caPem,
          servername: init.servername ?? PROXY_NAME,
          agent: false,
        },
        res => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () =>
            resolve({
              status: res.statusCode ?? 0,
              headers: res.headers,
              body: Buffer.concat(chunks).toString(),
            }),
          );
        },
      );
      req.on('error', reject);
      req.end(init.body);
    });
  }

  const echoOf = (reply: Reply): Echo => {
    expect(reply.status).toBe(200);
    return JSON.parse(reply.body) as Echo;
  };

  const callerAuthHeaders = {
    Authorization: `Bearer ${CALLER_TOKEN}`,
    'Impersonate-User': 'system:admin',
    'Impersonate-Group': ['system:masters', 'cluster-admins'],
    'Impersonate-Uid': '1234',
    'Impersonate-Extra-Scopes': 'view',
    'impersonate-extra-reason': 'break-glass',
    'X-Forwarded-For': '203.0.113.7',
    Forwarded: 'for=203.0.113.7',
  };

  describe('auth mode', () => {
    it('impersonates a tagged node as its FQDN with the groups of its kubernetes cap rules, deduplicated', async () => {
      const echo = echoOf(
        await call(
          authPort,
          TAGGED_WITH_RULE,
          '/api/v1/namespaces/istio-system/services?limit=5',
          {
            headers: callerAuthHeaders,
          },
        ),
      );
      expect(echo.url).toBe('/api/v1/namespaces/istio-system/services?limit=5');
      expect(headerValues(echo, 'impersonate-user')).toEqual([
        `istio-cluster2.${TAILNET}`,
      ]);
      expect(headerValues(echo, 'impersonate-group')).toEqual([
        'group:istio-readers',
        'system:authenticated',
      ]);
      expect(headerValues(echo, 'authorization')).toEqual([
        `Bearer ${OPERATOR_TOKEN}`,
      ]);
      for (const stripped of [
        'impersonate-uid',
        'impersonate-extra-scopes',
        'impersonate-extra-reason',
        'x-forwarded-for',
        'forwarded',
      ]) {
        expect(headerValues(echo, stripped)).toEqual([]);
      }
      // Only the URL's scheme and host are rewritten: the Host header is the caller's.
      expect(headerValues(echo, 'host')).toEqual([PROXY_NAME]);
    });

    it('turns the tags of a tagged node without rules into groups', async () => {
      const echo = echoOf(
        await call(authPort, TAGGED_NO_RULE, '/version', {
          headers: callerAuthHeaders,
        }),
      );
      expect(headerValues(echo, 'impersonate-user')).toEqual([
        `mesh-cluster3.${TAILNET}`,
      ]);
      expect(headerValues(echo, 'impersonate-group')).toEqual([
        'tag:k8s',
        'tag:mesh',
      ]);
      expect(headerValues(echo, 'authorization')).toEqual([
        `Bearer ${OPERATOR_TOKEN}`,
      ]);
    });

    it('impersonates an untagged node as its user, with rule groups (keys matched case-insensitively as Go does)', async () => {
      const echo = echoOf(
        await call(authPort, USER, '/api', { headers: callerAuthHeaders }),
      );
      expect(headerValues(echo, 'impersonate-user')).toEqual([
        'alice@example.com',
      ]);
      expect(headerValues(echo, 'impersonate-group')).toEqual(['devs']);
      expect(headerValues(echo, 'impersonate-uid')).toEqual([]);
    });

    it('reads the legacy capability name only when the new one has no rules', async () => {
      const echo = echoOf(await call(authPort, LEGACY, '/api'));
      expect(headerValues(echo, 'impersonate-user')).toEqual([
        `old-cluster4.${TAILNET}`,
      ]);
      expect(headerValues(echo, 'impersonate-group')).toEqual(['legacy-group']);
    });

    it('serves a rule that asks for session recording as if no recorder were configured', async () => {
      const echo = echoOf(await call(authPort, RECORDED, '/api'));
      expect(headerValues(echo, 'impersonate-group')).toEqual(['recorded']);
      expect(logs.some(l => /does not model/.test(l))).toBe(true);
    });

    it('re-reads the operator token for every request', async () => {
      operatorToken = `${OPERATOR_TOKEN}-rotated`;
      try {
        const echo = echoOf(await call(authPort, TAGGED_NO_RULE, '/api'));
        expect(headerValues(echo, 'authorization')).toEqual([
          `Bearer ${OPERATOR_TOKEN}-rotated`,
        ]);
      } finally {
        operatorToken = OPERATOR_TOKEN;
      }
    });

    it('answers 502 when the token cannot be read, without calling upstream', async () => {
      const before = upstreamCalls;
      const port = await startProxy({
        upstream: {
          url: upstreamUrl,
          caPem: upstreamCaPem,
          token: () => {
            throw new Error('ENOENT');
          },
        },
      });
      const reply = await call(port, TAGGED_NO_RULE, '/api');
      expect(reply.status).toBe(502);
      expect(upstreamCalls).toBe(before);
    });
  });

  describe('noauth mode', () => {
    it("passes the caller's own credentials through and adds none of the operator's", async () => {
      const echo = echoOf(
        await call(noauthPort, TAGGED_WITH_RULE, '/api', {
          headers: callerAuthHeaders,
        }),
      );
      expect(headerValues(echo, 'authorization')).toEqual([
        `Bearer ${CALLER_TOKEN}`,
      ]);
      expect(headerValues(echo, 'impersonate-user')).toEqual(['system:admin']);
      expect(headerValues(echo, 'impersonate-group')).toEqual([
        'system:masters',
        'cluster-admins',
      ]);
      // Forwarding headers are still the ReverseProxy's to drop.
      expect(headerValues(echo, 'x-forwarded-for')).toEqual([]);
    });

    it('sends no Authorization at all when the caller sends none', async () => {
      const echo = echoOf(await call(noauthPort, USER, '/api'));
      expect(headerValues(echo, 'authorization')).toEqual([]);
      expect(headerValues(echo, 'impersonate-user')).toEqual([]);
    });

    it('still requires a known tailnet peer', async () => {
      expect((await call(noauthPort, UNKNOWN, '/api')).status).toBe(500);
    });
  });

  describe('callers the proxy cannot serve', () => {
    it('answers 500 "failed to authenticate caller" to a peer WhoIs does not know, without calling upstream', async () => {
      const before = upstreamCalls;
      const reply = await call(authPort, UNKNOWN, '/api', {
        headers: callerAuthHeaders,
      });
      expect(reply.status).toBe(500);
      expect(reply.body).toBe('failed to authenticate caller\n');
      expect(reply.headers['content-type']).toBe('text/plain; charset=utf-8');
      expect(upstreamCalls).toBe(before);
    });

    it('answers an empty 200 when the kubernetes capability does not decode, as the real proxy does', async () => {
      const before = upstreamCalls;
      const reply = await call(authPort, MALFORMED, '/api');
      expect(reply).toMatchObject({ status: 200, body: '' });
      expect(upstreamCalls).toBe(before);
    });

    it('answers a bare 502 when the apiserver cannot be reached', async () => {
      const closed = net.createServer();
      await new Promise<void>(resolve =>
        closed.listen(0, '127.0.0.1', resolve),
      );
      const deadPort = (closed.address() as AddressInfo).port;
      await new Promise(resolve => closed.close(resolve));
      const port = await startProxy({
        upstream: {
          url: `https://127.0.0.1:${deadPort}`,
          caPem: upstreamCaPem,
          token: () => operatorToken,
        },
      });
      const reply = await call(port, TAGGED_NO_RULE, '/api');
      expect(reply).toMatchObject({ status: 502, body: '' });
    });

    it('answers 502 when the apiserver certificate is not signed by the cluster CA', async () => {
      const port = await startProxy({
        upstream: {
          url: upstreamUrl,
          caPem: tailnetCa.caPem,
          token: () => operatorToken,
        },
      });
      expect((await call(port, TAGGED_NO_RULE, '/api')).status).toBe(502);
    });
  });

  describe('TLS', () => {
    function handshake(
      servername: string | undefined,
      alpn?: string[],
    ): Promise<string> {
      return new Promise(resolve => {
        const socket = tls.connect({
          socket: net.connect({
            host: '127.0.0.1',
            port: authPort,
            localAddress: TAGGED_NO_RULE,
          }),
          ca: tailnetCa.caPem,
          ...(servername === undefined
            ? { checkServerIdentity: () => undefined }
            : { servername }),
          ...(alpn ? { ALPNProtocols: alpn } : {}),
        });
        socket.once('secureConnect', () => {
          const negotiated = socket.alpnProtocol;
          socket.destroy();
          resolve(`ok ${negotiated === false ? 'none' : String(negotiated)}`);
        });
        socket.once('error', (err: NodeJS.ErrnoException) =>
          resolve(err.code ?? err.message),
        );
      });
    }

    it('serves the tailnet certificate for its name and offers only http/1.1', async () => {
      expect(await handshake(PROXY_NAME, ['h2', 'http/1.1'])).toBe(
        'ok http/1.1',
      );
    });

    it('fails the handshake when getCertificate throws, and serves again once it stops', async () => {
      httpsEnabled = false;
      try {
        await expect(call(authPort, TAGGED_NO_RULE, '/api')).rejects.toThrow();
        expect(logs.some(l => /TLS handshake error/.test(l))).toBe(true);
      } finally {
        httpsEnabled = true;
      }
      expect((await call(authPort, TAGGED_NO_RULE, '/api')).status).toBe(200);
    });

    it('fails the handshake for another name or for no SNI at all', async () => {
      expect(await handshake(`other.${TAILNET}`)).not.toMatch(/^ok/);
      expect(await handshake(undefined)).not.toMatch(/^ok/);
    });
  });

  describe('streaming', () => {
    it('delivers a watch response chunk by chunk, before the apiserver ends it', async () => {
      const received: string[] = [];
      let firstChunk: () => void = () => undefined;
      const gotFirst = new Promise<void>(resolve => {
        firstChunk = resolve;
      });
      const done = new Promise<number>((resolve, reject) => {
        const req = https.request(
          {
            host: '127.0.0.1',
            port: authPort,
            localAddress: TAGGED_WITH_RULE,
            path: '/watch?watch=true',
            ca: tailnetCa.caPem,
            servername: PROXY_NAME,
            agent: false,
          },
          res => {
            expect(res.headers['transfer-encoding']).toBe('chunked');
            res.on('data', (chunk: Buffer) => {
              received.push(chunk.toString());
              firstChunk();
            });
            res.on('end', () => resolve(res.statusCode ?? 0));
          },
        );
        req.on('error', reject);
        req.end();
      });
      await gotFirst;
      expect(received.join('')).toBe(
        '{"type":"ADDED","object":{"kind":"Service"}}\n',
      );
      releaseWatch();
      expect(await done).toBe(200);
      expect(received.join('')).toBe(
        '{"type":"ADDED","object":{"kind":"Service"}}\n{"type":"MODIFIED","object":{"kind":"Service"}}\n',
      );
    });

    it('streams a request body to the apiserver before the caller has finished sending it', async () => {
      const firstAtUpstream = new Promise<string>(resolve => {
        uploadFirstChunk = resolve;
      });
      const reply = new Promise<Reply>((resolve, reject) => {
        const req = https.request(
          {
            host: '127.0.0.1',
            port: authPort,
            localAddress: TAGGED_NO_RULE,
            method: 'POST',
            path: '/api/v1/namespaces/default/configmaps',
            headers: { 'Content-Type': 'application/json' },
            ca: tailnetCa.caPem,
            servername: PROXY_NAME,
            agent: false,
          },
          res => {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('end', () =>
              resolve({
                status: res.statusCode ?? 0,
                headers: res.headers,
                body: Buffer.concat(chunks).toString(),
              }),
            );
          },
        );
        req.on('error', reject);
        req.write('{"kind":');
        void firstAtUpstream.then(() => req.end('"ConfigMap"}'));
      });
      expect(await firstAtUpstream).toBe('{"kind":');
      const echo = echoOf(await reply);
      expect(echo.method).toBe('POST');
      expect(echo.body).toBe('{"kind":"ConfigMap"}');
      expect(headerValues(echo, 'transfer-encoding')).toEqual(['chunked']);
    });

    it('drops hop-by-hop response headers and keeps the rest', async () => {
      const reply = await call(authPort, TAGGED_NO_RULE, '/api');
      expect(reply.headers['x-upstream']).toBe('yes');
      expect(reply.headers['keep-alive']).toBeUndefined();
    });
  });

  describe('upgrades', () => {
    function upgrade(path: string): Promise<
      | {
          kind: 'upgraded';
          headers: http.IncomingHttpHeaders;
          socket: net.Socket;
          head: Buffer;
        }
      | { kind: 'response'; status: number; body: string }
    > {
      return new Promise((resolve, reject) => {
        const req = https.request({
          host: '127.0.0.1',
          port: authPort,
          localAddress: TAGGED_WITH_RULE,
          method: 'POST',
          path,
          headers: {
            Host: PROXY_NAME,
            Connection: 'Upgrade',
            Upgrade: 'SPDY/3.1',
            'X-Stream-Protocol-Version': 'v4.channel.k8s.io',
            ...callerAuthHeaders,
          },
          ca: tailnetCa.caPem,
          servername: PROXY_NAME,
          agent: false,
        });
        req.on('upgrade', (res, socket, head) =>
          resolve({ kind: 'upgraded', headers: res.headers, socket, head }),
        );
        req.on('response', res => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () =>
            resolve({
              kind: 'response',
              status: res.statusCode ?? 0,
              body: Buffer.concat(chunks).toString(),
            }),
          );
        });
        req.on('error', reject);
        req.end();
      });
    }

    it('pipes an exec session raw in both directions once the apiserver switches protocols', async () => {
      const result = await upgrade(
        '/api/v1/namespaces/default/pods/web-0/exec?command=sh&stdin=true',
      );
      if (result.kind !== 'upgraded')
        throw new Error(`not upgraded: ${result.status}`);
      expect(result.headers.upgrade).toBe('SPDY/3.1');
      expect(result.headers['x-stream-protocol-version']).toBe(
        'v4.channel.k8s.io',
      );
      const seen = new Map<string, string[]>();
      for (const [n, v] of JSON.parse(
        Buffer.from(
          String(result.headers['x-seen-headers']),
          'base64',
        ).toString(),
      ) as Array<[string, string]>) {
        seen.set(n.toLowerCase(), [...(seen.get(n.toLowerCase()) ?? []), v]);
      }
      expect(seen.get('authorization')).toEqual([`Bearer ${OPERATOR_TOKEN}`]);
      expect(seen.get('impersonate-user')).toEqual([
        `istio-cluster2.${TAILNET}`,
      ]);
      expect(seen.get('impersonate-group')).toEqual([
        'group:istio-readers',
        'system:authenticated',
      ]);
      expect(seen.get('upgrade')).toEqual(['SPDY/3.1']);
      expect(seen.get('impersonate-uid')).toBeUndefined();

      result.socket.write('hello from kubectl');
      const [echoed] = (await once(result.socket, 'data')) as [Buffer];
      expect(echoed.toString()).toBe('HELLO FROM KUBECTL');
      result.socket.destroy();
    });

    it('relays a refused upgrade as an ordinary response', async () => {
      const result = await upgrade(
        '/api/v1/namespaces/default/pods/forbidden/exec',
      );
      expect(result).toEqual({
        kind: 'response',
        status: 403,
        body: '{"kind":"Status","code":403}',
      });
    });
  });

  describe('helpers', () => {
    it('reads the mode from the environment as cmd/k8s-operator does', () => {
      expect(apiServerProxyModeFromEnv({ APISERVER_PROXY: 'true' })).toBe(
        'auth',
      );
      expect(apiServerProxyModeFromEnv({ APISERVER_PROXY: 'noauth' })).toBe(
        'noauth',
      );
      expect(
        apiServerProxyModeFromEnv({ APISERVER_PROXY: 'false' }),
      ).toBeUndefined();
      expect(apiServerProxyModeFromEnv({})).toBeUndefined();
      expect(apiServerProxyModeFromEnv({ AUTH_PROXY: 'true' })).toBe('auth');
      expect(() =>
        apiServerProxyModeFromEnv({ APISERVER_PROXY: 'yes' }),
      ).toThrow(/unknown/);
      expect(() =>
        apiServerProxyModeFromEnv({
          APISERVER_PROXY: 'true',
          AUTH_PROXY: 'true',
        }),
      ).toThrow(/mutually exclusive/);
    });

    it('decodes capability values with Go json semantics', () => {
      const cap = 'tailscale.com/cap/kubernetes';
      expect(kubernetesCapRules({}, cap)).toEqual([]);
      expect(kubernetesCapRules({ [cap]: [null] }, cap)).toEqual([
        {
          recorders: [],
          recorderAddrs: [],
          enforceRecorder: false,
          enableEvents: false,
        },
      ]);
      expect(
        kubernetesCapRules(
          { [cap]: [{ impersonate: { groups: ['a', null] }, unknown: 1 }] },
          cap,
        )[0].impersonate,
      ).toEqual({ groups: ['a', ''] });
      for (const bad of [
        'x',
        [1],
        { impersonate: 'x' },
        { impersonate: { groups: 'a' } },
        { impersonate: { groups: [1] } },
        { enforceRecorder: 'yes' },
        { recorderAddrs: ['not-an-addr'] },
      ]) {
        expect(() => kubernetesCapRules({ [cap]: [bad] }, cap)).toThrow();
      }
      expect(
        kubernetesCapRules(
          {
            [cap]: [
              { recorderAddrs: ['100.64.0.1:80', '[fd7a:115c:a1e0::1]:443'] },
            ],
          },
          cap,
        )[0].recorderAddrs,
      ).toHaveLength(2);
    });
  });

  it('never logs a token', () => {
    expect(logs.length).toBeGreaterThan(0);
    for (const line of logs) {
      expect(line).not.toContain(OPERATOR_TOKEN);
      expect(line).not.toContain(CALLER_TOKEN);
      expect(line).not.toMatch(/Bearer/i);
    }
  });
});
