// nile-auth-client: one request = one transaction that carries the user's token and tenant, over
// node-postgres. Plain ESM with JSDoc types; nothing to build. Drizzle ORM: ./drizzle.js.

/**
 * HTTP status for each SQLSTATE that nile_auth raises (docs/api.md, "SQLSTATEs"); anything
 * else is 500. The one place this mapping lives.
 * @type {Readonly<Record<string, number>>}
 */
export const HTTP_STATUS_BY_SQLSTATE = Object.freeze({
  '28000': 401, // bad, expired or ended token; no token where one is needed
  '28P01': 401, // wrong email or password
  '42501': 403, // not a member of the tenant; not allowed
  'P0002': 404, // unknown tenant, user, session (or one the caller may not see)
  '23505': 409, // email already registered
  '22023': 400, // malformed input
  '22P02': 400, // a tenant id that is not a uuid
  '55000': 409, // not in the required state (e.g. the last owner leaving)
  '40001': 503, // serialization failure: retry
});

/** A database failure as the HTTP layer should see it. */
export class NileAuthError extends Error {
  /**
   * @param {number} status HTTP status
   * @param {string | undefined} sqlstate the server's SQLSTATE, when there was one
   * @param {string} message
   * @param {unknown} [cause]
   * @param {string} [hint] the server's HINT: what to do (the two 42501s, "not a member" and a
   *   row of another tenant, differ in message and hint)
   */
  constructor(status, sqlstate, message, cause, hint) {
    super(message, { cause });
    this.name = 'NileAuthError';
    this.status = status;
    this.sqlstate = sqlstate;
    this.hint = hint;
  }

  /**
   * Maps an error thrown by pg (or by Drizzle, which wraps pg's error in `cause`) to a
   * NileAuthError. Only the server's message is kept: Drizzle's own message lists the query's
   * parameters, tokens and passwords included, so it must not reach a response or a log.
   * @param {unknown} e
   * @returns {NileAuthError}
   */
  static fromDbError(e) {
    if (e instanceof NileAuthError) return e;
    for (let c = e; c instanceof Error; c = c.cause) {
      // pg's DatabaseError: a server error, with severity and SQLSTATE (Node's own errors, such
      // as EPIPE, have a code but no severity).
      const { code, severity } = /** @type {{code?: unknown, severity?: unknown}} */ (c);
      if (typeof code === 'string' && typeof severity === 'string') {
        const { hint } = /** @type {{hint?: string}} */ (c);
        return new NileAuthError(HTTP_STATUS_BY_SQLSTATE[code] ?? 500, code, c.message, c, hint);
      }
    }
    // Not a server error. Drizzle's wrapper (it has `params`) is dropped from the cause chain:
    // its message lists the token, and loggers print causes.
    let cause = e;
    while (cause instanceof Error && 'params' in cause) cause = cause.cause;
    return new NileAuthError(500, undefined, 'internal error', cause);
  }
}

export const fromDbError = NileAuthError.fromDbError;

/**
 * The parts of pg's Pool and PoolClient used here (pg itself is the app's dependency).
 * @typedef {{ rows: any[], rowCount: number | null }} QueryResult
 * @typedef {{ query: (text: string, values?: unknown[]) => Promise<QueryResult>,
 *             release: (err?: Error | boolean) => void }} PoolClient
 * @typedef {{ connect: () => Promise<PoolClient> }} Pool
 */

/**
 * Runs fn in one transaction as the token's user in tenantId (null: no tenant). The token and
 * tenant are bind parameters, so neither appears in statement text (pg_stat_activity, logs), and
 * set_context scopes both to this transaction: the next user of the pooled connection (or of a
 * pgbouncer server connection in transaction mode) inherits nothing.
 * @template T
 * @param {Pool} pool a pg.Pool
 * @param {string | null | undefined} token the user's access token (token.jwt)
 * @param {string | null | undefined} tenantId
 * @param {(client: PoolClient) => Promise<T>} fn
 * @returns {Promise<T>}
 */
export async function withContext(pool, token, tenantId, fn) {
  const client = await pool.connect();
  /** @type {Error | undefined} */
  let broken;
  try {
    await client.query('BEGIN');
    // A missing token is sent as '', which set_context refuses like a bad one (28000: 401; NULL
    // would be 22023). pg binds strings untyped; ::uuid keeps the tenant a uuid wherever
    // PostgreSQL would infer text (42883: no function set_context(unknown, text)).
    await client.query('SELECT nile_auth.set_context($1, $2::uuid)', [token ?? '', tenantId ?? null]);
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (e) {
    // A connection whose ROLLBACK failed is in an unknown state: destroy it, never reuse it.
    await client.query('ROLLBACK').catch((err) => { broken = err; });
    throw e;
  } finally {
    client.release(broken);
  }
}
