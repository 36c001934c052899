/**
 * `npm run bench:history [-- --events 1000000]`: what a long membership history costs the mesh
 * backend on PostgreSQL. It starts a throwaway PostgreSQL server (test/support/postgres.ts),
 * stores N events with the schema as it was before the history's state tables, then measures:
 * what a start-up cost then (every event read and replayed),
 * the migration that adds them (it replays the events once, in pages), a start-up
 * (HistoryStore.create with nothing to migrate, then recordedState, the recorder's baseline),
 * the first /history page, one recorded observation, and retention deleting half the events; with
 * the process's heap and RSS before and after. Prints one table and exits; nothing is kept.
 */
import { mockServices } from '@backstage/backend-test-utils';
import { HistoryStore } from '@tailmesh/plugin-mesh-backend';
import knexFactory, { Knex } from 'knex';
import path from 'node:path';
import { startPostgres, stopPostgres } from '../support/postgres';

const eventsArg = (() => {
  const i = process.argv.findIndex(
    a => a === '--events' || a.startsWith('--events='),
  );
  if (i < 0) return '1000000';
  const a = process.argv[i];
  return a.includes('=') ? a.split('=')[1] : process.argv[i + 1];
})();
const events = Number(eventsArg);
if (!Number.isInteger(events) || events < 1) {
  throw new Error(`--events must be a positive whole number, got ${events}`);
}

const migrations = path.dirname(
  require.resolve('@tailmesh/plugin-mesh-backend/package.json'),
);

const mb = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MB`;

async function timed<T>(
  rows: string[][],
  what: string,
  fn: () => Promise<T>,
): Promise<T> {
  global.gc?.();
  const heap = process.memoryUsage().heapUsed;
  const started = process.hrtime.bigint();
  const out = await fn();
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  const after = process.memoryUsage();
  rows.push([
    what,
    `${ms.toFixed(1)} ms`,
    mb(after.heapUsed - heap),
    mb(after.rss),
  ]);
  return out;
}

async function main() {
  const pg = await startPostgres();
  const knex: Knex = knexFactory({
    client: 'pg',
    connection: pg.connectionString,
  });
  const rows: string[][] = [];
  try {
    // The schema before the state tables: only the first migration.
    await knex.migrate.up({
      directory: path.join(migrations, 'migrations'),
      name: '20261126000000_history.js',
    });
    const loadStart = Date.now();
    await knex.raw(
      `insert into mesh_history_events (at, kind, cluster, finding_id, message)
       select to_char(timestamp '2025-01-01' + (i || ' seconds')::interval, 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
              case i % 4 when 0 then 'joined' when 1 then 'finding-raised' when 2 then 'finding-cleared' else 'left' end,
              'cluster' || (i % 100),
              case when i % 4 in (1, 2) then 'finding-' || (i % 1000) else null end,
              'event ' || i
       from generate_series(1, ?) as i`,
      [events],
    );
    const loadMs = Date.now() - loadStart;
    // What a start-up cost before the state tables: every event read and replayed.
    await timed(
      rows,
      `before: start-up replayed all ${events} events`,
      async () => {
        const all = await knex('mesh_history_events')
          .select('*')
          .orderBy('id', 'asc');
        const members = new Set<string>();
        for (const r of all) {
          if (r.kind === 'joined') members.add(r.cluster);
          if (r.kind === 'left') members.delete(r.cluster);
        }
        return members.size;
      },
    );
    const database = mockServices.database({
      knex,
      migrations: { skip: false },
    });
    const store = await timed(
      rows,
      `migration (replays ${events} events once)`,
      () => HistoryStore.create({ database }),
    );
    await timed(rows, 'start-up: HistoryStore.create, nothing to migrate', () =>
      HistoryStore.create({ database }),
    );
    const state = await timed(
      rows,
      "start-up: recordedState (the recorder's baseline)",
      () => store.recordedState(),
    );
    await timed(rows, 'GET /history first page (50)', () =>
      store.list({ limit: 50 }),
    );
    await timed(rows, 'one observation recorded (a join)', () =>
      store.record(() => ({
        events: [
          {
            at: new Date().toISOString(),
            cluster: 'cluster-new',
            kind: 'joined',
            message: 'cluster-new joined the mesh',
          },
        ],
      })),
    );
    const half = await knex('mesh_history_events')
      .select('at')
      .orderBy('id', 'asc')
      .offset(Math.floor(events / 2))
      .limit(1);
    const deleted = await timed(rows, 'retention: delete the older half', () =>
      store.deleteOlderThan(half[0].at),
    );
    process.stdout.write(
      `\nmembership history on PostgreSQL, ${events} events (loaded in ${loadMs} ms; ` +
        `state: ${state.members.size} members, ${state.openFindings.size} open findings; retention deleted ${deleted})\n\n`,
    );
    const widths = [0, 1, 2, 3].map(i =>
      Math.max(
        ...[['step', 'time', 'heap growth', 'RSS after'], ...rows].map(
          r => r[i].length,
        ),
      ),
    );
    for (const r of [['step', 'time', 'heap growth', 'RSS after'], ...rows]) {
      process.stdout.write(
        `${r.map((c, i) => c.padEnd(widths[i])).join('  ')}\n`,
      );
    }
  } finally {
    await knex.destroy();
    await stopPostgres(pg.dir);
  }
}

main().catch(e => {
  process.stderr.write(`${e instanceof Error ? e.stack : String(e)}\n`);
  process.exit(1);
});
