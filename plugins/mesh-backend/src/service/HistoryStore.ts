import {
  DatabaseService,
  resolvePackagePath,
} from '@backstage/backend-plugin-api';
import {
  HistoryResponse,
  MembershipHistoryEvent,
} from '@tailmesh/plugin-mesh-common';
import { Config } from '@backstage/config';
import { InputError } from '@backstage/errors';
import { Knex } from 'knex';

const TABLE = 'mesh_history_events';
const MEMBERS = 'mesh_history_members';
const OPEN_FINDINGS = 'mesh_history_open_findings';
const META = 'mesh_history_meta';

interface EventRow {
  id: number | string;
  at: string;
  kind: MembershipHistoryEvent['kind'];
  cluster: string | null;
  finding_id: string | null;
  message: string;
}

/**
 * An event before the store has given it an id.
 *
 * @public
 */
export type NewHistoryEvent = Omit<MembershipHistoryEvent, 'id'>;

/**
 * What one observation changes: the events to store, and the baseline (findings already there
 * when the very first observation was recorded), which enters the state without an event.
 *
 * @public
 */
export interface HistoryChanges {
  events: ReadonlyArray<NewHistoryEvent>;
  baseline?: ReadonlyArray<NewHistoryEvent>;
}

/**
 * The right to record, held by one replica at a time: `record` with a lease records only when no
 * other holder's lease runs, and renews this holder's for `durationMs`.
 *
 * @public
 */
export interface HistoryLease {
  /** This replica's id (random, per process). */
  holder: string;
  durationMs: number;
  /** Milliseconds since the epoch; default Date.now(). */
  now?: number;
}

/**
 * What `record` did: stored `events` (perhaps none), or nothing because another replica's lease
 * runs until `leaseExpiresAt`.
 *
 * @public
 */
export type RecordResult =
  | { recorded: true; events: NewHistoryEvent[] }
  | { recorded: false; leaseExpiresAt: string };

/**
 * What the stored history says the mesh looked like after its last event.
 *
 * @public
 */
export interface RecordedState {
  /** Whether no observation was ever recorded (the first one is a baseline). */
  empty: boolean;
  members: Set<string>;
  /** Open findings by id, with the cluster and message they were raised with. */
  openFindings: Map<string, { cluster?: string; message: string }>;
}

function toEvent(row: EventRow): MembershipHistoryEvent {
  return {
    // PostgreSQL returns bigints as strings, SQLite as numbers: the API's id is a string anyway.
    id: String(row.id),
    at: row.at,
    ...(row.cluster !== null ? { cluster: row.cluster } : {}),
    kind: row.kind,
    ...(row.finding_id !== null ? { findingId: row.finding_id } : {}),
    message: row.message,
  };
}

/**
 * The membership history, in the plugin's database. Works on SQLite and PostgreSQL.
 *
 * @public
 */
export class HistoryStore {
  static async create(options: {
    database: DatabaseService;
  }): Promise<HistoryStore> {
    const client = await options.database.getClient();
    // A read-only deployment runs the migrations elsewhere, as every Backstage plugin allows.
    if (!options.database.migrations?.skip) {
      await client.migrate.latest({
        directory: resolvePackagePath(
          '@tailmesh/plugin-mesh-backend',
          'migrations',
        ),
      });
    }
    return new HistoryStore(client);
  }

  private constructor(private readonly db: Knex) {}

  /** Appends events as they are, and the state they leave behind (for imports and tests). */
  async append(events: ReadonlyArray<NewHistoryEvent>): Promise<void> {
    await this.record(() => ({ events }));
  }

  /**
   * Records one observation, exactly once however many replicas record: inside one transaction
   * that holds the recording lock (the meta row, `FOR UPDATE` on PostgreSQL; SQLite runs one
   * writing transaction at a time), `changes` is given the stored state, and the events it
   * returns are stored with the state they leave behind. A second replica that saw the same
   * change then finds it stored and returns no event. With a `lease`, nothing is recorded while
   * another holder's lease runs; otherwise the lease is taken or renewed.
   */
  async record(
    changes: (state: RecordedState) => HistoryChanges | Promise<HistoryChanges>,
    options: { at?: string; lease?: HistoryLease } = {},
  ): Promise<RecordResult> {
    return this.db.transaction(async trx => {
      let lock = trx(META)
        .where({ id: 1 })
        .select('recorded_at', 'leader', 'lease_expires_at');
      if (this.db.client.config.client === 'pg') lock = lock.forUpdate();
      const [meta] = (await lock) as Array<{
        recorded_at: string | null;
        leader: string | null;
        lease_expires_at: string | null;
      }>;
      const { lease } = options;
      let leaseUpdate = {};
      if (lease) {
        const now = new Date(lease.now ?? Date.now());
        const held =
          meta?.leader &&
          meta.leader !== lease.holder &&
          meta.lease_expires_at &&
          meta.lease_expires_at > now.toISOString();
        // Another replica records, and its lease runs: this one records nothing.
        if (held) {
          return { recorded: false, leaseExpiresAt: meta.lease_expires_at! };
        }
        leaseUpdate = {
          leader: lease.holder,
          lease_expires_at: new Date(
            now.getTime() + lease.durationMs,
          ).toISOString(),
        };
      }
      const state = await this.readState(trx, meta?.recorded_at ?? null);
      const { events: changed, baseline = [] } = await changes(state);
      const events = [...changed];
      await this.applyToState(trx, baseline);
      if (events.length > 0) {
        await trx<EventRow>(TABLE).insert(
          events.map(e => ({
            at: e.at,
            kind: e.kind,
            cluster: e.cluster ?? null,
            finding_id: e.findingId ?? null,
            message: e.message,
          })),
        );
        await this.applyToState(trx, events);
      }
      const recordedAt =
        options.at ?? events[events.length - 1]?.at ?? meta?.recorded_at;
      if ((recordedAt && recordedAt !== meta?.recorded_at) || lease) {
        await trx(META)
          .insert({ id: 1, recorded_at: recordedAt ?? null, ...leaseUpdate })
          .onConflict('id')
          .merge();
      }
      return { recorded: true, events };
    });
  }

