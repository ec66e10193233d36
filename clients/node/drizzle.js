// Drizzle ORM over node-postgres: the same per-transaction context as withContext, so the ORM
// code inside stays plain. drizzle-orm is a peer dependency (the app's copy).
import { sql } from 'drizzle-orm';
import { PgTransaction } from 'drizzle-orm/pg-core';

/**
 * Runs fn in one Drizzle transaction as the token's user in tenantId (null: no tenant), like
 * withContext. Drizzle turns the interpolations into bind parameters ($1, $2), so the token never
 * appears in statement text; Drizzle rolls back on error and returns the connection to the pool.
 * Drizzle's errors list the parameters (the token) in their message: map them with fromDbError.
 * Unlike withContext, which destroys a connection whose ROLLBACK failed, Drizzle returns it to
 * the pool: prefer withContext where that matters.
 * @template T
 * @param {{ transaction: (fn: (tx: any) => Promise<T>) => Promise<T> }} db drizzle({ client: pool })
 * @param {string | null | undefined} token the user's access token (token.jwt); missing: 28000
 * @param {string | null | undefined} tenantId
 * @param {(tx: any) => Promise<T>} fn gets the Drizzle transaction; plain ORM code
 * @returns {Promise<T>}
 */
export function withDrizzleContext(db, token, tenantId, fn) {
  // Inside a transaction this would be a savepoint, and the context would outlive the request.
  if (db instanceof PgTransaction) {
    return Promise.reject(new Error('withDrizzleContext needs the database, not a transaction'));
  }
  return db.transaction(async (tx) => {
    await tx.execute(sql`select nile_auth.set_context(${token ?? ''}, ${tenantId ?? null}::uuid)`);
    return fn(tx);
  });
}
