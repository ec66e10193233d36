-- Holes around isolated tables (issue 10, class 8). Each attack here worked against 0.1.0:
-- partitions read directly showed every tenant's rows, TRUNCATE emptied every tenant, a
-- permissive policy already on the table kept it open. As plain roles: holes_owner owns the
-- tables (not a backend), holes_web is an end-user role, nile_app a trusted backend.
\c - postgres
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'holes_owner') THEN CREATE ROLE holes_owner LOGIN; END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'holes_web') THEN CREATE ROLE holes_web LOGIN; END IF;
END $$;
GRANT USAGE ON SCHEMA nile_auth TO holes_owner, holes_web;
DO $$ BEGIN EXECUTE format('GRANT CREATE ON DATABASE %I TO holes_owner', current_database()); END $$;
CREATE SCHEMA holes AUTHORIZATION holes_owner;
GRANT USAGE ON SCHEMA holes TO holes_web, nile_app;
SELECT (nile_auth.signup('alice@holes.test', 'alice password 1', NULL, 'Alice Co')->'tenants'->>0) AS alice_co \gset
SELECT (nile_auth.signup('bob@holes.test', 'bob password 1', NULL, 'Bob Co')->'tenants'->>0) AS bob_co \gset
SELECT nile_auth.login('alice@holes.test', 'alice password 1')->'token'->>'jwt' AS alice \gset
SELECT nile_auth.login('bob@holes.test', 'bob password 1')->'token'->>'jwt' AS bob \gset

-- Partitions: one before enable_tenant_isolation, one created after, one attached after.
\c - holes_owner
CREATE TABLE holes.events (id int, tenant_id uuid, body text) PARTITION BY RANGE (id);
CREATE TABLE holes.events_1 PARTITION OF holes.events FOR VALUES FROM (0) TO (100);
SELECT nile_auth.enable_tenant_isolation('holes.events');
CREATE TABLE holes.events_2 PARTITION OF holes.events FOR VALUES FROM (100) TO (200);
CREATE TABLE holes.events_3 (LIKE holes.events INCLUDING DEFAULTS);
ALTER TABLE holes.events ATTACH PARTITION holes.events_3 FOR VALUES FROM (200) TO (300);
-- A partition of a partition, created later still.
CREATE TABLE holes.events_4 PARTITION OF holes.events FOR VALUES FROM (300) TO (400) PARTITION BY RANGE (id);
CREATE TABLE holes.events_4a PARTITION OF holes.events_4 FOR VALUES FROM (300) TO (350);
-- A partition created inside CREATE SCHEMA (a subcommand the event trigger sees too).
CREATE SCHEMA holes_more CREATE TABLE events_5 PARTITION OF holes.events FOR VALUES FROM (400) TO (500);
GRANT USAGE ON SCHEMA holes_more TO holes_web, nile_app;
-- Isolating a partition alone would leave the rest of its tree open: refused.
SELECT test_util.try($$SELECT nile_auth.enable_tenant_isolation('holes.events_1')$$) AS isolate_one_partition;
GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON holes.events, holes.events_1, holes.events_2, holes.events_3, holes.events_4, holes.events_4a, holes_more.events_5 TO holes_web, nile_app;
SELECT c.relname, c.relrowsecurity AS rls, c.relforcerowsecurity AS forced,
       EXISTS (SELECT FROM pg_policy p WHERE p.polrelid = c.oid AND p.polname = 'tenant_isolation') AS policy,
       EXISTS (SELECT FROM pg_trigger t WHERE t.tgrelid = c.oid AND t.tgname = 'tenant_isolation_truncate') AS truncate_guard
  FROM pg_class c WHERE c.relnamespace IN ('holes'::regnamespace, 'holes_more'::regnamespace) AND c.relkind IN ('r', 'p') ORDER BY c.relname;

\c - holes_web
BEGIN;
SELECT nile_auth.set_context(:'alice', :'alice_co') IS NOT NULL AS alice_in;
INSERT INTO holes.events (id, body) VALUES (1, 'alice 1'), (150, 'alice 2'), (250, 'alice 3'), (320, 'alice 4'), (450, 'alice 5');
COMMIT;
BEGIN;
SELECT nile_auth.set_context(:'bob', :'bob_co') IS NOT NULL AS bob_in;
INSERT INTO holes.events (id, body) VALUES (2, 'bob 1'), (151, 'bob 2'), (251, 'bob 3'), (321, 'bob 4'), (451, 'bob 5');
COMMIT;
-- Bob reads each partition directly: only his rows.
SET nile.auth_token = :'bob';
SET nile.tenant_id = :'bob_co';
SELECT 'events_1' AS t, body FROM holes.events_1 UNION ALL SELECT 'events_2', body FROM holes.events_2
UNION ALL SELECT 'events_3', body FROM holes.events_3 UNION ALL SELECT 'events_4', body FROM holes.events_4
UNION ALL SELECT 'events_4a', body FROM holes.events_4a UNION ALL SELECT 'events_5', body FROM holes_more.events_5
ORDER BY 1, 2;
-- Nor can he write into Alice's tenant through a partition.
SELECT test_util.try(format($$INSERT INTO holes.events_2 (id, tenant_id, body) VALUES (160, %L, 'forged')$$, :'alice_co')) AS forge_into_partition;

