-- Tenant and membership functions, the permission matrix, and what end users see of the
-- built-in tables. Ann owns "acme"; Bob is a member; Cat is an admin; Dan is an outsider.
\c - nile_app
SELECT nile_auth.signup('ann@acme.test', 'ann password 1', 'Ann', 'acme')->'token'->>'jwt' AS ann \gset
SELECT nile_auth.signup('bob@acme.test', 'bob password 1', 'Bob')->'token'->>'jwt' AS bob \gset
SELECT nile_auth.signup('cat@acme.test', 'cat password 1', 'Cat')->'token'->>'jwt' AS cat \gset
SELECT nile_auth.signup('dan@other.test', 'dan password 1', 'Dan', 'dan corp')->'token'->>'jwt' AS dan \gset
SELECT id AS bob_id FROM nile_auth.users WHERE email = 'bob@acme.test' \gset
SELECT id AS cat_id FROM nile_auth.users WHERE email = 'cat@acme.test' \gset
SELECT id AS dan_id FROM nile_auth.users WHERE email = 'dan@other.test' \gset
SELECT id AS ann_id FROM nile_auth.users WHERE email = 'ann@acme.test' \gset

SELECT nile_auth.authenticate(:'ann') IS NOT NULL AS ann_in;
SELECT (nile_auth.me()->'tenants'->>0) AS acme \gset
SELECT array_agg(t->>'name') AS ann_tenants FROM nile_auth.list_tenants() t;
-- No tenant set: list_users needs one.
SELECT test_util.try('SELECT nile_auth.list_users()') AS list_users_without_tenant;
SELECT test_util.try('SELECT nile_auth.create_tenant_user(''eve@acme.test'', ''eve password 1'')') AS create_user_without_tenant;
SELECT nile_auth.set_tenant(:'acme') IS NOT NULL AS in_acme;
-- Any member may add users as plain members; only owners and admins grant roles.
SELECT nile_auth.add_member(:'acme', 'bob@acme.test')->'roles' AS bob_roles;
SELECT nile_auth.add_member(:'acme', 'CAT@acme.test', '{admin}')->'roles' AS cat_roles;
SELECT test_util.try($$SELECT nile_auth.add_member('$$ || :'acme' || $$', 'nobody@acme.test')$$) AS add_unknown_email;
SELECT test_util.try($$SELECT nile_auth.add_member('$$ || :'acme' || $$', 'bob@acme.test', '{}')$$) AS empty_roles;
SELECT test_util.try($$SELECT nile_auth.add_member(NULL, 'bob@acme.test')$$) AS null_tenant;
SELECT nile_auth.create_tenant_user('eve@acme.test', 'eve password 1', 'Eve') - '{id,created,updated,tenants}'::text[] AS eve;
SELECT array_agg(u->>'email' ORDER BY u->>'email') AS acme_members FROM nile_auth.list_users() u;

-- Bob (member): can add members, cannot grant roles, remove others, rename or delete.
SELECT nile_auth.authenticate(:'bob') IS NOT NULL AS bob_in;
SELECT nile_auth.set_tenant(:'acme') IS NOT NULL AS in_acme;
SELECT test_util.try($$SELECT nile_auth.add_member('$$ || :'acme' || $$', 'dan@other.test', '{admin}')$$) AS member_grants_admin;
SELECT test_util.try(format('SELECT nile_auth.unlink_user(%L)', :'cat_id')) AS member_removes_other;
SELECT test_util.try(format('SELECT nile_auth.rename_tenant(%L, %L)', :'acme', 'bob''s now')) AS member_renames;
SELECT test_util.try(format('SELECT nile_auth.delete_tenant(%L)', :'acme')) AS member_deletes;
SELECT test_util.try(format('SELECT nile_auth.add_member(%L, %L, %L)', :'acme', 'bob@acme.test', '{owner}')) AS member_promotes_self;
-- Bob sees acme's members and his own tenants in the tables, nothing of dan corp.
SELECT array_agg(email ORDER BY email) AS bob_sees_users FROM nile_auth.users;
SELECT array_agg(name ORDER BY name) AS bob_sees_tenants FROM nile_auth.tenants;
SELECT count(*) AS bob_sees_memberships FROM nile_auth.tenant_users;
-- Dan is invisible to Bob, exactly as if he did not exist.
SELECT test_util.try(format('SELECT nile_auth.update_user(%L, %L)', :'dan_id', '{"name": "x"}')) AS update_invisible;
SELECT test_util.try(format('SELECT nile_auth.update_user(%L, %L)', gen_random_uuid(), '{"name": "x"}')) AS update_missing;
-- (link_user takes any live user by id, Nile's linkUser: account_lifecycle.sql.)
SELECT test_util.try(format('SELECT nile_auth.link_user(%L)', gen_random_uuid())) AS link_unknown;
-- Sharing a tenant gives Bob no power over Cat's profile either (issue 10, class 6; 0.1.0
-- let any member rewrite it): update_user is for the user's account admin (consent.sql).
SELECT test_util.try(format('SELECT nile_auth.update_user(%L, %L)', :'cat_id', '{"familyName": "Catt"}')) AS member_updates_other;
-- Anyone may leave.
SELECT nile_auth.unlink_user(:'bob_id') AS bob_left;
SELECT test_util.try('SELECT count(*) FROM nile_auth.tenant_users') AS bob_after_leaving;
RESET nile.tenant_id;

