import { ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

/** The last `lines` lines of a log file, for error messages about the process that wrote it. */
export function readLogTail(file: string, lines: number): string {
  try {
    return fs
      .readFileSync(file, 'utf8')
      .trimEnd()
      .split('\n')
      .slice(-lines)
      .join('\n');
  } catch {
    return '(no log)';
  }
}

/** One long-running test bed component: its command line holds no secret (files carry those). */
export class ManagedProcess {
  private child?: ChildProcess;
  private exited?: Promise<number | null>;

  constructor(
    readonly name: string,
    private readonly command: string,
    readonly args: string[],
    private readonly logPath: string,
    /** Working directory and environment; the supervisor's own by default. */
    private readonly spawnOptions: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
  ) {}

  get pid(): number | undefined {
    const child = this.child;
    // A signalled child has a null exitCode but a signalCode: it is gone all the same.
    return child && child.exitCode === null && child.signalCode === null
      ? child.pid
      : undefined;
  }

  get running(): boolean {
    return this.pid !== undefined;
  }

  start(): void {
    if (this.running) return;
    const log = fs.openSync(this.logPath, 'a', 0o600);
    const child = spawn(this.command, this.args, {
      ...this.spawnOptions,
      stdio: ['ignore', log, log],
    });
    fs.closeSync(log);
    this.child = child;
    this.exited = new Promise(resolve => {
      child.once('exit', code => resolve(code));
      child.once('error', () => resolve(-1));
    });
  }

  /** Rejects as soon as the process exits, with the tail of its log: used to fail a start-up fast. */
  async failOnExit(): Promise<never> {
    const code = await this.exited;
    throw new Error(
      `${this.name} exited with code ${code}; last log lines:\n${this.logTail()}`,
    );
  }

  logTail(lines = 15): string {
    return readLogTail(this.logPath, lines);
  }

  /** Resolves with the exit code (null when killed by a signal) once the process has ended. */
  exitedPromise(): Promise<number | null> | undefined {
    return this.exited;
  }

  async stop(graceMs = 5000): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const done = await Promise.race([
      this.exited,
      sleep(graceMs).then(() => 'timeout' as const),
    ]);
    if (done === 'timeout') {
      child.kill('SIGKILL');
      await this.exited;
    }
  }
}

/** Polls `check` until it returns true, or fails with what the last attempt said. */
export async function waitFor(
  what: string,
  check: () => Promise<boolean>,
  { timeoutMs = 60_000, intervalMs = 200 } = {},
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    try {
      if (await check()) return;
      last = 'not yet';
    } catch (e) {
      last = e instanceof Error ? e.message : String(e);
    }
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what} (${last})`,
      );
    }
    await sleep(intervalMs);
  }
}
