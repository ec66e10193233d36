-- What reaches the workers. The rows are there, so the workers need the caller's identity, but
-- never its token: tokens must not show in pg_stat_activity. authenticate(…, true) forwards a
-- credential that verifies only inside the distributed transaction it was made for, and a worker
-- masks even that one in its pg_stat_activity.
\c - postgres
-- How many backends on each worker show `secret` in pg_stat_activity (to the caller's role, as
-- citus_stat_activity does). The query sent carries it as hex, so it does not find itself.
CREATE FUNCTION public.shown_on_workers(secret text) RETURNS text LANGUAGE sql AS $$
  SELECT string_agg(DISTINCT result, ',' ORDER BY result) FROM run_command_on_workers(format(
    'SELECT count(*) FROM pg_stat_activity WHERE strpos(query, convert_from(decode(%L, ''hex''), ''UTF8'')) > 0',
    encode(convert_to(secret, 'UTF8'), 'hex'))) WHERE secret <> ''
$$;
SELECT id AS managed FROM nile_auth.tenants WHERE name = 'Managed Expenses' \gset
\c - clustify_web
SELECT nile_auth.login('shaun@clustify.dev', 'shaun password 1')->'token'->>'jwt' AS shaun \gset
\set count_managed 'SELECT count(*) FROM clustify.clusters WHERE tenant_id = ' :'managed'
-- Context set before the transaction reaches a worker: the SET travels with its BEGIN.
BEGIN;
SELECT nile_auth.set_context(:'shaun', :'managed') IS NOT NULL AS context;
SELECT count(*) AS seen FROM clustify.clusters WHERE tenant_id = :'managed';
SELECT shown_on_workers(split_part(:'shaun', '.', 3)) AS token_on_workers;
COMMIT;
-- Context set again after a write: the SET goes alone to the worker in the transaction and stays
-- its last statement while the transaction lasts.
BEGIN;
SELECT nile_auth.set_context(:'shaun', :'managed') IS NOT NULL AS context;
UPDATE clustify.clusters SET name = name WHERE tenant_id = :'managed';
SELECT nile_auth.authenticate(:'shaun', true) IS NOT NULL AS shaun_in;
SELECT coalesce(current_setting('nile_auth.forwarded_identity', true), '') AS forwarded \gset
SELECT shown_on_workers(split_part(:'shaun', '.', 3)) AS token_on_workers,
       shown_on_workers(split_part(:'forwarded', '.', 3)) AS forwarded_on_workers,
       shown_on_workers($$nile_auth.forwarded_identity = E'(masked)'$$) AS masked_on_workers,
       :'forwarded' LIKE 'ey%.%.%' AS forwarded_is_set, :'forwarded' <> :'shaun' AS not_the_token;
-- The workers know the caller from it: rows, user and claims.
SELECT count(*) AS seen, bool_and(nile_auth.user_id() IS NOT NULL) AS user_on_worker,
       min(nile_auth.claims()->>'email') AS claims_on_worker,
       bool_and(inet_server_port() <> (SELECT nodeport FROM pg_dist_node WHERE groupid = 0)) AS on_a_worker
  FROM clustify.clusters WHERE tenant_id = :'managed';
COMMIT;
-- The coordinator keeps to the token: RESET drops the identity there, as on one node.
BEGIN;
SELECT nile_auth.set_context(:'shaun', :'managed') IS NOT NULL AS context;
RESET nile.auth_token;
SELECT nile_auth.user_id() IS NULL AS reset_drops_identity;
ROLLBACK;
-- A client cannot set it (42501): on the coordinator Citus would forward it to the workers as
-- if nile_auth had.
BEGIN;
SELECT try(format('SET LOCAL nile_auth.forwarded_identity = %L', :'forwarded')) AS replayed_on_coordinator;
ROLLBACK;
-- Where it can be set, on connections named as Citus names its own (run_command_on_workers opens
-- such connections; so can a client connecting to a worker), in any transaction other than the
-- one it was made for it proves nothing: 28000, no rows.
SELECT DISTINCT success, result AS replayed_through_run_command
  FROM run_command_on_workers(format('SELECT nile_auth.me() FROM (SELECT set_config(%L, %L, false)) s',
                                     'nile_auth.forwarded_identity', :'forwarded'));
SELECT get_shard_id_for_distribution_column('clustify.clusters', :'managed') AS shard \gset
SELECT format('host=localhost port=%s application_name=''citus_internal gpid=10000000001''', n.nodeport) AS on_worker
  FROM pg_dist_placement p JOIN pg_dist_node n USING (groupid) WHERE p.shardid = :shard \gset
\c -reuse-previous=on :on_worker
BEGIN;
SET LOCAL nile_auth.forwarded_identity = :'forwarded';
SELECT try('SELECT nile_auth.me()') AS replayed_on_worker;
SET LOCAL nile.tenant_id = :'managed';
SELECT try(format('SELECT count(*) FROM clustify.clusters_%s WHERE tenant_id = %L', :shard, :'managed')) AS replayed_on_shard;
ROLLBACK;
