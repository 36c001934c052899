import { LoggerService } from '@backstage/backend-plugin-api';
import { isMeshMember } from '@tailmesh/plugin-mesh-common';
import {
  HistoryChanges,
  HistoryStore,
  NewHistoryEvent,
  RecordedState,
} from './HistoryStore';
import { MeshAudit, MeshAuditor } from './MeshAuditor';

/** The audit at one change, as the recorder judges it. */
interface Seen extends MeshAudit {
  /** Equal for states that would record the same events. */
  key: string;
}

export interface HistoryRecorderOptions {
  audit: Pick<MeshAuditor, 'current' | 'onAudit'>;
  store: Pick<HistoryStore, 'record' | 'releaseLease'>;
  logger: LoggerService;
  now?: () => Date;
  /**
   * With several replicas: this replica's id, and how long its right to record lasts after its
   * last recording. Without it every replica records.
   */
  lease?: { holder: string; durationMs: number };
}

/**
 * Turns the audits of the mesh into membership history: after each audit it compares the members
 * and the finding ids with the state the stored history leaves behind, and stores the
 * differences, in one locked transaction (HistoryStore.record), so a change is stored once even
 * when several replicas record it.
 *
 * In a deployment one replica records at a time: the holder of a lease kept in the same locked
 * row (`lease`), which each recording renews, so a replica whose watch caches lag behind
 * another's does not record the older state after the newer one. A replica that finds the lease
 * held tries again when it runs out: so when the holder dies, another takes over within one
 * lease and records what changed meanwhile against the stored state. A replica that stops
 * gives its lease up.
 *
 * Choices that keep the history truthful rather than noisy:
 * - Nothing is judged until no cluster is still `syncing` and the tailnet policy file's first
 *   read has ended: a half-read mesh would look like members leaving, and grants judged late like
 *   new findings.
 * - The comparison is with the state the stored events leave behind (members joined and not
 *   left, findings raised and not cleared). So members that joined while no backend ran are
 *   recorded as `joined` on the next observation, and stored open findings that are gone are
 *   cleared. Only the very first observation recorded in a database is a baseline: findings
 *   present then enter the state without a `finding-raised` event, since when they arose is
 *   unknown. After that a finding first seen after a downtime is recorded as raised when seen.
 * - A cluster that cannot be read keeps its last membership (an outage is not leaving), and no
 *   finding is cleared while any cluster cannot be read (the audit does not judge what it cannot
 *   see, so its findings would vanish and come back).
 */
export class HistoryRecorder {
  private lastQueued?: string;
  private retry?: NodeJS.Timeout;
  private leading = false;
  private queue: Promise<void> = Promise.resolve();
  private unsubscribe?: () => void;
  private readonly now: () => Date;

  constructor(private readonly options: HistoryRecorderOptions) {
    this.now = options.now ?? (() => new Date());
  }

  start(): void {
    if (this.unsubscribe) return;
    // Every audit, which follows every change (not the cache's coalesced notifications): a
    // finding raised and fixed within the coalescing window would otherwise never be seen,
    // though /membership reported it.
    this.unsubscribe = this.options.audit.onAudit(audit => {
      this.observe(audit);
    });
  }

  /** Unsubscribes, waits for the writes under way, and gives up the lease. */
  async stop(): Promise<void> {
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    clearTimeout(this.retry);
    this.retry = undefined;
    await this.queue;
    const { lease, store, logger } = this.options;
    if (lease) {
      await store
        .releaseLease(lease.holder)
        .catch(e =>
          logger.warn(
            `Giving up the mesh history lease failed: ${e instanceof Error ? e.message : String(e)}`,
          ),
        );
      this.leading = false;
    }
  }

