/**
 * The controller's mechanics against a small in-process fake apiserver (HTTP on loopback): list +
 * watch, 410 Gone, an apiserver that goes away and comes back, no write loops, prompt stop().
 * The decisions themselves are covered in operatorReconcile.test.ts; the real test bed checks the
 * rest against real kube-apiservers.
 */
import * as http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Cluster } from '@kubernetes/client-node';
import { startOperatorStandIn, type KubeConfigLike, type OperatorStandIn } from './operator';
import type { ServiceObject } from './operatorReconcile';

type Json = Record<string, unknown>;

function mergePatch(target: unknown, patch: unknown): unknown {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) return patch;
  const out: Json =
    target && typeof target === 'object' && !Array.isArray(target) ? { ...(target as Json) } : {};
  for (const [k, v] of Object.entries(patch as Json)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

/** Services only (DNSConfigs answer 404 like an apiserver without the CRD). */
class FakeApiserver {
  readonly services = new Map<string, ServiceObject>();
  private rv = 100;
  private history: Array<{ rv: number; type: string; object: ServiceObject }> = [];
  private compactedBelow = 0;
  private server: http.Server | undefined;
  private readonly sockets = new Set<Socket>();
  private readonly watchers = new Set<{ res: http.ServerResponse; from: number }>();
  port = 0;
  writes: string[] = [];
  gone410 = 0;
  lists = 0;

  async start() {
    this.server = http.createServer((req, res) => this.handle(req, res));
    this.server.on('connection', s => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    await new Promise<void>(r => this.server!.listen(this.port, '127.0.0.1', () => r()));
    this.port = (this.server.address() as AddressInfo).port;
  }

  /** Like a killed apiserver: listener gone, every connection reset. */
  async stop() {
    const s = this.server;
    this.server = undefined;
    this.watchers.clear();
    for (const sock of this.sockets) sock.destroy();
    if (s) await new Promise<void>(r => s.close(() => r()));
  }

  /** Ends open watches and forgets history, so a re-watch from an old resourceVersion gets 410. */
  compactAndDropWatches() {
    this.compactedBelow = this.rv + 1;
    this.history = [];
    for (const w of this.watchers) w.res.end();
    this.watchers.clear();
  }

  put(svc: ServiceObject, silently = false) {
    const key = `${svc.metadata.namespace}/${svc.metadata.name}`;
    const type = this.services.has(key) ? 'MODIFIED' : 'ADDED';
    const stored = this.store(key, svc);
    if (!silently) this.emit(type, stored);
  }

  get(ns: string, name: string) {
    return this.services.get(`${ns}/${name}`);
  }

  private store(key: string, svc: ServiceObject): ServiceObject {
    this.rv++;
    const stored = JSON.parse(JSON.stringify(svc)) as ServiceObject;
    stored.metadata.resourceVersion = String(this.rv);
    stored.metadata.uid ??= `uid-${key}`;
    this.services.set(key, stored);
    return stored;
  }

  private emit(type: string, object: ServiceObject) {
    const ev = { rv: this.rv, type, object };
    this.history.push(ev);
    for (const w of this.watchers) w.res.write(`${JSON.stringify({ type, object })}\n`);
  }

  private send(res: http.ServerResponse, code: number, body: unknown) {
    res.writeHead(code, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  }

  private status(res: http.ServerResponse, code: number, reason: string, message: string) {
    this.send(res, code, { kind: 'Status', apiVersion: 'v1', status: 'Failure', code, reason, message });
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse) {
    const url = new URL(req.url ?? '/', 'http://x');
    let body = '';
    req.on('data', c => (body += c));
    req.on('end', () => {
      if (req.headers.authorization !== 'Bearer test-token') return this.status(res, 401, 'Unauthorized', 'no');
      if (url.pathname === '/api/v1/services' && req.method === 'GET') {
        if (url.searchParams.get('watch')) return this.watch(url, res);
        this.lists++;
        return this.send(res, 200, {
          kind: 'ServiceList',
          metadata: { resourceVersion: String(this.rv) },
          items: [...this.services.values()],
        });
      }
      if (url.pathname.startsWith('/apis/tailscale.com/')) return this.status(res, 404, 'NotFound', 'not found');
      const m = /^\/api\/v1\/namespaces\/([^/]+)\/(services|events)(?:\/([^/]+))?(?:\/(status))?$/.exec(url.pathname);
      if (!m) return this.status(res, 404, 'NotFound', url.pathname);
      const [, ns, kind, name, sub] = m;
      if (kind === 'events') return this.send(res, 201, JSON.parse(body));
      const key = `${ns}/${name}`;
      if (req.method === 'PATCH') {
        const cur = this.services.get(key);
        if (!cur) return this.status(res, 404, 'NotFound', key);
        const patch = JSON.parse(body) as Json & { metadata?: { resourceVersion?: string } };
        if (patch.metadata?.resourceVersion && patch.metadata.resourceVersion !== cur.metadata.resourceVersion) {
          return this.status(res, 409, 'Conflict', 'the object has been modified');
        }
        this.writes.push(`${sub ?? 'main'} ${key}`);
        // The status subresource takes only status; the main resource ignores it.
        const effective: Json = sub === 'status' ? { status: patch.status } : { ...patch, status: undefined };
        if (sub !== 'status') delete effective.status;
        const next = mergePatch(cur, effective) as ServiceObject;
        const stored = this.store(key, next);
        this.emit('MODIFIED', stored);
        return this.send(res, 200, stored);
      }
      return this.status(res, 405, 'MethodNotAllowed', `${req.method} ${url.pathname}`);
    });
  }

  private watch(url: URL, res: http.ServerResponse) {
    const from = Number(url.searchParams.get('resourceVersion') ?? '0');
    res.writeHead(200, { 'content-type': 'application/json' });
    if (from < this.compactedBelow) {
      this.gone410++;
      res.end(
        `${JSON.stringify({
          type: 'ERROR',
          object: { kind: 'Status', code: 410, reason: 'Expired', message: 'too old resource version' },
        })}\n`,
      );
      return;
    }
    // Replay what happened since `from`, the first line split across two writes.
    for (const ev of this.history.filter(e => e.rv > from)) {
      const line = `${JSON.stringify({ type: ev.type, object: ev.object })}\n`;
      res.write(line.slice(0, 7));
      res.write(line.slice(7));
    }
    const w = { res, from };
    this.watchers.add(w);
    res.on('close', () => this.watchers.delete(w));
  }
}

function fakeKubeConfig(getPort: () => number): KubeConfigLike {
  return {
    getCurrentCluster: (): Cluster => ({ name: 'fake', server: `http://127.0.0.1:${getPort()}`, skipTLSVerify: true }),
    applyToHTTPSOptions: async opts => {
      opts.headers = { ...(opts.headers as Record<string, string> | undefined), Authorization: 'Bearer test-token' };
      (opts as { agent?: http.Agent }).agent = new http.Agent({ keepAlive: false });
    },
  };
}

function lb(name: string, hostname?: string): ServiceObject {
  return {
    metadata: {
      name,
      namespace: 'istio-system',
      annotations: hostname ? { 'tailscale.com/hostname': hostname } : {},
    },
    spec: { type: 'LoadBalancer', loadBalancerClass: 'tailscale', clusterIP: '10.96.0.10' },
    status: { loadBalancer: {} },
  };
}

async function waitFor<T>(what: string, fn: () => T | undefined | false, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise(r => setTimeout(r, 20));
  }
}

const ingressOf = (svc: ServiceObject | undefined) => svc?.status?.loadBalancer?.ingress;

describe('startOperatorStandIn against a fake apiserver', () => {
  let servers: FakeApiserver[] = [];
  let op: OperatorStandIn | undefined;
  const logs: string[] = [];

  async function fake() {
    const s = new FakeApiserver();
    await s.start();
    servers.push(s);
    return s;
  }

  async function start(clusters: Array<{ name: string; server: FakeApiserver | { port: number } }>, resyncSeconds = 1) {
    op = await startOperatorStandIn({
      clusters: clusters.map(c => ({ name: c.name, kubeConfig: fakeKubeConfig(() => c.server.port) })),
      tailnet: 'tailmesh-test.ts.net',
      resyncSeconds,
      log: m => logs.push(m),
    });
    return op;
  }

  afterEach(async () => {
    await op?.stop();
    op = undefined;
    for (const s of servers) await s.stop();
    servers = [];
    logs.length = 0;
  });

  it('writes the load-balancer status once and then leaves a converged Service alone', async () => {
    const api = await fake();
    api.put(lb('eastwest', 'c1-eastwest'));
    await start([{ name: 'c1', server: api }]);
    const ingress = await waitFor('ingress', () => ingressOf(api.get('istio-system', 'eastwest')));
    expect(ingress[0]).toEqual({ hostname: 'c1-eastwest.tailmesh-test.ts.net' });
    expect(ingress[1].ip).toMatch(/^100\./);
    expect(api.get('istio-system', 'eastwest')?.metadata.finalizers).toEqual(['tailscale.com/finalizer']);
    const writes = [...api.writes];
    expect(writes).toEqual(['main istio-system/eastwest', 'status istio-system/eastwest']);
    await new Promise(r => setTimeout(r, 2500)); // two resyncs
    expect(api.writes).toEqual(writes);
    expect(op!.devices()).toEqual([expect.objectContaining({ key: 'c1/istio-system/eastwest', ipv4: ingress[1].ip })]);
  });

  it('lists again after 410 Gone and picks up what it missed', async () => {
    const api = await fake();
    await start([{ name: 'c1', server: api }]);
    await waitFor('first list', () => api.lists >= 1);
    await new Promise(r => setTimeout(r, 100)); // watch established
    api.put(lb('missed'), true); // no watch event: only a new list can show it
    api.compactAndDropWatches();
    await waitFor('ingress of missed', () => ingressOf(api.get('istio-system', 'missed')));
    expect(api.gone410).toBeGreaterThanOrEqual(1);
    expect(api.lists).toBeGreaterThanOrEqual(2);
  });

  it('reconnects when the apiserver goes away and comes back', async () => {
    const api = await fake();
    await start([{ name: 'c1', server: api }]);
    await waitFor('first list', () => api.lists >= 1);
    await api.stop();
    await new Promise(r => setTimeout(r, 600));
    api.put(lb('while-down'), true);
    await api.start(); // same port
    await waitFor('ingress after restart', () => ingressOf(api.get('istio-system', 'while-down')), 15_000);
    expect(logs.some(l => /c1: services: .*retrying with back-off/.test(l))).toBe(true);
    expect(logs.some(l => /c1: services: list\+watch re-established/.test(l))).toBe(true);
  });

  it('keeps serving the other clusters while one is unreachable, with unique addresses', async () => {
    const a = await fake();
    const b = await fake();
    a.put(lb('gw'));
    b.put(lb('gw'));
    const closed = await fake();
    const deadPort = closed.port;
    await closed.stop();
    await start([
      { name: 'c1', server: a },
      { name: 'dead', server: { port: deadPort } },
      { name: 'c2', server: b },
    ]);
    const ia = await waitFor('c1 ingress', () => ingressOf(a.get('istio-system', 'gw')));
    const ib = await waitFor('c2 ingress', () => ingressOf(b.get('istio-system', 'gw')));
    expect(ia[0].hostname).toBe('istio-system-gw.tailmesh-test.ts.net');
    expect(ib[0].hostname).toBe('istio-system-gw-1.tailmesh-test.ts.net');
    expect(ia[1].ip).not.toBe(ib[1].ip);
    expect(logs.some(l => l.startsWith('dead: services: ') && l.includes('ECONNREFUSED'))).toBe(true);
  });

  it('stops promptly and leaves no sockets or timers behind', async () => {
    const baseline = process.getActiveResourcesInfo();
    const count = (list: string[], kind: string) => list.filter(x => x === kind).length;
    const api = await fake();
    api.put(lb('x'));
    const started = await start([
      { name: 'c1', server: api },
      { name: 'dead', server: { port: 1 } },
    ]);
    await waitFor('ingress', () => ingressOf(api.get('istio-system', 'x')));
    const t = Date.now();
    await started.stop();
    await started.stop(); // idempotent
    expect(Date.now() - t).toBeLessThan(1500);
    op = undefined;
    await api.stop();
    servers = [];
    const after = process.getActiveResourcesInfo();
    expect(count(after, 'TCPSocketWrap')).toBeLessThanOrEqual(count(baseline, 'TCPSocketWrap'));
    expect(count(after, 'Timeout')).toBeLessThanOrEqual(count(baseline, 'Timeout'));
  });
});
