// Clustify over Drizzle ORM (drizzle-orm/node-postgres on a pg.Pool): each request is one
// withDrizzleContext transaction; the ORM code inside is plain Drizzle.
import pg from 'pg';
import { eq, sql } from 'drizzle-orm';
import { drizzle } from 'drizzle-orm/node-postgres';
import { pgSchema, primaryKey, text, uuid } from 'drizzle-orm/pg-core';
import { fromDbError } from 'nile-auth-client';
import { withDrizzleContext } from 'nile-auth-client/drizzle';
import { runStory } from './story.mjs';

// tests/clients/schema.sql's table. tenant_id's default (set by enable_tenant_isolation) is the
// context's tenant, so inserts leave it out.
const clusters = pgSchema('clustify').table('clusters', {
  tenantId: uuid('tenant_id').notNull().default(sql`nile_auth.tenant_id()`),
  id: uuid('id').notNull().defaultRandom(),
  name: text('name').notNull(),
}, (t) => [primaryKey({ columns: [t.tenantId, t.id] })]);

const env = process.env;
const pool = new pg.Pool({
  host: env.NILE_DB_HOST, port: Number(env.NILE_DB_PORT), database: env.NILE_DB_NAME,
  user: env.NILE_DB_USER, max: 4,
});
const db = drizzle({ client: pool });

// What an HTTP handler does with any failure: NileAuthError carries the status to send. Drizzle
// wraps pg's error (its message lists the parameters, tokens included); fromDbError unwraps it.
const request = (fn) => async (...args) => {
  try { return await fn(...args); } catch (e) { throw fromDbError(e); }
};
// The single jsonb value a nile_auth function returns (pg parses it into an object).
const value = async (q, query) => (await q.execute(query)).rows[0].v;

async function listClusters(q) {
  const rows = await q.select({ id: clusters.id, name: clusters.name }).from(clusters).orderBy(clusters.name);
  const who = await q.execute(sql`select nile_auth.user_id() as "userId", pg_backend_pid() as pid`);
  return { ...who.rows[0], clusters: rows };
}

const api = {
  // No identity needed: signing up and refreshing are what a signed-out client does.
  signup: request((email, password) => value(db, sql`select nile_auth.signup(${email}, ${password}) as v`)),
  refresh: request((refreshToken) => value(db, sql`select nile_auth.refresh(${refreshToken}) as v`)),

  logout: request((token) => withDrizzleContext(db, token, null, (tx) => value(tx, sql`select nile_auth.logout() as v`))),
  createTenant: request((token, name) =>
    withDrizzleContext(db, token, null, (tx) => value(tx, sql`select nile_auth.create_tenant(${name}) as v`))),
  addMember: request((token, tenantId, email) => withDrizzleContext(db, token, null, (tx) =>
    value(tx, sql`select nile_auth.add_member(${tenantId}::uuid, ${email}) as v`))),

  createCluster: request((token, tenantId, name) => withDrizzleContext(db, token, tenantId, async (tx) =>
    (await tx.insert(clusters).values({ name }).returning())[0])),
  renameCluster: request((token, tenantId, id, name) => withDrizzleContext(db, token, tenantId, async (tx) =>
    (await tx.update(clusters).set({ name }).where(eq(clusters.id, id)).returning({ id: clusters.id })).length)),
  listClusters: request((token, tenantId) => withDrizzleContext(db, token, tenantId, listClusters)),

  // A handler that forgot set_context: the tenant alone (a transaction-local setting, as a bind
  // parameter) is refused for an end-user role without a token; with no tenant it sees nothing.
  listClustersWithoutToken: request((tenantId) => db.transaction(async (tx) => {
    if (tenantId) await tx.execute(sql`select set_config('nile.tenant_id', ${tenantId}, true)`);
    return listClusters(tx);
  })),
};

await runStory('drizzle', api, pool);