-- TRUNCATE skips row-level security: refused to end users and to the table's owner, who are not
-- trusted backends; on the parent and on each partition.
SELECT test_util.try('TRUNCATE holes.events') AS end_user_truncates;
SELECT test_util.try('TRUNCATE holes.events_3') AS end_user_truncates_partition;
RESET nile.tenant_id;
RESET nile.auth_token;
\c - holes_owner
SELECT test_util.try('TRUNCATE holes.events_1') AS owner_truncates_partition;
-- Disabling the guard does not stick: the event trigger switches it back on.
ALTER TABLE holes.events_2 DISABLE TRIGGER tenant_isolation_truncate;
SELECT tgenabled FROM pg_trigger WHERE tgrelid = 'holes.events_2'::regclass AND tgname = 'tenant_isolation_truncate';
SELECT test_util.try('TRUNCATE holes.events_2') AS owner_truncates_after_disabling_guard;
-- Nor may the owner widen the policy itself.
SELECT test_util.try($$ALTER POLICY tenant_isolation ON holes.events_3 USING (true)$$) AS widen_the_policy;
-- A table brought into the tree with a permissive policy of its own is refused.
CREATE TABLE holes.events_6 (LIKE holes.events INCLUDING DEFAULTS);
ALTER TABLE holes.events_6 ENABLE ROW LEVEL SECURITY;
CREATE POLICY open_door ON holes.events_6 USING (true);
SELECT test_util.try($$ALTER TABLE holes.events ATTACH PARTITION holes.events_6 FOR VALUES FROM (600) TO (700)$$) AS attach_with_permissive_policy;
\c - nile_app
SELECT test_util.try('TRUNCATE holes.events_4a') AS backend_truncates;
\c - postgres
SELECT count(*) AS rows_left FROM holes.events;

-- A permissive policy already on the table would be ORed with tenant_isolation: refused, named.
\c - holes_owner
CREATE TABLE holes.notes (id int PRIMARY KEY, body text, code text UNIQUE, ref text, tenant_id uuid);
-- tenant_id only INCLUDEd is not part of the key: reported too.
CREATE UNIQUE INDEX notes_ref_key ON holes.notes (ref) INCLUDE (tenant_id);
ALTER TABLE holes.notes ENABLE ROW LEVEL SECURITY;
CREATE POLICY everyone ON holes.notes USING (true);
CREATE POLICY also_everyone ON holes.notes FOR SELECT USING (true);
SELECT test_util.try($$SELECT nile_auth.enable_tenant_isolation('holes.notes')$$) AS with_permissive_policies;
DROP POLICY everyone ON holes.notes;
DROP POLICY also_everyone ON holes.notes;
-- A restrictive policy only narrows: kept. Unique keys without tenant_id are reported, one
-- WARNING each (a 23505 would tell one tenant that another has the value).
CREATE POLICY short_bodies ON holes.notes AS RESTRICTIVE USING (length(body) < 100);
SELECT nile_auth.enable_tenant_isolation('holes.notes') AS isolated;
-- A table that INHERITS from an isolated one shows its rows through it: isolated too.
CREATE TABLE holes.notes_old (archived date) INHERITS (holes.notes);
SELECT c.relrowsecurity AS rls, c.relforcerowsecurity AS forced,
       EXISTS (SELECT FROM pg_policy p WHERE p.polrelid = c.oid AND p.polname = 'tenant_isolation') AS policy,
       EXISTS (SELECT FROM pg_trigger t WHERE t.tgrelid = c.oid AND t.tgname = 'tenant_isolation_truncate') AS truncate_guard
  FROM pg_class c WHERE c.oid = 'holes.notes_old'::regclass;
-- One that joins later with ALTER TABLE … INHERIT gets forced row-level security and the
-- TRUNCATE guard.
CREATE TABLE holes.notes_older (LIKE holes.notes INCLUDING DEFAULTS, archived date);
ALTER TABLE holes.notes_older INHERIT holes.notes;
SELECT c.relrowsecurity AS rls, c.relforcerowsecurity AS forced,
       EXISTS (SELECT FROM pg_trigger t WHERE t.tgrelid = c.oid AND t.tgname = 'tenant_isolation_truncate') AS truncate_guard
  FROM pg_class c WHERE c.oid = 'holes.notes_older'::regclass;
-- After enable, a new permissive policy is refused too; a restrictive one is fine.
SELECT test_util.try($$CREATE POLICY backdoor ON holes.notes USING (true)$$) AS add_permissive_policy;
SELECT test_util.try($$CREATE POLICY backdoor ON holes.events_2 FOR SELECT USING (true)$$) AS add_permissive_policy_on_partition;
SELECT test_util.try($$CREATE POLICY narrower ON holes.notes AS RESTRICTIVE USING (id > 0)$$) AS add_restrictive_policy;
-- A key that includes tenant_id is not reported.
CREATE TABLE holes.tags (tenant_id uuid, name text, PRIMARY KEY (tenant_id, name));
SELECT nile_auth.enable_tenant_isolation('holes.tags') AS isolated_quietly;
-- disable_tenant_isolation takes the partitions' policies and guards away too.
SELECT nile_auth.disable_tenant_isolation('holes.events');
SELECT count(*) FILTER (WHERE c.relrowsecurity) AS rls_left,
       count(*) FILTER (WHERE EXISTS (SELECT FROM pg_policy p WHERE p.polrelid = c.oid)) AS policies_left,
       count(*) FILTER (WHERE EXISTS (SELECT FROM pg_trigger t WHERE t.tgrelid = c.oid AND t.tgname = 'tenant_isolation_truncate')) AS guards_left
  FROM pg_class c WHERE c.relname LIKE 'events%' AND c.relname <> 'events_6'
   AND c.relnamespace IN ('holes'::regnamespace, 'holes_more'::regnamespace);
\c - postgres
DROP SCHEMA holes CASCADE;
DROP SCHEMA holes_more CASCADE;
DO $$ BEGIN EXECUTE format('REVOKE CREATE ON DATABASE %I FROM holes_owner', current_database()); END $$;
