// @ts-check

/**
 * Membership history: one row per change the recorder saw. `at` is an ISO 8601 string so SQLite
 * and PostgreSQL store, sort and return it alike; `id` orders the rows and is the page cursor.
 *
 * @param {import('knex').Knex} knex
 */
exports.up = async function up(knex) {
  await knex.schema.createTable('mesh_history_events', table => {
    table.comment('Changes of the mesh membership and of the audit findings');
    table.bigIncrements('id').primary();
    table.string('at', 32).notNullable();
    table.string('kind', 32).notNullable();
    table.string('cluster', 255).nullable();
    table.string('finding_id', 512).nullable();
    table.text('message').notNullable();
    table.index(['finding_id'], 'mesh_history_events_finding_id_idx');
  });
};

/** @param {import('knex').Knex} knex */
exports.down = async function down(knex) {
  await knex.schema.dropTable('mesh_history_events');
};
