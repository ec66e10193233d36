// The Clustify story (issue 14), shared by app_pg.mjs and app_drizzle.mjs: each app supplies the
// same request functions over its own stack, and this module asserts what every response shows.
// Every request function rejects with a NileAuthError (its .status is what an HTTP layer sends).
import { isDeepStrictEqual } from 'node:util';

/**
 * @typedef {{ id: string, name: string }} Cluster
 * @typedef {{ userId: string | null, pid: number, clusters: Cluster[] }} Listing
 * @typedef {object} Api
 * @property {(email: string, password: string) => Promise<any>} signup
 * @property {(refreshToken: string) => Promise<any>} refresh
 * @property {(token: string) => Promise<number>} logout
 * @property {(token: string, name: string) => Promise<{id: string, name: string}>} createTenant
 * @property {(token: string, tenantId: string, email: string) => Promise<any>} addMember
 * @property {(token: string, tenantId: string, name: string) => Promise<{id: string, tenantId: string, name: string}>} createCluster
 * @property {(token: string, tenantId: string, id: string, name: string) => Promise<number>} renameCluster
 * @property {(token: string | undefined, tenantId: string) => Promise<Listing>} listClusters
 * @property {(tenantId: string | null) => Promise<Listing>} listClustersWithoutToken
 * @property {(token: string, tenantId: string, otherTenantId: string, name: string) => Promise<number>} [plantCluster]
 * @property {(tenantId: string | null) => Promise<number>} [backendCount] a trusted backend job
 */

/**
 * Runs the story, prints `ok:` per check, and on the first failure prints `FAIL:` and exits 1.
 * Ends the pool.
 * @param {string} stack "pg" or "drizzle"
 * @param {Api} api
 * @param {import('pg').Pool} pool the app's pool, for the idle-connection check
 */
export async function runStory(stack, api, pool) {
  const label = `${stack}/${process.env.NILE_VIA ?? 'direct'}`;
  try {
    await story(label, stack, api, pool);
  } catch (e) {
    // A request failed that should not have: its status, SQLSTATE and the server's message.
    console.log(`FAIL: ${label}: ${e.status ?? ''} ${e.sqlstate ?? ''} ${e.message}`);
    console.error(e);
    process.exitCode = 1;
  } finally {
    await pool.end();
  }
}

