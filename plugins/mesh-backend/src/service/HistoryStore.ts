import {
  DatabaseService,
  resolvePackagePath,
} from '@backstage/backend-plugin-api';
import {
  HistoryResponse,
  MembershipHistoryEvent,
} from '@tailmesh/plugin-mesh-common';
import { Knex } from 'knex';

const TABLE = 'mesh_history_events';

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
 * What the stored history says the mesh looked like after its last event.
 *
 * @public
 */
export interface RecordedState {
  /** Whether any event was ever stored. */
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

  async append(events: ReadonlyArray<NewHistoryEvent>): Promise<void> {
    if (events.length === 0) return;
    await this.db<EventRow>(TABLE).insert(
      events.map(e => ({
        at: e.at,
        kind: e.kind,
        cluster: e.cluster ?? null,
        finding_id: e.findingId ?? null,
        message: e.message,
      })),
    );
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

  /** Replays the stored events into the membership and open findings they leave behind. */
  async recordedState(): Promise<RecordedState> {
    const rows = (await this.db<EventRow>(TABLE)
      .select('*')
      .orderBy('id', 'asc')) as EventRow[];
    const members = new Set<string>();
    const openFindings = new Map<
      string,
      { cluster?: string; message: string }
    >();
    for (const row of rows) {
      if (row.kind === 'joined' && row.cluster) members.add(row.cluster);
      if (row.kind === 'left' && row.cluster) members.delete(row.cluster);
      if (row.kind === 'finding-raised' && row.finding_id) {
        openFindings.set(row.finding_id, {
          ...(row.cluster !== null ? { cluster: row.cluster } : {}),
          message: row.message,
        });
      }
      if (row.kind === 'finding-cleared' && row.finding_id)
        openFindings.delete(row.finding_id);
    }
    return { empty: rows.length === 0, members, openFindings };
  }
}
