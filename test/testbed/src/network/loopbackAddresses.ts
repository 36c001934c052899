import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * Addresses the test bed puts on the loopback interface of its own network namespace: pod IPs of
 * the pods it runs for real, ClusterIPs of the cluster DNS servers, tailnet addresses
 * (100.64.0.0/10). A /32 on `lo` is local to this namespace only; no packet ever leaves it.
 * Several users may hold one address (a pod IP kwok hands out again after a pod went), so each
 * address is reference-counted and removed when the last holder lets go.
 */
export class LoopbackAddresses {
  private readonly held = new Map<string, number>();
  /**
   * The last `ip addr` change of each address: changes of one address run in order, so an
   * address released and at once acquired again (kwok hands a freed pod IP out again) is deleted
   * and then added, never added and then deleted by a `del` still in flight.
   */
  private readonly last = new Map<string, Promise<void>>();

  async acquire(ip: string): Promise<void> {
    const count = (this.held.get(ip) ?? 0) + 1;
    this.held.set(ip, count);
    if (count > 1) {
      await this.last.get(ip);
      return;
    }
    await this.change(ip, 'add');
  }

  async release(ip: string): Promise<void> {
    const count = (this.held.get(ip) ?? 0) - 1;
    if (count > 0) {
      this.held.set(ip, count);
      return;
    }
    this.held.delete(ip);
    await this.change(ip, 'del');
  }

  private change(ip: string, op: 'add' | 'del'): Promise<void> {
    const before = this.last.get(ip) ?? Promise.resolve();
    const next = before
      .catch(() => undefined)
      .then(() => this.ip(['addr', op, `${ip}/32`, 'dev', 'lo']));
    this.last.set(ip, next);
    const forget = () => {
      if (this.last.get(ip) === next) this.last.delete(ip);
    };
    next.then(forget, forget);
    return next;
  }

  /** `ip addr add` of an address that is already there (or `del` of one that is not) is fine. */
  private async ip(args: string[]): Promise<void> {
    try {
      await run('ip', args);
    } catch (err) {
      const stderr = String((err as { stderr?: unknown }).stderr ?? '');
      if (/File exists|Cannot assign requested address/.test(stderr)) return;
      throw new Error(`ip ${args.join(' ')} failed: ${stderr.trim() || String(err)}`);
    }
  }
}
