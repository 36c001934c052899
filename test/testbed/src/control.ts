/**
 * What the test bed's control socket answers. Tests run outside the test bed's network namespace
 * (they reach the apiservers through bridged ports), so anything that must be seen from inside,
 * as from a pod of a cluster, is asked here: what `kubectl exec` into a pod would show on a real
 * cluster.
 *
 * - `stop-apiserver` / `start-apiserver` {cluster}: an outage drill.
 * - `istiod-get` {cluster, path, port?}: an HTTP GET to the cluster's running istiod from the
 *   pod's own localhost (`kubectl exec istiod -- curl localhost:15014/debug/clusterz`): istiod
 *   lets loopback callers read its debug endpoints without a token (pilot/pkg/xds/debug.go
 *   allowAuthenticatedOrLocalhost).
 * - `xds-probe` {cluster, args}: istio's own ADS client (test/testbed/go-istio/cmd/xds-probe)
 *   against the cluster's istiod on 15010, as a proxy in that cluster would connect.
 * - `resolve` {cluster, name, type?}: one DNS query to the cluster's DNS (its kube-dns ClusterIP),
 *   as a pod's resolver sends it (no search-path expansion: give a fully qualified name).
 * - `connect` {host, port, from?, timeoutMs?}: whether a TCP connection from `from` (a pod IP on
 *   the namespace's loopback) to host:port is answered: `open` (the peer answered, or closed it
 *   after we connected), `refused`, or `timeout` (dropped: no answer).
 * - `https-get` {host, port, servername, path, from?}: an HTTPS GET from `from` (a pod IP) that
 *   trusts what pods trust (the tailnet's certificate authority, standing in for the public web
 *   PKI), e.g. through a cluster's egress proxy to a peer's API server proxy, as istiod's client
 *   would; the answer's status and body, or the connection error.
 * - `mesh-request` {cluster, namespace, pod, host, port, count, path?}: requests from an injected
 *   pod's sidecar, as its Envoy would send them (test/testbed/go-istio/cmd/mesh-dataplane client,
 *   with the identity of the pod's running proxy: kubelet/proxyRunner.ts): the endpoints istiod
 *   gave and, per request, where it went and who answered.
 * - `istiods`, `proxies`, `tailnet-devices`: what runs.
 */
import { execFile } from 'node:child_process';
import { Resolver } from 'node:dns/promises';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import type { ClusterControlPlane } from './controlPlane';
import type { IstiodProcessState } from './kubelet/istiodRunner';
import type { PodProcessState } from './kubelet/podProcesses';
import { binDir } from './layout';
import type { TailnetDeviceInfo } from './tailnet/tailnet';

const run = promisify(execFile);

export interface ControlContext {
  clusters: ClusterControlPlane[];
  istiods(): IstiodProcessState[];
  proxies(): PodProcessState[];
  /** The identity flags of a pod's running proxy (proxyRunner.ts clientFlags). */
  proxyClientFlags(cluster: string, namespace: string, pod: string): Promise<string[]>;
  tailnet(): TailnetDeviceInfo[];
  refreshTailnet(): void;
  /** The CA bundle pods trust (SSL_CERT_FILE of the pods the test bed runs). */
  trustedCaPem(): string;
}

export type ControlRequest =
  | { command: 'stop-apiserver' | 'start-apiserver' | 'park-cluster'; cluster: string }
  /** Unparks exactly these clusters and parks every other one (see ClusterControlPlane.park). */
  | { command: 'use-clusters'; clusters: string[] }
  | { command: 'istiod-get'; cluster: string; path: string; port?: number }
  | { command: 'xds-probe'; cluster: string; args: string[] }
  | { command: 'resolve'; cluster: string; name: string; type?: 'A' | 'AAAA' }
  | { command: 'connect'; host: string; port: number; from?: string; timeoutMs?: number }
  | {
      command: 'https-get';
      host: string;
      port: number;
      servername: string;
      path: string;
      from?: string;
      timeoutMs?: number;
    }
  | {
      command: 'mesh-request';
      cluster: string;
      namespace: string;
      pod: string;
      host: string;
      port: number;
      count: number;
      path?: string;
      /** The client's time limit per request (default 5 s). */
      timeoutMs?: number;
    }
  | { command: 'istiods' }
  | { command: 'proxies' }
  | { command: 'tailnet-devices' };

