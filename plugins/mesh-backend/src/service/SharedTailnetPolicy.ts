import { DatabaseService, LoggerService } from '@backstage/backend-plugin-api';
import { Config } from '@backstage/config';
import { PolicyFile, TailscaleClient } from '@tailmesh/plugin-mesh-node';
import { Knex } from 'knex';
import {
  TailnetPolicyWatcher,
  describeReadError,
} from './TailnetPolicyWatcher';

const TABLE = 'mesh_tailnet_policy';
const NEVER = new Date(0).toISOString();

interface PolicyRow {
  id: number;
  etag: string | null;
  text: string | null;
  read_at: string | null;
  error: string | null;
  attempted_at: string;
}

/**
 * The tailnet policy file shared by every replica through the plugin's database. `getPolicy`
 * (each replica's TailnetPolicyWatcher) returns what was stored, or throws the stored reason the
 * last read failed; when the last attempt by any replica is `intervalMs` old, the one replica
 * whose conditional update of `attempted_at` wins first reads the file from the Tailscale API
 * and stores it. So a deployment asks Tailscale once per interval whatever its number of
 * replicas, coordinated in the database itself.
 */
export class SharedTailnetPolicy {
  constructor(
    private readonly db: Knex,
    private readonly options: {
      client: Pick<TailscaleClient, 'getPolicy'>;
      /** Values that must never be stored (the OAuth client secret). */
      secrets: string[];
      /** How old the last attempt (by any replica) is when the next replica reads Tailscale. */
      intervalMs: number;
      now?: () => Date;
    },
  ) {}

  /** The plugin's database; its migrations (HistoryStore.create) made the table. */
  static async create(
    database: DatabaseService,
    options: ConstructorParameters<typeof SharedTailnetPolicy>[1],
  ): Promise<SharedTailnetPolicy> {
    return new SharedTailnetPolicy(await database.getClient(), options);
  }

  private now(): Date {
    return (this.options.now ?? (() => new Date()))();
  }

  /**
   * Whether this replica is the one to read Tailscale now: a conditional update of
   * `attempted_at` that only one replica wins once the last attempt is `intervalMs` old (or
   * none was made).
   */
  private async claimPoll(now: Date): Promise<boolean> {
    const due = new Date(now.getTime() - this.options.intervalMs).toISOString();
    // The first replica ever finds no row: a row that was never attempted is due.
    await this.db<PolicyRow>(TABLE)
      .insert({ id: 1, attempted_at: NEVER })
      .onConflict('id')
      .ignore();
    const updated = await this.db<PolicyRow>(TABLE)
      .where({ id: 1 })
      .andWhere('attempted_at', '<=', due)
      .update({ attempted_at: now.toISOString() });
    return updated === 1;
  }

  /** Reads the policy file from the Tailscale API and stores it, or why reading failed. */
  private async poll(now: string): Promise<void> {
    let row: Partial<PolicyRow>;
    try {
      const file = await this.options.client.getPolicy();
      row = { etag: file.etag, text: file.text, read_at: now, error: null };
    } catch (e) {
      row = { error: this.redact(describeReadError(e)) };
    }
    await this.db<PolicyRow>(TABLE)
      .insert({ id: 1, attempted_at: now, ...row })
      .onConflict('id')
      .merge();
  }

  /**
   * What the last read stored (reading Tailscale first when this replica claims the read): the
   * file with when it was read, undefined before any read, or an error saying why the last read
   * failed (the watcher keeps the last file it had).
   */
  async getPolicy(): Promise<(PolicyFile & { readAt: string }) | undefined> {
    const now = this.now();
    if (await this.claimPoll(now)) await this.poll(now.toISOString());
    const [row] = await this.db<PolicyRow>(TABLE).where({ id: 1 }).select('*');
    if (!row) return undefined;
    if (row.error !== null) throw new Error(row.error);
    if (row.text === null || row.read_at === null) return undefined;
    return { etag: row.etag ?? '', text: row.text, readAt: row.read_at };
  }

  private redact(text: string): string {
    return this.options.secrets
      .filter(s => s.length > 0)
      .reduce((out, secret) => out.split(secret).join('***'), text);
  }
}

/** How often each replica reads the shared copy at most (a one-row read of its own database). */
const SHARED_READ_INTERVAL_MS = 5000;

/**
 * The tailnet policy watcher of a deployment: with a Tailscale client configured, every
 * replica's watcher reads the copy in the plugin's database (SharedTailnetPolicy), which one
 * replica per interval refreshes from Tailscale; without one, a watcher that says
 * `not-configured`. Call after the plugin's migrations ran.
 */
export async function createTailnetPolicy(options: {
  config: Config;
  logger: LoggerService;
  database: DatabaseService;
}): Promise<TailnetPolicyWatcher> {
  const { config, logger, database } = options;
  const settings = TailnetPolicyWatcher.settingsFromConfig(config);
  if (!settings.client) {
    return new TailnetPolicyWatcher({
      intervalMs: settings.intervalMs,
      logger,
    });
  }
  const shared = await SharedTailnetPolicy.create(database, {
    client: settings.client,
    secrets: settings.secrets,
    intervalMs: settings.intervalMs,
  });
  return new TailnetPolicyWatcher({
    client: shared,
    intervalMs: Math.min(settings.intervalMs, SHARED_READ_INTERVAL_MS),
    logger,
    secrets: settings.secrets,
  });
}
