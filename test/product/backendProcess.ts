import { ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { repoRoot } from '../testbed/src/layout';
import { readLogTail } from '../testbed/src/process';

const backendDir = path.join(repoRoot, 'packages', 'backend');

export interface BackendProcess {
  /** Where the backend answers on this machine (loopback, not through `localhost` lookups). */
  url: string;
  pid: number;
  logFile: string;
  /** Settles when the backend's process ends, for whatever reason. */
  exited: Promise<void>;
  stop(): Promise<void>;
}

async function stopGroup(child: ChildProcess, timeoutMs = 20_000) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise(resolve => child.once('exit', resolve));
  process.kill(-child.pid!, 'SIGTERM');
  const done = await Promise.race([
    exited.then(() => true),
    sleep(timeoutMs).then(() => false),
  ]);
  if (!done) {
    process.kill(-child.pid!, 'SIGKILL');
    await exited;
  }
}

/**
 * Starts the product's backend from its TypeScript sources, with the same on-the-fly transform
 * `backstage-cli package start` uses but without its file watcher: a restart on someone's source
 * edit would kill the scaffolder tasks in flight. Resolves once its readiness check passes.
 * Config files carry every secret: nothing secret is on its command line or in its environment.
 */
export async function startBackend(opts: {
  configPaths: string[];
  port: number;
  logFile: string;
  timeoutMs?: number;
  signal?: AbortSignal;
  /**
   * Another app's backend (the adoption test's create-app apps): its folder and the command that
   * starts it there; `configPaths` are then left to that command.
   */
  app?: { backendDir: string; command: string; args: string[] };
}): Promise<BackendProcess> {
  const log = fs.openSync(opts.logFile, 'w', 0o600);
  const child = spawn(
    opts.app?.command ?? process.execPath,
    opts.app?.args ?? [
      '--enable-source-maps',
      '--require',
      require.resolve('@backstage/cli-node/config/nodeTransform.cjs'),
      'src/index',
      ...opts.configPaths.flatMap(c => ['--config', c]),
    ],
    {
      cwd: opts.app?.backendDir ?? backendDir,
      stdio: ['ignore', log, log],
      // Its own process group, so stop() also ends the helm runs of a task in flight.
      detached: true,
      env: { ...process.env, NODE_ENV: 'development' },
    },
  );
  fs.closeSync(log);
  const exited = new Promise<void>(resolve =>
    child.once('exit', () => resolve()),
  );
  // If this process dies without stopping it, the backend must not outlive it.
  const killOnExit = () => {
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      // already gone
    }
  };
  process.once('exit', killOnExit);

  const url = `http://127.0.0.1:${opts.port}`;
  const handle: BackendProcess = {
    url,
    pid: child.pid!,
    logFile: opts.logFile,
    exited,
    async stop() {
      process.removeListener('exit', killOnExit);
      await stopGroup(child);
    },
  };
  const deadline = Date.now() + (opts.timeoutMs ?? 180_000);
  for (;;) {
    if (opts.signal?.aborted) {
      await handle.stop();
      opts.signal.throwIfAborted();
    }
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(
        `the backend exited during start-up; log: ${opts.logFile}\n${readLogTail(opts.logFile, 30)}`,
      );
    }
    try {
      const res = await fetch(`${url}/.backstage/health/v1/readiness`);
      if (res.ok) return handle;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await handle.stop();
      throw new Error(
        `the backend was not ready within ${opts.timeoutMs ?? 180_000} ms; log: ${opts.logFile}\n${readLogTail(opts.logFile, 30)}`,
      );
    }
    await Promise.race([sleep(500), exited]);
  }
}