async function story(label, stack, api, pool) {
  const run = process.env.NILE_RUN ?? String(process.pid);
  const check = (name, expected, actual) => {
    if (!isDeepStrictEqual(expected, actual)) {
      console.log(`FAIL: ${label}: ${name}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);
      process.exit(1); // the first failed check ends the run, as tests/client/*.sh do
    }
    console.log(`ok: ${label}: ${name}`);
  };
  // The HTTP status a request fails with, or "ok" if it succeeds.
  const status = (p) => p.then(() => 'ok', (e) => e.status ?? e);
  const names = (listing) => listing.clusters.map((c) => c.name);
  const password = 'correct horse battery';

  // 1. Sign up, tenants, membership.
  const shaun = await api.signup(`shaun-${run}-${stack}@clustify.dev`, password);
  const mary = await api.signup(`mary-${run}-${stack}@clustify.dev`, password);
  check('signup returns {id, email, tenants, token {jwt, maxAge, type}, refreshToken, sessionId}',
    [['email', 'id', 'refreshToken', 'sessionId', 'tenants', 'token'], ['jwt', 'maxAge', 'type'], 'ACCESS_TOKEN', [], 'nrt_'],
    [Object.keys(shaun).sort(), Object.keys(shaun.token).sort(), shaun.token.type, shaun.tenants,
      shaun.refreshToken.slice(0, 4)]);
  const managed = await api.createTenant(shaun.token.jwt, 'Managed Expenses');
  const side = await api.createTenant(mary.token.jwt, 'side project');
  check('shaun creates "Managed Expenses", mary "side project"', ['Managed Expenses', 'side project'], [managed.name, side.name]);
  const membership = await api.addMember(shaun.token.jwt, managed.id, mary.email);
  check('shaun adds mary to Managed Expenses as a member', [managed.id, mary.id, ['member']],
    [membership.tenantId, membership.userId, membership.roles]);

  // 2. Tenant isolation.
  const first = await api.createCluster(shaun.token.jwt, managed.id, 'MyFirstCluster');
  check('shaun inserts MyFirstCluster; tenant_id filled in from the context', managed.id, first.tenantId);
  check('mary in Managed Expenses sees it', ['MyFirstCluster'], names(await api.listClusters(mary.token.jwt, managed.id)));
  check('mary renames it', 1, await api.renameCluster(mary.token.jwt, managed.id, first.id, 'MyFirstCluster (renamed)'));
  const toy = await api.createCluster(mary.token.jwt, side.id, 'toy');
  check('mary in side project creates toy', side.id, toy.tenantId);
  check('shaun in Managed Expenses lists only the renamed cluster, never toy', ['MyFirstCluster (renamed)'],
    names(await api.listClusters(shaun.token.jwt, managed.id)));
  check('an update of toy from Managed Expenses touches no row', 0,
    await api.renameCluster(mary.token.jwt, managed.id, toy.id, 'hijacked'));
  check('shaun asking for side project gets 403', 403, await status(api.listClusters(shaun.token.jwt, side.id)));
  check('a write with no tenant says so: 409, no tenant is set', [409, 'no tenant is set'],
    await api.createCluster(shaun.token.jwt, null, 'nowhere').then(() => 'ok', (e) => [e.status, e.message]));
  // The two 403s are told apart by message and hint.
  const refusal = (p) => p.then(() => 'ok', (e) => [e.status, e.message.replace(/[0-9a-f-]{36}/g, '<uuid>'), e.hint?.includes('list_tenants()')]);
  check('not a member: 403, says so, and the hint points to list_tenants()',
    [403, 'user <uuid> is not a member of tenant <uuid>', true], await refusal(api.listClusters(shaun.token.jwt, side.id)));
  if (api.plantCluster) {
    check('a row naming another tenant (mary is a member of both): 403, the policy\'s message, no hint',
      [403, 'new row violates row-level security policy for table "clusters"', undefined],
      await refusal(api.plantCluster(mary.token.jwt, managed.id, side.id, 'planted')));
  }
  if (api.backendCount) {
    check('a trusted backend job in Managed Expenses sees its rows (and its own insert)', 2, await api.backendCount(managed.id));
    check('a trusted backend job with no tenant: 409, no tenant is set', [409, 'no tenant is set'],
      await api.backendCount(null).then(() => 'ok', (e) => [e.status, e.message]));
  }

  // 3. No token, bad token.
  check('no token (no set_context), tenant named: 401', 401, await status(api.listClustersWithoutToken(managed.id)));
  const nothing = await api.listClustersWithoutToken(null);
  check('no token and no tenant: no rows, no user', [[], null], [nothing.clusters, nothing.userId]);
  check('missing token through withContext: 401', 401, await status(api.listClusters(undefined, managed.id)));
  check('bad token: 401', 401, await status(api.listClusters('not-a-token', managed.id)));

  // 4. Concurrency: 40 requests over the pool, alternating users; a response carrying the other
  // user's identity or rows would mean context crossed from one request to the next.
  const expected = [
    { user: shaun.id, token: shaun.token.jwt, tenant: managed.id, names: ['MyFirstCluster (renamed)'] },
    { user: mary.id, token: mary.token.jwt, tenant: side.id, names: ['toy'] },
  ];
  const responses = await Promise.all(Array.from({ length: 40 }, (_, i) => {
    const e = expected[i % 2];
    return api.listClusters(e.token, e.tenant).then((r) => ({ e, r }));
  }));
  check('40 concurrent requests: each sees only its user\'s rows and user_id()', [],
    responses.filter(({ e, r }) => r.userId !== e.user || !isDeepStrictEqual(names(r), e.names)));
  const usersByPid = new Map();
  for (const { e, r } of responses) usersByPid.set(r.pid, (usersByPid.get(r.pid) ?? new Set()).add(e.user));
  check('some server backend served both users in turn', true, [...usersByPid.values()].some((s) => s.size === 2));
  // Hold every pooled connection at once, so each is checked, and ask it who it is.
  const clients = await Promise.all(Array.from({ length: pool.options.max }, () => pool.connect()));
  const idle = await Promise.all(clients.map(async (c) => (await c.query(
    `SELECT nile_auth.user_id() AS "userId",
            coalesce(current_setting('nile.tenant_id', true), '') AS tenant,
            coalesce(current_setting('nile.auth_token', true), '') AS token`)).rows[0]));
  clients.forEach((c) => c.release());
  check(`afterwards each of the ${clients.length} pooled connections has no identity, tenant or token`,
    clients.map(() => ({ userId: null, tenant: '', token: '' })), idle);

  // 5. Refresh and logout (after the concurrency check: logout ends Shaun's session).
  const renewed = await api.refresh(shaun.refreshToken);
  check('refresh: a new access token and refresh token for the same session', [shaun.sessionId, true, true],
    [renewed.sessionId, renewed.token.jwt !== shaun.token.jwt, renewed.refreshToken !== shaun.refreshToken]);
  const asRenewed = await api.listClusters(renewed.token.jwt, managed.id);
  check('the refreshed token works', [shaun.id, ['MyFirstCluster (renamed)']], [asRenewed.userId, names(asRenewed)]);
  check('logout with it ends one session', 1, Number(await api.logout(renewed.token.jwt)));
  check('after logout that token gets 401', 401, await status(api.listClusters(renewed.token.jwt, managed.id)));
  check('and so does the session\'s first token', 401, await status(api.listClusters(shaun.token.jwt, managed.id)));
  check('mary is still signed in', ['toy'], names(await api.listClusters(mary.token.jwt, side.id)));

  // 6. A taken email: signup raises 23505.
  check('duplicate signup (other letter case): 409', 409,
    await status(api.signup(shaun.email.toUpperCase(), 'another password')));
}
