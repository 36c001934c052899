import { LoggerService } from '@backstage/backend-plugin-api';
import { isMeshMember } from '@tailmesh/plugin-mesh-common';
import { HistoryStore, NewHistoryEvent } from './HistoryStore';
import { MeshAudit, MeshAuditor } from './MeshAuditor';

/** The audit at one change, as the recorder judges it. */
interface Seen extends MeshAudit {
  /** Equal for states that would record the same events. */
  key: string;
}

interface Observed {
  members: Set<string>;
  openFindings: Map<string, { cluster?: string; message: string }>;
}

export interface HistoryRecorderOptions {
  audit: Pick<MeshAuditor, 'current' | 'onAudit'>;
  store: Pick<HistoryStore, 'append' | 'recordedState'>;
  logger: LoggerService;
  now?: () => Date;
}

/**
 * Turns the audits of the mesh into membership history: after each audit it compares the members
 * and the finding ids with what it saw last, and stores the differences.
 *
 * Choices that keep the history truthful rather than noisy:
 * - Nothing is judged until no cluster is still `syncing` and the tailnet policy file's first
 *   read has ended: a half-read mesh would look like members leaving, and grants judged late like
 *   new findings.
 * - The baseline is the state the stored events leave behind (members joined and not left,
 *   findings raised and not cleared). So members that joined while the backend was down are
 *   recorded as `joined` on the first observation, and stored open findings that are gone are
 *   cleared; but findings present at the first observation and not stored open are taken as the
 *   baseline without a `finding-raised` event, since when they arose is unknown.
 * - A cluster that cannot be read keeps its last membership (an outage is not leaving), and no
 *   finding is cleared while any cluster cannot be read (the audit does not judge what it cannot
 *   see, so its findings would vanish and come back).
 */
export class HistoryRecorder {
  private last?: Observed;
  private lastQueued?: string;
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

  /** Unsubscribes and waits for the writes under way. */
  async stop(): Promise<void> {
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    await this.queue;
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
    const { store } = this.options;
    const { snapshots, health, findings } = seen;
    if ([...health.values()].some(h => h === 'syncing')) return;
    if (seen.policy === 'pending') return;
    const first = this.last === undefined;
    const previous: Observed = this.last ?? (await store.recordedState());
    const allReadable = [...health.values()].every(h => h === 'ok');
    const at = this.now().toISOString();
    const events: NewHistoryEvent[] = [];

    const members = new Set(previous.members);
    for (const s of snapshots) {
      if (health.get(s.cluster) !== 'ok') continue;
      const member = isMeshMember(s);
      if (member && !members.has(s.cluster)) {
        members.add(s.cluster);
        events.push({
          at,
          cluster: s.cluster,
          kind: 'joined',
          message: `${s.cluster} joined the mesh`,
        });
      } else if (!member && members.has(s.cluster)) {
        members.delete(s.cluster);
        events.push({
          at,
          cluster: s.cluster,
          kind: 'left',
          message: `${s.cluster} left the mesh`,
        });
      }
    }

    const openFindings = new Map(previous.openFindings);
    for (const f of findings) {
      if (openFindings.has(f.id)) continue;
      openFindings.set(f.id, { cluster: f.clusters[0], message: f.message });
      if (!first) {
        events.push({
          at,
          cluster: f.clusters[0],
          kind: 'finding-raised',
          findingId: f.id,
          message: f.message,
        });
      }
    }
    if (allReadable) {
      const current = new Set(findings.map(f => f.id));
      for (const [id, open] of previous.openFindings) {
        if (current.has(id)) continue;
        openFindings.delete(id);
        events.push({
          at,
          ...(open.cluster ? { cluster: open.cluster } : {}),
          kind: 'finding-cleared',
          findingId: id,
          message: `Resolved: ${open.message}`,
        });
      }
    }

    await store.append(events);
    this.last = { members, openFindings };
  }
}
