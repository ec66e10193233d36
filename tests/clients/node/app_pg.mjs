// Clustify over node-postgres (pg): each request is one withContext transaction on a pg.Pool.
//
// Prepared statements: pg uses the unnamed statement unless a query has a `name`, and unnamed
// statements work through pgbouncer in transaction mode (every query here). Named ones break
// behind pgbouncer 1.18 in transaction mode: pg parses a name once per client connection, but
// pgbouncer gives each transaction whichever server connection is free. Tried with pgbouncer
// 1.18.0: with one server connection the second client's first use fails with 42P05 ("prepared
// statement … already exists"); with two, a client whose next transaction lands on the other
// server connection fails with 26000 ("… does not exist"). So no query here has a `name`.
import pg from 'pg';
import { withContext, fromDbError } from 'nile-auth-client';
import { runStory } from './story.mjs';

const env = process.env;
const connection = { host: env.NILE_DB_HOST, port: Number(env.NILE_DB_PORT), database: env.NILE_DB_NAME };
const pool = new pg.Pool({ ...connection, user: env.NILE_DB_USER, max: 4 });

// What an HTTP handler does with any failure: NileAuthError carries the status to send.
const request = (fn) => async (...args) => {
  try { return await fn(...args); } catch (e) { throw fromDbError(e); }
};
// The single jsonb value a nile_auth function returns (pg parses it into an object).
const value = async (db, text, params) => (await db.query(text, params)).rows[0].v;

async function listClusters(db) {
  const { rows } = await db.query('SELECT id, name FROM clustify.clusters ORDER BY name');
  const who = await db.query('SELECT nile_auth.user_id() AS "userId", pg_backend_pid() AS pid');
  return { ...who.rows[0], clusters: rows };
}

const api = {
  // No identity needed: signing up and refreshing are what a signed-out client does.
  signup: request((email, password) => value(pool, 'SELECT nile_auth.signup($1, $2) AS v', [email, password])),
  refresh: request((refreshToken) => value(pool, 'SELECT nile_auth.refresh($1) AS v', [refreshToken])),

  logout: request((token) => withContext(pool, token, null, (c) => value(c, 'SELECT nile_auth.logout() AS v'))),
  createTenant: request((token, name) =>
    withContext(pool, token, null, (c) => value(c, 'SELECT nile_auth.create_tenant($1) AS v', [name]))),
  addMember: request((token, tenantId, email) =>
    withContext(pool, token, null, (c) => value(c, 'SELECT nile_auth.add_member($1::uuid, $2) AS v', [tenantId, email]))),

  createCluster: request((token, tenantId, name) => withContext(pool, token, tenantId, async (c) =>
    (await c.query('INSERT INTO clustify.clusters (name) VALUES ($1) RETURNING id, tenant_id AS "tenantId", name', [name])).rows[0])),
  renameCluster: request((token, tenantId, id, name) => withContext(pool, token, tenantId, async (c) =>
    (await c.query('UPDATE clustify.clusters SET name = $2 WHERE id = $1::uuid', [id, name])).rowCount)),
  listClusters: request((token, tenantId) => withContext(pool, token, tenantId, listClusters)),

  // A row naming another tenant than the context's: refused by the policy, not by set_context.
  plantCluster: request((token, tenantId, otherTenantId, name) => withContext(pool, token, tenantId, async (c) =>
    (await c.query('INSERT INTO clustify.clusters (name, tenant_id) VALUES ($1, $2::uuid)', [name, otherTenantId])).rowCount)),

  // A job with no end user, as the trusted backend role: the tenant a bind parameter of
  // set_tenant(…, true), checked and scoped to the transaction (rolled back: it leaves no row).
  backendCount: request(async (tenantId) => {
    const client = new pg.Client({ ...connection, user: env.NILE_DB_BACKEND_USER });
    await client.connect();
    try {
      await client.query('BEGIN');
      if (tenantId) await client.query('SELECT nile_auth.set_tenant($1::uuid, true)', [tenantId]);
      await client.query("INSERT INTO clustify.clusters (name) VALUES ('backend job')");
      return Number((await client.query('SELECT count(*) AS n FROM clustify.clusters')).rows[0].n);
    } finally {
      await client.query('ROLLBACK').catch(() => {});
      await client.end();
    }
  }),

  // A handler that forgot set_context: the tenant alone (a transaction-local setting, as a bind
  // parameter) is refused for an end-user role without a token; with no tenant it sees nothing.
  listClustersWithoutToken: request(async (tenantId) => {
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      if (tenantId) await client.query("SELECT set_config('nile.tenant_id', $1, true)", [tenantId]);
      return await listClusters(client);
    } finally {
      await client.query('ROLLBACK');
      client.release();
    }
  }),
};

await runStory('pg', api, pool);
