-- Powers without consent (issue 10, class 6). Against 0.1.0, add_member(my_tenant, victim)
-- needed no consent and made the adder the victim's account admin: they deactivated the victim
-- or rewrote the victim's name through update_user; a plain member overwrote an owner's
-- membership metadata. Now a tenant administers only users it created or who joined it by
-- their own action (tenant_users.origin), and other people's memberships are for owners and
-- admins. As plain roles (nile_app forwards each user's token).
\c - nile_app
SELECT (nile_auth.signup('olga@consent.test', 'olga password 1', NULL, 'Olga Co')->'tenants'->>0) AS olga_co \gset
SELECT nile_auth.signup('vic@consent.test', 'vic password 1')->>'id' AS vic_id \gset
SELECT nile_auth.signup('mo@consent.test', 'mo password 1')->>'id' AS mo_id \gset
SELECT nile_auth.login('olga@consent.test', 'olga password 1')->'token'->>'jwt' AS olga \gset
SELECT nile_auth.login('mo@consent.test', 'mo password 1')->'token'->>'jwt' AS mo \gset
SELECT id AS olga_id FROM nile_auth.users WHERE email = 'olga@consent.test' \gset

-- Olga adds Vic (no consent asked, as in Nile) and Mo as a plain member.
BEGIN;
SELECT nile_auth.set_context(:'olga', :'olga_co') IS NOT NULL AS olga_in;
SELECT nile_auth.add_member(:'olga_co', 'vic@consent.test')->'roles' AS vic_roles;
SELECT nile_auth.add_member(:'olga_co', 'mo@consent.test')->'roles' AS mo_roles;
-- Being added gives Olga's tenant no power over Vic's account or profile.
SELECT test_util.try(format('SELECT nile_auth.deactivate_user(%L)', :'vic_id')) AS deactivate_added_user;
SELECT test_util.try(format('SELECT nile_auth.update_user(%L, %L)', :'vic_id', '{"name": "Pwned"}')) AS rename_added_user;
-- A user the tenant created is the tenant's to administer.
SELECT nile_auth.create_tenant_user('cora@consent.test', 'cora password 1')->>'id' AS cora_id \gset
SELECT nile_auth.update_user(:'cora_id', '{"name": "Cora"}')->>'name' AS renamed_created_user;
SELECT nile_auth.deactivate_user(:'cora_id') AS deactivated_created_user;
COMMIT;
\c - postgres
SELECT u.email, tu.origin FROM nile_auth.tenant_users tu JOIN nile_auth.users u ON u.id = tu.user_id
 WHERE tu.tenant_id = :'olga_co' ORDER BY u.email;
SELECT name IS NULL AS vic_name_untouched, deactivated IS NULL AS vic_active FROM nile_auth.users WHERE id = :'vic_id';

-- A plain member cannot rewrite someone else's membership (here the owner's metadata) ...
\c - nile_app
BEGIN;
SELECT nile_auth.set_context(:'mo', :'olga_co') IS NOT NULL AS mo_in;
SELECT test_util.try(format('SELECT nile_auth.add_member(%L, %L, %L, %L)', :'olga_co', 'olga@consent.test', '{owner}', '{"note": "mine now"}')) AS overwrite_owner_metadata;
SELECT test_util.try(format('SELECT nile_auth.add_member(%L, %L, %L, %L)', :'olga_co', 'vic@consent.test', '{member}', '{"note": "x"}')) AS overwrite_member_metadata;
-- ... but may edit their own.
SELECT nile_auth.add_member(:'olga_co', 'mo@consent.test', '{member}', '{"team": "blue"}')->'metadata' AS own_metadata;
COMMIT;
\c - postgres
SELECT metadata FROM nile_auth.tenant_users WHERE tenant_id = :'olga_co' AND user_id = :'olga_id';
