/**
 * The test bed's supervisor. It runs inside a fresh network namespace that has only loopback, so
 * nothing it starts can send a packet anywhere else (the apiservers dial webhook ClusterIPs, which
 * fail at once there). It starts etcd, each cluster's control plane and kwok, the Tailscale
 * stand-ins, and serves the listening sockets its parent opened in the outer namespace (inherited
 * as file descriptors) by forwarding them to the same ports inside.
 */
import crypto from 'node:crypto';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { ClusterControlPlane } from './controlPlane';
import { binDir, controlSocket, ports, testbedTailnet } from './layout';
import { ManagedProcess, waitFor } from './process';
import { TestbedState, writeState } from './state';
import { startTailscaleApi } from './standins/tailscaleApi';
import { startOperatorStandIn } from './standins/operator';
import { IstiodRunner, startIstiodRunner } from './kubelet/istiodRunner';
import { CheckJobRunner, startCheckJobRunner } from './kubelet/checkJobRunner';
import { ProxyRunner, startProxyRunner } from './kubelet/proxyRunner';
import { LoopbackAddresses } from './network/loopbackAddresses';
import { ClusterCache } from './kube/clusterCache';
import { startOperatorProxies } from './standins/operatorProxies';
import { TailnetDeviceRegistry } from './standins/operatorReconcile';
import { startClusterDns } from './dns/clusterDns';
import { createTailnetCertificateAuthority } from './tailnet/httpsCertificates';
import { startTailnet, type Tailnet } from './tailnet/tailnet';
import { startKubeProxy } from './network/kubeProxy';
import { handleControl } from './control';

const { values } = parseArgs({
  options: {
    'state-dir': { type: 'string' },
    clusters: { type: 'string' },
    'base-port': { type: 'string' },
    bridge: { type: 'string', multiple: true, default: [] },
  },
});
const stateDir = values['state-dir']!;
const clusterCount = Number(values.clusters);
const basePort = Number(values['base-port']);
const p = ports(basePort);
const startedAt = Date.now();
const trustBundlePath = path.join(stateDir, 'tailnet-https-ca.pem');

const log = (msg: string) =>
  process.stdout.write(`${new Date().toISOString()} ${msg}\n`);

const state: TestbedState = {
  phase: 'starting',
  stateDir,
  basePort,
  supervisorPid: process.pid,
  startedAt: new Date(startedAt).toISOString(),
  tailnet: testbedTailnet,
  clusters: [],
  pids: {},
};

const etcd = new ManagedProcess(
  'etcd',
  path.join(binDir, 'etcd'),
  [
    '--name=testbed',
    `--data-dir=${path.join(stateDir, 'etcd')}`,
    `--listen-client-urls=http://127.0.0.1:${p.etcdClient}`,
    `--advertise-client-urls=http://127.0.0.1:${p.etcdClient}`,
    `--listen-peer-urls=http://127.0.0.1:${p.etcdPeer}`,
    `--initial-advertise-peer-urls=http://127.0.0.1:${p.etcdPeer}`,
    `--initial-cluster=testbed=http://127.0.0.1:${p.etcdPeer}`,
    // Throwaway data: durability buys nothing here and fsync dominates start-up.
    '--unsafe-no-fsync',
    '--log-level=warn',
  ],
  path.join(stateDir, 'etcd.log'),
);

const clusters = Array.from(
  { length: clusterCount },
  (_, i) =>
    new ClusterControlPlane(
      i + 1,
      stateDir,
      basePort,
      `http://127.0.0.1:${p.etcdClient}`,
    ),
);
const servers: net.Server[] = [];
let stopStandIns: Array<() => Promise<void>> = [];
const addresses = new LoopbackAddresses();
let istiods: IstiodRunner | undefined;
let proxies: ProxyRunner | undefined;
let checkJobs: CheckJobRunner | undefined;
let tailnet: Tailnet | undefined;
const inside = new AbortController();

/**
 * Users of the stand-in tailnet (the fixture policy's groups name them): what autogroup:admin and
 * autogroup:member mean there.
 */
const tailnetUsers = [
  { loginName: 'alice@example.com', role: 'admin' as const },
  { loginName: 'bob@example.com', role: 'member' as const },
];

function publish(extra: Partial<TestbedState> = {}) {
  Object.assign(state, extra);
  state.pids = { supervisor: process.pid };
  if (etcd.pid) state.pids.etcd = etcd.pid;
  for (const c of clusters) Object.assign(state.pids, c.pids());
  state.clusters = clusters.map(c => ({
    name: c.name,
    index: c.index,
    network: c.shape.network,
    region: c.shape.region,
    zones: c.shape.zones,
    server: c.server,
    kubeconfigPath: c.kubeconfigPath,
    apiserverRunning: c.apiserver.running,
    dnsIp: c.shape.dnsIp,
  }));
  state.istiods = istiods?.list() ?? [];
  state.proxies = proxies?.list() ?? [];
  writeState(state);
}

