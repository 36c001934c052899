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
  private readonly pending = new Map<string, Promise<void>>();

  async acquire(ip: string): Promise<void> {
    this.held.set(ip, (this.held.get(ip) ?? 0) + 1);
    if ((this.held.get(ip) ?? 0) > 1) {
      await this.pending.get(ip);
      return;
    }
    const adding = this.ip(['addr', 'add', `${ip}/32`, 'dev', 'lo']);
    this.pending.set(ip, adding);
    await adding;
  }

  async release(ip: string): Promise<void> {
    const count = (this.held.get(ip) ?? 0) - 1;
    if (count > 0) {
      this.held.set(ip, count);
      return;
    }
    this.held.delete(ip);
    this.pending.delete(ip);
    await this.ip(['addr', 'del', `${ip}/32`, 'dev', 'lo']);
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
