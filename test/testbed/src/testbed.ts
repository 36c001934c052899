import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  controlSocket,
  defaultBasePort,
  maxClusters,
  ports,
  stateFile,
  supervisorLog,
} from './layout';
import { processAlive, readState, TestbedState } from './state';
import type { ControlRequest } from './control';

export interface StartOptions {
  stateDir: string;
  clusters: number;
  basePort?: number;
  timeoutMs?: number;
  onProgress?: (line: string) => void;
}

/** Opens a listening socket in this (outer) network namespace for the supervisor to inherit. */
async function listenHere(port: number): Promise<net.Server> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', err =>
      reject(
        new Error(
          `port 127.0.0.1:${port} is taken (${(err as Error).message}); pass another --base-port`,
        ),
      ),
    );
    server.listen({ host: '127.0.0.1', port, exclusive: true }, resolve);
  });
  return server;
}

/** Node does not expose a server's descriptor publicly; the handle's fd is stable on Linux. */
function fdOf(server: net.Server): number {
  const fd = (server as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0)
    throw new Error('cannot get the listening socket descriptor');
  return fd;
}

function namespaceCommand(): string[] {
  // Root makes the namespace directly; anyone else maps themselves to root in a user namespace.
  const user = process.getuid?.() === 0 ? [] : ['--user', '--map-root-user'];
  return ['unshare', ...user, '--net', '--fork', '--kill-child=SIGTERM', '--'];
}

/** A running test bed in `stateDir`, or undefined. */
export function runningTestbed(stateDir: string): TestbedState | undefined {
  const state = readState(stateDir);
  if (state && processAlive(state.supervisorPid) && state.phase !== 'stopped')
    return state;
  return undefined;
}

/**
 * Starts N clusters on loopback (see supervisor.ts) and resolves once every cluster has Ready
 * nodes and the stand-ins answer. The state dir is wiped first: a test bed is always fresh.
 */
export async function startTestbed(opts: StartOptions): Promise<TestbedState> {
  const { stateDir, clusters } = opts;
  const basePort = opts.basePort ?? defaultBasePort;
  if (!Number.isInteger(clusters) || clusters < 1 || clusters > maxClusters) {
    throw new Error(
      `--clusters must be a whole number from 1 to ${maxClusters}, got ${clusters}`,
    );
  }
  const existing = runningTestbed(stateDir);
  if (existing) {
    throw new Error(
      `a test bed is already running in ${stateDir} (pid ${existing.supervisorPid}); run "down" first`,
    );
  }
  fs.rmSync(stateDir, { recursive: true, force: true });
  fs.mkdirSync(stateDir, { recursive: true, mode: 0o700 });

  const p = ports(basePort);
  const bridged = [
    p.tailscaleApi,
    ...Array.from({ length: clusters }, (_, i) => p.apiserver(i + 1)),
  ];
  const listeners: net.Server[] = [];
  try {
    for (const port of bridged) listeners.push(await listenHere(port));
  } catch (e) {
    for (const l of listeners) l.close();
    throw e;
  }

  const log = fs.openSync(supervisorLog(stateDir), 'a', 0o600);
  const fds = listeners.map(fdOf);
  const [cmd, ...nsArgs] = namespaceCommand();
  const child = spawn(
    cmd,
    [
      ...nsArgs,
      process.execPath,
      '--import',
      require.resolve('tsx'),
      path.join(__dirname, 'supervisor.ts'),
      `--state-dir=${stateDir}`,
      `--clusters=${clusters}`,
      `--base-port=${basePort}`,
      ...bridged.map((port, i) => `--bridge=${3 + i}:${port}`),
    ],
    { detached: true, stdio: ['ignore', log, log, ...fds] },
  );
  fs.closeSync(log);
  for (const l of listeners) l.close();
  fs.writeFileSync(path.join(stateDir, 'launcher.pid'), String(child.pid));
  child.unref();

  const deadline = Date.now() + (opts.timeoutMs ?? 180_000);
  let shown = 0;
  for (;;) {
    const lines = fs.readFileSync(supervisorLog(stateDir), 'utf8').split('\n');
    for (; shown < lines.length - 1; shown++) opts.onProgress?.(lines[shown]);
    const state = readState(stateDir);
    if (state?.phase === 'ready') return state;
    const failed =
      state?.phase === 'failed' ||
      child.exitCode !== null ||
      !processAlive(child.pid!);
    if (failed || Date.now() > deadline) {
      await stopTestbed(stateDir);
      throw new Error(
        `test bed did not start${failed ? '' : ' in time'}: ${state?.error ?? 'see log'}\n` +
          `log: ${supervisorLog(stateDir)}\n${lines.slice(-20).join('\n')}`,
      );
    }
    await sleep(200);
  }
}

/** Stops exactly the processes this test bed started; waits until every one of them is gone. */
export async function stopTestbed(
  stateDir: string,
  timeoutMs = 30_000,
): Promise<string[]> {
  const state = readState(stateDir);
  let launcher: number | undefined;
  try {
    launcher = Number(
      fs.readFileSync(path.join(stateDir, 'launcher.pid'), 'utf8'),
    );
  } catch {
    launcher = undefined;
  }
  const pids = [
    ...Object.values(state?.pids ?? {}),
    ...(launcher ? [launcher] : []),
  ];
  const alive = () => pids.filter(processAlive);
  if (state && processAlive(state.supervisorPid))
    process.kill(state.supervisorPid, 'SIGTERM');
  else if (launcher && processAlive(launcher))
    process.kill(launcher, 'SIGTERM');
  const deadline = Date.now() + timeoutMs;
  while (alive().length && Date.now() < deadline) await sleep(100);
  const killed = alive();
  for (const pid of killed) process.kill(pid, 'SIGKILL');
  return killed.map(String);
}

/** Stops or starts one cluster's apiserver in a running test bed. */
export async function controlTestbed(
  stateDir: string,
  command: 'stop-apiserver' | 'start-apiserver',
  cluster: string,
): Promise<void> {
  await testbedRequest(stateDir, { command, cluster });
}

/** One request to a running test bed's control socket (see control.ts); resolves with its result. */
export async function testbedRequest<T = unknown>(
  stateDir: string,
  request: ControlRequest,
): Promise<T> {
  const reply = await new Promise<string>((resolve, reject) => {
    const conn = net.connect(controlSocket(stateDir));
    let buf = '';
    conn.on('connect', () => conn.write(`${JSON.stringify(request)}\n`));
    conn.on('data', d => (buf += d));
    conn.on('end', () => resolve(buf));
    conn.on('error', reject);
  });
  const parsed = JSON.parse(reply) as { ok: boolean; error?: string; result?: T };
  if (!parsed.ok) throw new Error(`${request.command}: ${parsed.error}`);
  return parsed.result as T;
}

export { readState, stateFile };