export async function handleControl(req: ControlRequest, ctx: ControlContext): Promise<unknown> {
  const clusterOf = (name: string) => {
    const found = ctx.clusters.find(c => c.name === name);
    if (!found) throw new Error(`no cluster ${name}`);
    return found;
  };
  const istiodOf = (cluster: string) => {
    const found = ctx.istiods().find(i => i.cluster === cluster && i.pid !== undefined);
    if (!found) throw new Error(`no istiod runs for ${cluster}`);
    return found;
  };
  switch (req.command) {
    case 'stop-apiserver':
      await clusterOf(req.cluster).apiserver.stop();
      return undefined;
    case 'start-apiserver':
      await clusterOf(req.cluster).startApiserver();
      return undefined;
    case 'park-cluster':
      await clusterOf(req.cluster).park();
      return undefined;
    case 'use-clusters': {
      if (!Array.isArray(req.clusters)) throw new Error('clusters must be a list of cluster names');
      const used = req.clusters.map(clusterOf);
      await Promise.all(ctx.clusters.filter(c => !used.includes(c)).map(c => c.park()));
      await Promise.all(used.map(c => c.unpark()));
      return undefined;
    }
    case 'istiods':
      return ctx.istiods();
    case 'proxies':
      return ctx.proxies();
    case 'tailnet-devices':
      ctx.refreshTailnet();
      return ctx.tailnet();
    case 'istiod-get': {
      const istiod = istiodOf(req.cluster);
      checkPath(req.path);
      return httpGet(istiod.podIP, req.port ?? 15014, req.path, '127.0.0.1');
    }
    case 'xds-probe': {
      const istiod = istiodOf(req.cluster);
      return runTool('xds-probe', ['--xds', `${istiod.podIP}:15010`, ...req.args]);
    }
    case 'mesh-request': {
      const name = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;
      if (![req.namespace, req.pod, req.host].every(v => name.test(v))) throw new Error('bad namespace, pod or host');
      if (!Number.isInteger(req.port) || !Number.isInteger(req.count) || req.count < 1 || req.count > 200) {
        throw new Error('bad port or count');
      }
      if (req.path !== undefined) checkPath(req.path);
      if (req.timeoutMs !== undefined && (!Number.isInteger(req.timeoutMs) || req.timeoutMs < 50 || req.timeoutMs > 60_000)) {
        throw new Error('bad timeoutMs: a whole number of milliseconds from 50 to 60000');
      }
      const flags = await ctx.proxyClientFlags(req.cluster, req.namespace, req.pod);
      return runTool('mesh-dataplane', [
        'client',
        ...flags,
        `--host=${req.host}`,
        `--port=${req.port}`,
        `--count=${req.count}`,
        ...(req.path ? [`--path=${req.path}`] : []),
        ...(req.timeoutMs ? [`--timeout=${req.timeoutMs}ms`] : []),
      ]);
    }
    case 'resolve': {
      const resolver = new Resolver({ timeout: 3000, tries: 1 });
      resolver.setServers([clusterOf(req.cluster).shape.dnsIp]);
      try {
        const addresses =
          req.type === 'AAAA' ? await resolver.resolve6(req.name) : await resolver.resolve4(req.name);
        return { addresses };
      } catch (err) {
        return { error: (err as { code?: string }).code ?? String(err) };
      }
    }
    case 'connect':
      return probeConnect(req.host, req.port, req.from, req.timeoutMs ?? 3000);
    case 'https-get':
      return httpsGet(req, ctx.trustedCaPem());
    default:
      throw new Error(`unknown command ${(req as { command?: string }).command}`);
  }
}

function httpGet(host: string, port: number, urlPath: string, localAddress: string) {
  return new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = http.get({ host, port, path: urlPath, localAddress, timeout: 10_000 }, res => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${urlPath} timed out`)));
    req.on('error', reject);
  });
}

function httpsGet(
  req: { host: string; port: number; servername: string; path: string; from?: string; timeoutMs?: number },
  ca: string,
) {
  return new Promise<{ status?: number; body?: string; error?: string }>(resolve => {
    const r = https.get(
      {
        host: req.host,
        port: req.port,
        servername: req.servername,
        path: req.path,
        localAddress: req.from,
        ca,
        // A fresh connection and handshake each time, as a new client would make.
        agent: false,
        timeout: req.timeoutMs ?? 5000,
        headers: { accept: 'application/json' },
      },
      res => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode, body }));
      },
    );
    r.on('timeout', () => r.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })));
    r.on('error', (err: NodeJS.ErrnoException) => resolve({ error: err.code ?? err.message }));
  });
}

type ConnectResult = 'open' | 'refused' | 'reset' | 'timeout' | 'error';

/**
 * open: connected and the far end answered or hung up; reset: a forwarder on the way reset the
 * connection (its next hop refused); refused: nothing listens; timeout: nothing came back at all,
 * which is what the tailnet's filter does to a connection it drops.
 */
function probeConnect(host: string, port: number, from: string | undefined, timeoutMs: number) {
  return new Promise<{ result: ConnectResult; detail?: string }>(resolve => {
    const socket = net.connect({ host, port, localAddress: from });
    let connected = false;
    const done = (result: ConnectResult, detail?: string) => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ result, detail });
    };
    const timer = setTimeout(() => done('timeout'), timeoutMs);
    socket.on('connect', () => {
      connected = true;
      // A plain connect on loopback always succeeds while something listens; the tailnet's
      // filter drops by never answering, so ask for a byte of reaction: a TLS server or an
      // HTTP server answers a bogus request, a forwarder resets when its peer refuses.
      socket.write('HEAD / HTTP/1.0\r\n\r\n');
    });
    socket.on('data', () => done('open'));
    socket.on('end', () => done('open'));
    socket.on('error', (err: NodeJS.ErrnoException) =>
      done(
        err.code === 'ECONNREFUSED' ? 'refused' : err.code === 'ECONNRESET' && connected ? 'reset' : 'error',
        err.code ?? err.message,
      ),
    );
  });
}

/** Runs one of the test bed's Go tools; its exit code, stdout and stderr, whatever the outcome. */
async function runTool(tool: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(path.join(binDir, tool), args, {
      timeout: 120_000,
      maxBuffer: 32 * 1024 * 1024,
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : 1, stdout: e.stdout ?? '', stderr: e.stderr ?? String(err) };
  }
}

/** An absolute URL path of plain characters: nothing a caller could smuggle a second request in. */
function checkPath(p: string) {
  if (!/^\/[A-Za-z0-9/_.?=&%-]*$/.test(p)) throw new Error(`bad path ${p}`);
}