/** Serves a socket inherited from the outer namespace by piping each connection to `port` here. */
function bridge(fd: number, port: number) {
  const server = net.createServer(outer => {
    const inner = net.connect({ host: '127.0.0.1', port });
    outer.pipe(inner).pipe(outer);
    // A refused inner connection (apiserver stopped on purpose) must look like one from outside.
    inner.on('error', () => outer.resetAndDestroy());
    outer.on('error', () => inner.destroy());
  });
  server.listen({ fd });
  servers.push(server);
}

async function startStandIns() {
  const newClient = () => {
    const id = `k${crypto.randomBytes(8).toString('hex')}CNTRL`;
    return { clientId: id, clientSecret: `tskey-client-${id}-${crypto.randomBytes(24).toString('hex')}` };
  };
  // Two OAuth clients, as Tailmesh asks a platform team for: Backstage's own (the policy file, the
  // tailnet settings), and the operator's, which goes into every member and so gets only what the
  // operator needs (tailscale cmd/k8s-operator/e2e/setup.go: auth_keys, devices:core, services).
  const backstageClient = newClient();
  const operatorClient = newClient();
  const credentialsPath = path.join(stateDir, 'tailscale-oauth.json');
  fs.writeFileSync(
    credentialsPath,
    JSON.stringify({ ...backstageClient, operator: operatorClient }),
    { mode: 0o600 },
  );
  const api = await startTailscaleApi({
    port: p.tailscaleApi,
    tailnet: testbedTailnet,
    oauthClients: [
      { ...backstageClient, scopes: ['policy_file', 'feature_settings'], tags: [] },
      {
        ...operatorClient,
        scopes: ['auth_keys', 'devices:core', 'services'],
        // An OAuth client that mints auth keys carries tags; the operator's docs make it
        // tag:k8s-operator (tailscale.com/kb/1236), the tag the fixture policy defines for it.
        tags: ['tag:k8s-operator'],
      },
    ],
    initialPolicy: fs.readFileSync(
      path.join(__dirname, '..', 'fixtures', 'tailnet-policy.hujson'),
      'utf8',
    ),
  });
  const registry = new TailnetDeviceRegistry(testbedTailnet);
  const operator = await startOperatorStandIn({
    clusters: clusters.map(c => ({ name: c.name, kubeConfig: c.kubeConfig() })),
    tailnet: testbedTailnet,
    registry,
    log: msg => log(`[operator stand-in] ${msg}`),
  });
  stopStandIns = [() => operator.stop(), () => api.close()];

  // One watch-based view per cluster for everything below that acts on cluster state.
  const caches = clusters.map(
    c =>
      new ClusterCache({
        name: c.name,
        kubeConfig: c.kubeConfig(),
        operatorNamespace: 'tailscale',
        signal: inside.signal,
        log: msg => log(`[cache] ${msg}`),
      }),
  );
  const informerRuns = caches.flatMap(c => c.run());
  const stopProxies = caches.map(c =>
    startOperatorProxies(c, msg => log(`[operator stand-in] ${msg}`)),
  );
  const dns = await Promise.all(
    caches.map((c, i) =>
      startClusterDns(c, clusters[i].shape.dnsIp, addresses, msg => log(`[dns] ${msg}`)),
    ),
  );
  const kubeProxy = startKubeProxy(caches, addresses, msg => log(`[kube-proxy] ${msg}`));

  // The tailnet's HTTPS certificates stand in for Let's Encrypt's: processes the test bed runs
  // trust their root as a container image trusts the public web PKI.
  const certificates = await createTailnetCertificateAuthority();
  fs.writeFileSync(trustBundlePath, certificates.caPem, { mode: 0o644 });
  tailnet = startTailnet({
    tailnet: testbedTailnet,
    clusters: caches,
    registry,
    addresses,
    certificates,
    api,
    users: tailnetUsers,
    apiservers: Object.fromEntries(
      clusters.map(c => [c.name, { url: c.server, caPem: c.servingCa() }]),
    ),
    log: msg => log(`[tailnet] ${msg}`),
  });
  stopStandIns = [
    async () => {
      await tailnet?.stop();
      for (const stop of stopProxies) stop();
      await Promise.all(dns.map(d => d.stop()));
      await kubeProxy.stop();
      inside.abort();
      for (const c of caches) c.stop();
      await Promise.allSettled(informerRuns);
    },
    () => operator.stop(),
    () => api.close(),
  ];
  return { url: `http://127.0.0.1:${p.tailscaleApi}`, credentialsPath };
}

