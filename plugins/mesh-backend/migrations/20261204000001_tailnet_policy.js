// @ts-check

/**
 * The tailnet policy file as one replica last read it from the Tailscale API (once per interval
 * for the whole deployment: the replica that claims the read by updating `attempted_at` first),
 * so every replica's audit judges the same file without each polling Tailscale. One row, id 1.
 * `error` is why the last read failed (redacted: never a credential), null after a read that
 * worked.
 *
 * @param {import('knex').Knex} knex
 */
exports.up = async function up(knex) {
  await knex.schema.createTable('mesh_tailnet_policy', table => {
    table.comment(
      'The tailnet policy file as last read from the Tailscale API',
    );
    table.integer('id').primary();
    table.string('etag', 255).nullable();
    table.text('text').nullable();
    table.string('read_at', 32).nullable();
    table.text('error').nullable();
    table.string('attempted_at', 32).notNullable();
  });
};

/** @param {import('knex').Knex} knex */
exports.down = async function down(knex) {
  await knex.schema.dropTable('mesh_tailnet_policy');
};
