import { JsonObject } from '@backstage/types';
import { ChildProcess, fork } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Entity } from '@backstage/catalog-model';
import { FromBackend, MemoryReading, ToBackend } from './backendProtocol';

const STEP_TIMEOUT_MS = 120_000;

/**
 * One backend process (backendProcess.ts) under test, from spawn to stop. Its output goes to a
 * log file in the bench's temporary directory; the bench checks that file for secrets.
 */
export class BackendSession {
  readonly loaded: MemoryReading;
  private readonly waiting = new Set<(m: FromBackend) => void>();
  private exited = false;

  private constructor(
    private readonly child: ChildProcess,
    loaded: MemoryReading,
  ) {
    this.loaded = loaded;
    child.on('message', m => {
      for (const w of [...this.waiting]) w(m as FromBackend);
    });
  }

  /** Spawns the process and waits until every module is loaded (the "before start" memory). */
  static async spawn(logPath: string): Promise<BackendSession> {
    const log = fs.openSync(logPath, 'a', 0o600);
    const child = fork(path.join(__dirname, 'backendProcess.ts'), [], {
      execArgv: ['--import', require.resolve('tsx'), '--expose-gc'],
      // Its own process group: Ctrl-C reaches the bench, which stops the backend in order.
      detached: true,
      stdio: ['ignore', log, log, 'ipc'],
      env: { ...process.env, NODE_ENV: 'production' },
    });
    fs.closeSync(log);
    const loaded = await new Promise<MemoryReading>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`backend process did not load; see ${logPath}`)),
        STEP_TIMEOUT_MS,
      );
      child.once('message', m => {
        clearTimeout(timer);
        const message = m as FromBackend;
        if (message.type === 'loaded') resolve(message.memory);
        else reject(new Error(`backend process sent ${message.type} first`));
      });
      child.once('exit', code => {
        clearTimeout(timer);
        reject(new Error(`backend process exited (${code}); see ${logPath}`));
      });
    });
    const session = new BackendSession(child, loaded);
    child.on('exit', () => {
      session.exited = true;
    });
    return session;
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /**
   * Starts the backend; resolves with the time `backend.start()` was called once it returned.
   * The mesh backend's caches start syncing during start, so sync is timed from the call.
   */
  async start(
    config: JsonObject,
    entities: Entity[],
  ): Promise<{ calledAt: number; startedAt: number }> {
    const starting = this.next('starting');
    const started = this.next('started');
    this.send({ type: 'start', config, entities });
    const { at: calledAt } = await starting;
    const { at: startedAt } = await started;
    return { calledAt, startedAt };
  }

  async memory(): Promise<MemoryReading> {
    const reply = this.next('memory');
    this.send({ type: 'memory' });
    return (await reply).memory;
  }

  /** CPU time the backend process used so far (no collection first, unlike memory()). */
  async cpuMicros(): Promise<number> {
    const reply = this.next('cpu');
    this.send({ type: 'cpu' });
    return (await reply).micros;
  }

  /** Stops the backend the way Backstage does (shutdown hooks), then waits for the process. */
  async stop(): Promise<void> {
    if (this.exited) return;
    const gone = new Promise<void>(resolve =>
      this.child.once('exit', () => resolve()),
    );
    const stopped = this.next('stopped').catch(() => undefined);
    this.send({ type: 'stop' });
    await stopped;
    const timer = setTimeout(() => this.kill(), 10_000);
    await gone;
    clearTimeout(timer);
  }

  /** For cleanup after a failure or Ctrl-C: this process only, by pid. */
  kill(): void {
    if (!this.exited && this.child.pid) {
      try {
        process.kill(this.child.pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
  }

  private send(message: ToBackend) {
    if (this.exited) throw new Error('the backend process has exited');
    this.child.send(message);
  }

  private next<T extends FromBackend['type']>(
    type: T,
  ): Promise<Extract<FromBackend, { type: T }>> {
    return new Promise((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        this.waiting.delete(listener);
        this.child.off('exit', onExit);
      };
      const listener = (m: FromBackend) => {
        if (m.type === type) {
          done();
          resolve(m as Extract<FromBackend, { type: T }>);
        } else if (m.type === 'failed') {
          done();
          reject(new Error(`backend process failed: ${m.error}`));
        }
      };
      const onExit = (code: number | null) => {
        done();
        reject(new Error(`backend process exited (${code}) before "${type}"`));
      };
      const timer = setTimeout(() => {
        done();
        reject(
          new Error(
            `backend process sent no "${type}" in ${STEP_TIMEOUT_MS} ms`,
          ),
        );
      }, STEP_TIMEOUT_MS);
      this.waiting.add(listener);
      this.child.once('exit', onExit);
    });
  }
}