  /**
   * Takes an audit (by default the current one) and records its differences from the last one.
   * It is taken synchronously, so a state that lasts only until the next change is still judged;
   * the writes are serialised, so events are stored in the order the changes were seen. An audit
   * that judges the same as the one queued last queues nothing.
   */
  observe(audit: MeshAudit = this.options.audit.current()): Promise<void> {
    const seen = this.capture(audit);
    if (seen.key === this.lastQueued) return this.queue;
    this.lastQueued = seen.key;
    this.queue = this.queue
      .then(() => this.record(seen))
      .catch(e => {
        // The next change is compared with what is stored, not with what failed to be.
        this.lastQueued = undefined;
        this.options.logger.error(
          `Recording mesh history failed: ${e instanceof Error ? e.message : String(e)}`,
        );
      });
    return this.queue;
  }

  private capture(audit: MeshAudit): Seen {
    const members = audit.snapshots.filter(isMeshMember).map(s => s.cluster);
    const key = JSON.stringify([
      [...audit.health],
      audit.policy === 'pending',
      members,
      audit.findings.map(f => f.id),
    ]);
    return { ...audit, key };
  }

  private async record(seen: Seen): Promise<void> {
    const { health } = seen;
    if ([...health.values()].some(h => h === 'syncing')) return;
    if (seen.policy === 'pending') return;
    const at = this.now().toISOString();
    // Compared with the stored state inside the store's locked transaction, not with what this
    // replica saw last: another replica (or this one, before a restart) may have recorded since.
    const { lease, logger } = this.options;
    const result = await this.options.store.record(
      state => changesSince(state, seen, at),
      { at, ...(lease ? { lease: { ...lease, now: Date.parse(at) } } : {}) },
    );
    if (!lease) return;
    if (result.recorded) {
      if (!this.leading) {
        logger.info(`This replica records the mesh history (${lease.holder})`);
      }
      this.leading = true;
      return;
    }
    if (this.leading) {
      logger.info(`Another replica records the mesh history now`);
    }
    this.leading = false;
    // Try again when the holder's lease runs out, unless it is renewed meanwhile: a holder that
    // died renews nothing, and this replica then records what changed since.
    if (!this.unsubscribe) return;
    clearTimeout(this.retry);
    const wait = Math.max(
      0,
      Date.parse(result.leaseExpiresAt) - Date.parse(at),
    );
    this.retry = setTimeout(
      () => {
        this.retry = undefined;
        if (!this.unsubscribe) return;
        this.lastQueued = undefined;
        void this.observe();
      },
      wait + 250 + Math.random() * 500,
    );
    this.retry.unref?.();
  }
}

/** The events that take the stored state to what the audit `seen` shows. */
function changesSince(
  previous: RecordedState,
  seen: MeshAudit,
  at: string,
): HistoryChanges {
  const { snapshots, health, findings } = seen;
  // Findings present at the very first observation are the baseline: when they arose is unknown.
  const first = previous.empty;
  const allReadable = [...health.values()].every(h => h === 'ok');
  const events: NewHistoryEvent[] = [];

  for (const s of snapshots) {
    if (health.get(s.cluster) !== 'ok') continue;
    const member = isMeshMember(s);
    if (member && !previous.members.has(s.cluster)) {
      events.push({
        at,
        cluster: s.cluster,
        kind: 'joined',
        message: `${s.cluster} joined the mesh`,
      });
    } else if (!member && previous.members.has(s.cluster)) {
      events.push({
        at,
        cluster: s.cluster,
        kind: 'left',
        message: `${s.cluster} left the mesh`,
      });
    }
  }

  const baseline: NewHistoryEvent[] = [];
  for (const f of findings) {
    if (previous.openFindings.has(f.id)) continue;
    const raised: NewHistoryEvent = {
      at,
      cluster: f.clusters[0],
      kind: 'finding-raised',
      findingId: f.id,
      message: f.message,
    };
    (first ? baseline : events).push(raised);
  }
  if (allReadable) {
    const current = new Set(findings.map(f => f.id));
    for (const [id, open] of previous.openFindings) {
      if (current.has(id)) continue;
      events.push({
        at,
        ...(open.cluster ? { cluster: open.cluster } : {}),
        kind: 'finding-cleared',
        findingId: id,
        message: `Resolved: ${open.message}`,
      });
    }
  }
  return { events, baseline };
}
