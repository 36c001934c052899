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
  }));
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
  const clientId = `k${crypto.randomBytes(8).toString('hex')}CNTRL`;
  const clientSecret = `tskey-client-${clientId}-${crypto.randomBytes(24).toString('hex')}`;
  const credentialsPath = path.join(stateDir, 'tailscale-oauth.json');
  fs.writeFileSync(
    credentialsPath,
    JSON.stringify({ clientId, clientSecret }),
    { mode: 0o600 },
  );
  const api = await startTailscaleApi({
    port: p.tailscaleApi,
    tailnet: testbedTailnet,
    oauthClients: [
      {
        clientId,
        clientSecret,
        scopes: ['policy_file', 'devices:core', 'auth_keys'],
      },
    ],
    initialPolicy: fs.readFileSync(
      path.join(__dirname, '..', 'fixtures', 'tailnet-policy.hujson'),
      'utf8',
    ),
  });
  const operator = await startOperatorStandIn({
    clusters: clusters.map(c => ({ name: c.name, kubeConfig: c.kubeConfig() })),
    tailnet: testbedTailnet,
    log: msg => log(`[operator stand-in] ${msg}`),
  });
  stopStandIns = [() => operator.stop(), () => api.close()];
  return { url: `http://127.0.0.1:${p.tailscaleApi}`, credentialsPath };
}

/** Lets tests stop and start one cluster's apiserver, to see the product survive an outage. */
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
        const { command, cluster } = JSON.parse(buf) as {
          command: string;
          cluster?: string;
        };
        const target = clusters.find(c => c.name === cluster);
        if (command === 'stop-apiserver' && target) {
          await target.apiserver.stop();
        } else if (command === 'start-apiserver' && target) {
          await target.startApiserver();
        } else {
          throw new Error(`unknown command ${command} for cluster ${cluster}`);
        }
        publish();
        reply = { ok: true };
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