  /** Gives up `holder`'s lease, if it holds it, so another replica records at once. */
  async releaseLease(holder: string): Promise<void> {
    await this.db(META)
      .where({ id: 1, leader: holder })
      .update({ leader: null, lease_expires_at: null });
  }

  /** Newest events first; `before` is the cursor of the previous page (an event id). */
  async list(options: {
    limit: number;
    before?: number;
  }): Promise<HistoryResponse> {
    let query = this.db<EventRow>(TABLE)
      .select('*')
      .orderBy('id', 'desc')
      // One more than asked tells whether an older page exists.
      .limit(options.limit + 1);
    if (options.before !== undefined)
      query = query.where('id', '<', options.before);
    const rows = (await query) as EventRow[];
    const page = rows.slice(0, options.limit).map(toEvent);
    return rows.length > options.limit
      ? { events: page, nextCursor: page[page.length - 1].id }
      : { events: page };
  }

  /**
   * The membership and open findings the stored events leave behind, read from the state kept
   * with them (a few rows whatever the length of the history: nothing is replayed).
   */
  async recordedState(): Promise<RecordedState> {
    const [meta] = (await this.db(META)
      .where({ id: 1 })
      .select('recorded_at')) as Array<{ recorded_at: string | null }>;
    return this.readState(this.db, meta?.recorded_at ?? null);
  }

  /**
   * Deletes the events older than `before` (an ISO 8601 time), in batches so that no single
   * statement holds the table long; returns how many went. The state they left stays.
   */
  async deleteOlderThan(before: string, batchSize = 10_000): Promise<number> {
    let deleted = 0;
    for (;;) {
      const ids = this.db<EventRow>(TABLE)
        .select('id')
        .where('at', '<', before)
        .orderBy('id', 'asc')
        .limit(batchSize);
      const n = await this.db<EventRow>(TABLE).whereIn('id', ids).delete();
      deleted += n;
      if (n < batchSize) return deleted;
    }
  }

  private async readState(
    db: Knex | Knex.Transaction,
    recordedAt: string | null,
  ): Promise<RecordedState> {
    const memberRows = (await db(MEMBERS).select('cluster')) as Array<{
      cluster: string;
    }>;
    const findingRows = (await db(OPEN_FINDINGS).select(
      'finding_id',
      'cluster',
      'message',
    )) as Array<{
      finding_id: string;
      cluster: string | null;
      message: string;
    }>;
    return {
      empty: recordedAt === null,
      members: new Set(memberRows.map(r => r.cluster)),
      openFindings: new Map(
        findingRows.map(r => [
          r.finding_id,
          {
            ...(r.cluster !== null ? { cluster: r.cluster } : {}),
            message: r.message,
          },
        ]),
      ),
    };
  }

  private async applyToState(
    trx: Knex.Transaction,
    events: ReadonlyArray<NewHistoryEvent>,
  ): Promise<void> {
    for (const e of events) {
      if (e.kind === 'joined' && e.cluster) {
        await trx(MEMBERS)
          .insert({ cluster: e.cluster })
          .onConflict('cluster')
          .ignore();
      } else if (e.kind === 'left' && e.cluster) {
        await trx(MEMBERS).where({ cluster: e.cluster }).delete();
      } else if (e.kind === 'finding-raised' && e.findingId) {
        await trx(OPEN_FINDINGS)
          .insert({
            finding_id: e.findingId,
            cluster: e.cluster ?? null,
            message: e.message,
          })
          .onConflict('finding_id')
          .merge();
      } else if (e.kind === 'finding-cleared' && e.findingId) {
        await trx(OPEN_FINDINGS).where({ finding_id: e.findingId }).delete();
      }
    }
  }
}

/** Default of `mesh.history.retentionDays`. */
export const DEFAULT_HISTORY_RETENTION_DAYS = 365;

/** `mesh.history.retentionDays`, checked. */
export function historyRetentionDaysFromConfig(config: Config): number {
  const days =
    config.getOptionalNumber('mesh.history.retentionDays') ??
    DEFAULT_HISTORY_RETENTION_DAYS;
  if (!Number.isInteger(days) || days < 1) {
    throw new InputError(
      `mesh.history.retentionDays must be a whole number of days, at least 1, got ${days}`,
    );
  }
  return days;
}