/**
 * The test bed's control socket: tests stop and start apiservers, and look inside the namespace
 * the way `kubectl exec` into a pod would (see control.ts).
 */
function serveControl() {
  const sock = controlSocket(stateDir);
  fs.rmSync(sock, { force: true });
  const server = net.createServer(conn => {
    let buf = '';
    conn.on('data', async chunk => {
      buf += chunk;
      if (!buf.includes('\n')) return;
      let reply: object;
      try {
        const result = await handleControl(JSON.parse(buf), {
          clusters,
          istiods: () => istiods?.list() ?? [],
          proxies: () => proxies?.list() ?? [],
          proxyClientFlags: (cluster, namespace, pod) => {
            if (!proxies) throw new Error('no data plane runs in this test bed');
            return proxies.clientFlags(cluster, namespace, pod);
          },
          tailnet: () => tailnet?.devices() ?? [],
          refreshTailnet: () => tailnet?.refresh(),
          trustedCaPem: () => fs.readFileSync(trustBundlePath, 'utf8'),
        });
        publish();
        reply = { ok: true, result };
      } catch (e) {
        reply = {
          ok: false,
          error: e instanceof Error ? e.message : String(e),
        };
      }
      conn.end(`${JSON.stringify(reply)}\n`);
    });
  });
  server.listen(sock);
  servers.push(server);
}

let stopping = false;
async function shutdown(code: number) {
  if (stopping) return;
  stopping = true;
  log('stopping');
  await checkJobs?.stop().catch(() => undefined);
  await proxies?.stop().catch(() => undefined);
  await istiods?.stop().catch(() => undefined);
  for (const stop of stopStandIns) await stop().catch(() => undefined);
  await Promise.all(clusters.map(c => c.stop()));
  await etcd.stop();
  for (const s of servers) s.close();
  publish({ phase: code === 0 ? 'stopped' : 'failed' });
  log('stopped');
  process.exit(code);
}

async function main() {
  execFileSync('ip', ['link', 'set', 'lo', 'up']);
  fs.mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  publish();

  etcd.start();
  await Promise.race([
    waitFor('etcd health', async () => {
      const res = await fetch(`http://127.0.0.1:${p.etcdClient}/health`);
      return res.ok;
    }),
    etcd.failOnExit(),
  ]);
  log('etcd ready');

  await Promise.all(
    clusters.map(async c => {
      await c.start();
      log(`${c.name} ready (${c.server})`);
    }),
  );
  publish();

  const tailscaleApi = await startStandIns();
  log(`Tailscale stand-ins ready (${tailscaleApi.url})`);
  istiods = startIstiodRunner(
    {
      clusters: clusters.map(c => ({
        name: c.name,
        kubeConfig: c.kubeConfig(),
        server: c.server,
        caPem: c.servingCa(),
        dnsIp: c.shape.dnsIp,
        dir: c.dir,
      })),
      binary: path.join(binDir, 'pilot-discovery'),
      trustBundlePath,
      addresses,
      log: msg => log(`[istiod] ${msg}`),
    },
    () => publish(),
  );
  proxies = startProxyRunner(
    {
      clusters: clusters.map(c => ({ name: c.name, kubeConfig: c.kubeConfig(), dir: c.dir })),
      binary: path.join(binDir, 'mesh-dataplane'),
      addresses,
      log: msg => log(`[proxy] ${msg}`),
    },
    () => publish(),
  );
  const dataPlane = proxies;
  checkJobs = startCheckJobRunner({
    clusters: clusters.map(c => ({ name: c.name, kubeConfig: c.kubeConfig() })),
    binary: path.join(binDir, 'mesh-dataplane'),
    clientFlags: (cluster, namespace, pod) => dataPlane.clientFlags(cluster, namespace, pod),
    log: msg => log(`[check] ${msg}`),
  });

  for (const spec of values.bridge) {
    const [fd, port] = spec.split(':').map(Number);
    bridge(fd, port);
  }
  serveControl();
  publish({
    phase: 'ready',
    tailscaleApi,
    readyAt: new Date().toISOString(),
    startupMs: Date.now() - startedAt,
  });
  log(`ready in ${Date.now() - startedAt} ms`);
}

process.on('SIGTERM', () => void shutdown(0));
process.on('SIGINT', () => void shutdown(0));
main().catch(e => {
  log(`start-up failed: ${e instanceof Error ? e.stack : String(e)}`);
  state.error = e instanceof Error ? e.message : String(e);
  void shutdown(1);
});