-- Dan (outsider): acme does not exist for him.
SELECT nile_auth.authenticate(:'dan') IS NOT NULL AS dan_in;
SELECT test_util.try(format('SELECT nile_auth.rename_tenant(%L, %L)', :'acme', 'pwned')) AS outsider_renames;
SELECT test_util.try(format('SELECT nile_auth.add_member(%L, %L)', :'acme', 'dan@other.test')) AS outsider_joins;
SELECT test_util.try(format('SELECT nile_auth.link_user(%L, %L)', :'dan_id', :'acme')) AS outsider_links_self;
SELECT array_agg(name) AS dan_sees_tenants FROM nile_auth.tenants;
SELECT array_agg(email) AS dan_sees_users FROM nile_auth.users;

-- Cat (admin): removes members, changes roles, renames; cannot remove the last owner.
SELECT nile_auth.authenticate(:'cat') IS NOT NULL AS cat_in;
SELECT nile_auth.set_tenant(:'acme') IS NOT NULL AS in_acme;
-- Bob left, and link_user brings him back by id; add_member of a member changes nothing, and
-- linking an existing member succeeds and keeps the roles.
SELECT nile_auth.link_user(:'bob_id')->'roles' AS link_former_member;
SELECT nile_auth.add_member(:'acme', 'bob@acme.test')->'roles' AS bob_back;
SELECT nile_auth.link_user(:'bob_id')->'roles' AS link_existing_member;
SELECT nile_auth.add_member(:'acme', 'bob@acme.test', '{member,billing}')->'roles' AS bob_roles_changed;
SELECT nile_auth.rename_tenant(:'acme', 'Acme Inc')->>'name' AS renamed;
SELECT test_util.try(format('SELECT nile_auth.unlink_user(%L)', :'ann_id')) AS remove_last_owner;
SELECT test_util.try(format('SELECT nile_auth.add_member(%L, %L, %L)', :'acme', 'ann@acme.test', '{member}')) AS demote_last_owner;
SELECT nile_auth.unlink_user(:'bob_id') AS bob_removed;

-- Memberships are cached across transactions; removing one in another backend reaches a
-- backend that has it cached, at its next transaction.
SELECT nile_auth.login('eve@acme.test', 'eve password 1')->'token'->>'jwt' AS eve \gset
SELECT id AS eve_id FROM nile_auth.users WHERE email = 'eve@acme.test' \gset
\c - postgres
SELECT nile_auth.authenticate(:'eve') IS NOT NULL AS eve_in;
SET nile.tenant_id = :'acme';
SELECT nile_auth.tenant_id() = :'acme' AS eve_uses_acme;
SELECT nile_auth.tenant_id() = :'acme' AS eve_uses_acme_again;
SELECT removed AS eve_removed_elsewhere
  FROM dblink(format('host=%s port=%s dbname=%s user=nile_app',
                     current_setting('unix_socket_directories'), current_setting('port'), current_database()),
              format('SELECT nile_auth.unlink_user(%L, %L)', :'eve_id', :'acme')) AS t(removed boolean);
SELECT test_util.try('SELECT nile_auth.tenant_id()') AS eve_after_removal;
SELECT test_util.try(format('SELECT nile_auth.set_tenant(%L)', :'acme')) AS eve_sets_acme;
RESET nile.tenant_id;
\c - nile_app

-- Ann (owner): the last owner cannot leave; after making Cat an owner she can; then delete.
SELECT nile_auth.authenticate(:'ann') IS NOT NULL AS ann_in;
SELECT test_util.try(format('SELECT nile_auth.unlink_user(%L, %L)', :'ann_id', :'acme')) AS last_owner_leaves;
SELECT nile_auth.add_member(:'acme', 'cat@acme.test', '{owner}')->'roles' AS cat_owner;
SELECT nile_auth.unlink_user(:'ann_id', :'acme') AS ann_left;
SELECT nile_auth.authenticate(:'cat') IS NOT NULL AS cat_in;
SELECT nile_auth.delete_tenant(:'acme') AS deleted;
SELECT test_util.try(format('SELECT nile_auth.set_tenant(%L)', :'acme')) AS deleted_tenant_unusable;
SELECT count(*) AS cat_sees_acme FROM nile_auth.list_tenants() t WHERE t->>'id' = :'acme';

-- The trusted backend (no token, no require_token) sees and manages everything.
RESET nile.auth_token;
RESET nile.tenant_id;
SELECT nile_auth.is_trusted_backend() AS trusted;
SELECT count(*) > 0 AS sees_all_users FROM nile_auth.users WHERE email = 'dan@other.test';
SELECT nile_auth.create_tenant('backend made')->>'name' AS made;
SELECT id AS made_id FROM nile_auth.tenants WHERE name = 'backend made' \gset
SELECT nile_auth.add_member(:'made_id', 'dan@other.test', '{owner}')->'roles' AS dan_owner;
SELECT test_util.try(format('SELECT nile_auth.set_tenant(%L)', gen_random_uuid())) AS set_missing_tenant;
SELECT test_util.try('SELECT nile_auth.create_tenant(NULL)') AS null_name;
SELECT test_util.try($$SELECT nile_auth.create_tenant('')$$) AS empty_name;
