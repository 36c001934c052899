// @ts-check

/**
 * The state the history leaves behind, kept beside the events so that a start-up reads a few rows
 * instead of replaying every event, and so that recording compares with it inside one locked
 * transaction: several backend replicas can then never store one change twice.
 * - mesh_history_members: the clusters that joined and have not left;
 * - mesh_history_open_findings: the findings raised and not cleared, with what they were raised
 *   with (the cleared event repeats it);
 * - mesh_history_meta: one row (id 1), the lock that serialises recording; when an observation
 *   was last recorded (null: never, so the first one is a baseline); and the replica that
 *   records, until when (a lease it renews while it runs, so one replica records at a time).
 * An index on `at` serves retention (`mesh.history.retentionDays`), which deletes old events.
 * Existing events are replayed once, here, into the new tables.
 *
 * @param {import('knex').Knex} knex
 */
exports.up = async function up(knex) {
  await knex.schema.createTable('mesh_history_members', table => {
    table.comment(
      'Clusters that joined the mesh and have not left, as the history says',
    );
    table.string('cluster', 255).primary();
  });
  await knex.schema.createTable('mesh_history_open_findings', table => {
    table.comment('Audit findings raised and not cleared, as the history says');
    table.string('finding_id', 512).primary();
    table.string('cluster', 255).nullable();
    table.text('message').notNullable();
  });
  await knex.schema.createTable('mesh_history_meta', table => {
    table.comment(
      'One row: the recording lock, and when an observation was last recorded',
    );
    table.integer('id').primary();
    table.string('recorded_at', 32).nullable();
    table.string('leader', 64).nullable();
    table.string('lease_expires_at', 32).nullable();
  });
  await knex.schema.alterTable('mesh_history_events', table => {
    table.index(['at'], 'mesh_history_events_at_idx');
  });

  /** @type {Set<string>} */
  const members = new Set();
  /** @type {Map<string, { cluster: string | null, message: string }>} */
  const open = new Map();
  let last = null;
  let after = 0;
  for (;;) {
    const rows = await knex('mesh_history_events')
      .select('id', 'at', 'kind', 'cluster', 'finding_id', 'message')
      .where('id', '>', after)
      .orderBy('id', 'asc')
      .limit(10000);
    if (rows.length === 0) break;
    for (const row of rows) {
      if (row.kind === 'joined' && row.cluster) members.add(row.cluster);
      if (row.kind === 'left' && row.cluster) members.delete(row.cluster);
      if (row.kind === 'finding-raised' && row.finding_id) {
        open.set(row.finding_id, {
          cluster: row.cluster,
          message: row.message,
        });
      }
      if (row.kind === 'finding-cleared' && row.finding_id)
        open.delete(row.finding_id);
      last = row.at;
    }
    after = Number(rows[rows.length - 1].id);
  }
  if (members.size) {
    await knex('mesh_history_members').insert(
      [...members].map(cluster => ({ cluster })),
    );
  }
  if (open.size) {
    await knex('mesh_history_open_findings').insert(
      [...open].map(([findingId, f]) => ({
        finding_id: findingId,
        cluster: f.cluster,
        message: f.message,
      })),
    );
  }
  await knex('mesh_history_meta').insert({ id: 1, recorded_at: last });
};

/** @param {import('knex').Knex} knex */
exports.down = async function down(knex) {
  await knex.schema.alterTable('mesh_history_events', table => {
    table.dropIndex(['at'], 'mesh_history_events_at_idx');
  });
  await knex.schema.dropTable('mesh_history_meta');
  await knex.schema.dropTable('mesh_history_open_findings');
  await knex.schema.dropTable('mesh_history_members');
};
