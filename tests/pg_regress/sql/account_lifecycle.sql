-- The account's life (issue 11): Nile's linkUser, me() with memberships, changing the email
-- address, and deleting the account. As plain roles: nile_app forwards each user's token.
\c - nile_app
SELECT (nile_auth.signup('ada@life.test', 'ada password 1', 'Ada', 'Ada Co')->'tenants'->>0) AS ada_co \gset
SELECT nile_auth.login('ada@life.test', 'ada password 1')->'token'->>'jwt' AS ada \gset
SELECT nile_auth.signup('ben@life.test', 'ben password 1', 'Ben')->'token'->>'jwt' AS ben \gset
SELECT nile_auth.signup('cy@life.test', 'cy password 1')->'token'->>'jwt' AS cy \gset
SELECT id AS ada_id FROM nile_auth.users WHERE email = 'ada@life.test' \gset
SELECT id AS ben_id FROM nile_auth.users WHERE email = 'ben@life.test' \gset
SELECT id AS cy_id FROM nile_auth.users WHERE email = 'cy@life.test' \gset
SELECT nile_auth.add_member(:'ada_co', 'cy@life.test') IS NOT NULL AS cy_member;

-- link_user (Nile's linkUser): any live member links any live user by id, sharing a tenant or
-- not, as a plain member added by someone else.
BEGIN;
SELECT nile_auth.set_context(:'cy', :'ada_co') IS NOT NULL AS cy_in;
SELECT nile_auth.link_user(:'ben_id') - 'tenantId' - 'userId' AS cy_links_ben;
SELECT test_util.try(format('SELECT nile_auth.link_user(%L)', gen_random_uuid())) AS unknown_user;
SELECT test_util.try(format('SELECT nile_auth.link_user(%L, %L)', :'ben_id', gen_random_uuid())) AS unknown_tenant;
SELECT test_util.try('SELECT nile_auth.link_user(NULL)') AS null_user;
COMMIT;
BEGIN;
SELECT nile_auth.set_context(:'ben') IS NOT NULL AS ben_in;
SELECT nile_auth.create_tenant('Ben Co')->>'id' AS ben_co \gset
COMMIT;
-- ... but not into a tenant the caller may not use.
BEGIN;
SELECT nile_auth.set_context(:'cy') IS NOT NULL AS cy_in;
SELECT test_util.try(format('SELECT nile_auth.link_user(%L, %L)', :'cy_id', :'ben_co')) AS into_foreign_tenant;
COMMIT;
-- A linked membership gives the tenant no power over Ben's account.
BEGIN;
SELECT nile_auth.set_context(:'ada', :'ada_co') IS NOT NULL AS ada_in;
SELECT test_util.try(format('SELECT nile_auth.deactivate_user(%L)', :'ben_id')) AS owner_deactivates_linked;
SELECT test_util.try(format('SELECT nile_auth.delete_user(%L)', :'ben_id')) AS owner_deletes_linked;
COMMIT;
\c - postgres
SELECT origin FROM nile_auth.tenant_users WHERE tenant_id = :'ada_co' AND user_id = :'ben_id';

-- me() carries memberships (Nexla's org_memberships) and defaultTenant, the first joined.
\c - nile_app
BEGIN;
SELECT nile_auth.set_context(:'ben') IS NOT NULL AS ben_in;
SELECT nile_auth.me()->'tenants' = jsonb_build_array(:'ada_co', :'ben_co') AS tenants_unchanged;
SELECT m->>'name' AS name, m->'roles' AS roles, m->'isAdmin' AS is_admin, array(SELECT jsonb_object_keys(m) ORDER BY 1) AS keys
  FROM jsonb_array_elements(nile_auth.me()->'memberships') m;
SELECT nile_auth.me()->>'defaultTenant' = :'ada_co' AS default_is_first_joined;
COMMIT;
-- A token limited to one tenant shows that membership only.
BEGIN;
SELECT nile_auth.set_context(:'ben') IS NOT NULL AS ben_in;
SELECT nile_auth.create_api_key('ben co key', :'ben_co')->>'key' AS ben_key \gset
COMMIT;
SELECT nile_auth.login_with_api_key(:'ben_key')->'token'->>'jwt' AS ben_scoped \gset
BEGIN;
SELECT nile_auth.set_context(:'ben_scoped') IS NOT NULL AS scoped_in;
SELECT jsonb_array_length(nile_auth.me()->'memberships') AS scoped_memberships, nile_auth.me()->>'defaultTenant' = :'ben_co' AS scoped_default;
COMMIT;

-- change_email: the password is re-checked; the old address works until the token mailed to the
-- new one is used.
BEGIN;
SELECT nile_auth.set_context(:'cy') IS NOT NULL AS cy_in;
SELECT test_util.try($$SELECT nile_auth.change_email('cy.new@life.test', 'wrong password')$$) AS wrong_password;
SELECT test_util.try($$SELECT nile_auth.change_email('ben@life.test', 'cy password 1')$$) AS taken;
SELECT test_util.try($$SELECT nile_auth.change_email('BEN@life.test', 'cy password 1')$$) AS taken_other_case;
SELECT test_util.try($$SELECT nile_auth.change_email('Cy@Life.test', 'cy password 1')$$) AS same_address;
SELECT test_util.try($$SELECT nile_auth.change_email('not an address', 'cy password 1')$$) AS malformed;
SELECT test_util.try($$SELECT nile_auth.change_email(NULL, 'cy password 1')$$) AS null_email;
SELECT nile_auth.change_email('cy.new@life.test', 'cy password 1') AS change \gset
COMMIT;
SELECT array(SELECT jsonb_object_keys(:'change'::jsonb) ORDER BY 1) AS change_keys, :'change'::jsonb->>'email' AS pending;
SELECT nile_auth.login('cy@life.test', 'cy password 1') IS NOT NULL AS old_address_still_logs_in;
SELECT test_util.try($$SELECT nile_auth.login('cy.new@life.test', 'cy password 1')$$) AS new_address_not_yet;
-- An end-user role never receives the token (it is to be mailed, not shown to the user).
\c - clustify_web
SELECT nile_auth.authenticate(:'cy') IS NOT NULL AS cy_in;
SELECT test_util.try($$SELECT nile_auth.change_email('cy.other@life.test', 'cy password 1')$$) AS end_user_role_change;
SELECT test_util.try('SELECT nile_auth.request_email_verification()') AS end_user_role_verification;
\c - nile_app
-- A scoped token may not change the account's address.
BEGIN;
SELECT nile_auth.set_context(:'ben_scoped') IS NOT NULL AS scoped_in;
SELECT test_util.try($$SELECT nile_auth.change_email('ben.new@life.test', 'ben password 1')$$) AS scoped_change;
COMMIT;
-- A reset token mailed to the old address before the switch is void after it.
SELECT nile_auth.request_password_reset('cy@life.test') AS cy_reset \gset
SELECT nile_auth.verify_email(:'change'::jsonb->>'token') AS switched;
SELECT test_util.try(format('SELECT nile_auth.verify_email(%L)', :'change'::jsonb->>'token')) AS used_twice;
SELECT test_util.try(format('SELECT nile_auth.reset_password(%L, %L)', :'cy_reset', 'hijacked password')) AS old_address_reset;
SELECT test_util.try($$SELECT nile_auth.login('cy@life.test', 'cy password 1')$$) AS old_address_after;
SELECT nile_auth.login('cy.new@life.test', 'cy password 1') IS NOT NULL AS new_address_logs_in;
SELECT email, email_verified IS NOT NULL AS verified FROM nile_auth.users WHERE id = :'cy_id';
-- The new address taken meanwhile: 23505 at verification, the address unchanged.
BEGIN;
SELECT nile_auth.set_context(:'cy') IS NOT NULL AS cy_in;
SELECT nile_auth.change_email('cy.third@life.test', 'cy password 1')->>'token' AS cy_third \gset
COMMIT;
SELECT nile_auth.signup('cy.third@life.test', 'squatter password 1') IS NOT NULL AS squatted;
SELECT test_util.try(format('SELECT nile_auth.verify_email(%L)', :'cy_third')) AS taken_meanwhile;
SELECT email FROM nile_auth.users WHERE id = :'cy_id';

-- set_email: the trusted backend sets an address at once, unverified; nobody else may.
SELECT nile_auth.set_email(:'ben_id', 'Ben.B@life.test') - 'created' - 'updated' - 'id' - 'tenants' AS ben_set;
SELECT test_util.try(format('SELECT nile_auth.set_email(%L, %L)', :'ben_id', 'ada@life.test')) AS backend_taken;
SELECT test_util.try(format('SELECT nile_auth.set_email(%L, %L)', :'ben_id', 'bad')) AS backend_malformed;
SELECT test_util.try(format('SELECT nile_auth.set_email(%L, %L)', gen_random_uuid(), 'x@life.test')) AS backend_unknown;
BEGIN;
SELECT nile_auth.set_context(:'ada', :'ada_co') IS NOT NULL AS ada_in;
SELECT test_util.try(format('SELECT nile_auth.set_email(%L, %L)', :'ben_id', 'ada.owns.ben@life.test')) AS user_sets_email;
COMMIT;

-- delete_user. The last owner of a tenant with other members: 55000, nothing written.
BEGIN;
SELECT nile_auth.set_context(:'ada') IS NOT NULL AS ada_in;
SELECT test_util.try('SELECT nile_auth.delete_user()') AS last_owner_deletes;
COMMIT;
\c - postgres
SELECT deleted IS NULL AS ada_live FROM nile_auth.users WHERE id = :'ada_id';
SELECT count(*) AS ada_memberships FROM nile_auth.tenant_users WHERE user_id = :'ada_id' AND deleted IS NULL;
-- Who may delete whom: a member may not delete another; the backend needs an id.
\c - nile_app
BEGIN;
SELECT nile_auth.set_context(:'cy', :'ada_co') IS NOT NULL AS cy_in;
SELECT test_util.try(format('SELECT nile_auth.delete_user(%L)', :'ada_id')) AS member_deletes_owner;
SELECT test_util.try(format('SELECT nile_auth.delete_user(%L)', gen_random_uuid())) AS unknown_user;
COMMIT;
BEGIN;
SELECT nile_auth.set_context(:'ben_scoped') IS NOT NULL AS scoped_in;
SELECT test_util.try('SELECT nile_auth.delete_user()') AS scoped_token_deletes;
COMMIT;
SELECT test_util.try('SELECT nile_auth.delete_user()') AS backend_without_id;
-- A tenant-created user is the tenant's to delete.
BEGIN;
SELECT nile_auth.set_context(:'ada', :'ada_co') IS NOT NULL AS ada_in;
SELECT nile_auth.create_tenant_user('dee@life.test', 'dee password 1')->>'id' AS dee_id \gset
COMMIT;
-- Someone linking Dee into their own tenant takes nothing from Ada Co.
BEGIN;
SELECT nile_auth.set_context(:'ben', :'ben_co') IS NOT NULL AS ben_in;
SELECT nile_auth.link_user(:'dee_id') IS NOT NULL AS ben_links_dee;
COMMIT;
BEGIN;
SELECT nile_auth.set_context(:'ada', :'ada_co') IS NOT NULL AS ada_in;
SELECT nile_auth.delete_user(:'dee_id') AS ada_deletes_dee;
COMMIT;
-- A deletion rolled back clears no failed logins: Eli's account, locked by wrong passwords
-- given to change_email, stays locked (a token holder cannot buy new guesses).
SELECT nile_auth.signup('eli@life.test', 'eli password 1')->'token'->>'jwt' AS eli \gset
BEGIN;
SELECT nile_auth.set_context(:'eli') IS NOT NULL AS eli_in;
SELECT string_agg(test_util.try($$SELECT nile_auth.change_email('eli.new@life.test', 'wrong')$$), ' | ') AS wrong_passwords
  FROM generate_series(1, 6);
COMMIT;
BEGIN;
SELECT nile_auth.set_context(:'eli') IS NOT NULL AS eli_in;
SELECT nile_auth.delete_user() AS eli_deleted_for_now;
ROLLBACK;
SELECT test_util.try($$SELECT nile_auth.login('eli@life.test', 'eli password 1')$$) AS eli_still_locked;

-- Ben deletes himself. He owns Ben Co alone: it goes with him. Beforehand, a second backend
-- holds his verified token cached, an API key and a pending invitation exist.
BEGIN;
SELECT nile_auth.set_context(:'ada') IS NOT NULL AS ada_in;
SELECT nile_auth.create_tenant('Ada Two')->>'id' AS ada_two \gset
SELECT nile_auth.invite('ben.b@life.test', '{member}', :'ada_two') IS NOT NULL AS ben_invited;
COMMIT;
SELECT nile_auth.request_password_reset('ben.b@life.test') IS NOT NULL AS ben_reset_pending;
\c - postgres
SELECT count(*) AS pending_invitations_before FROM nile_auth.invitations
 WHERE lower(email) = 'ben.b@life.test' AND accepted IS NULL AND revoked IS NULL;
SELECT dblink_connect('ben_backend', format('host=%s port=%s dbname=%s user=nile_app',
                      current_setting('unix_socket_directories'), current_setting('port'), current_database()));
SELECT id = :'ben_id' AS ben_cached_elsewhere FROM dblink('ben_backend', format('SELECT nile_auth.authenticate(%L)::text', :'ben')) AS t(id text);
BEGIN;
SELECT nile_auth.set_context(:'ben') IS NOT NULL AS ben_in;
SELECT nile_auth.delete_user() AS ben_deleted;
COMMIT;
-- The cached token is refused in the other backend at its next statement ...
SELECT id IS NULL AS ben_gone_elsewhere FROM dblink('ben_backend', $$SELECT nile_auth.user_id()::text$$) AS t(id text);
SELECT dblink_disconnect('ben_backend');
-- ... and everywhere: the session token, the API key, the password.
SELECT test_util.try(format('SELECT nile_auth.authenticate(%L)', :'ben')) AS ben_token;
SELECT test_util.try(format('SELECT nile_auth.login_with_api_key(%L)', :'ben_key')) AS ben_key;
SELECT test_util.try($$SELECT nile_auth.login('ben.b@life.test', 'ben password 1')$$) AS ben_login;
-- Erased, not flagged: credentials, one-time tokens, keys; nothing personal left on the row.
SELECT (SELECT count(*) FROM nile_auth.credentials WHERE user_id = :'ben_id') AS credentials,
       (SELECT count(*) FROM nile_auth.one_time_tokens WHERE user_id = :'ben_id') AS one_time_tokens,
       (SELECT count(*) FROM nile_auth.api_keys WHERE user_id = :'ben_id') AS api_keys;
SELECT deleted IS NOT NULL AS deleted, email, name FROM nile_auth.users WHERE id = :'ben_id';
SELECT count(*) AS live_memberships FROM nile_auth.tenant_users WHERE user_id = :'ben_id' AND deleted IS NULL;
SELECT deleted IS NOT NULL AS ben_co_deleted FROM nile_auth.tenants WHERE id = :'ben_co';
SELECT count(*) AS pending_invitations FROM nile_auth.invitations
 WHERE lower(email) = 'ben.b@life.test' AND accepted IS NULL AND revoked IS NULL;
SELECT event, details FROM nile_auth.audit_log WHERE target = :'ben_id' AND event = 'user.deleted';
-- The address is free: a new signup is a new user.
SELECT nile_auth.signup('ben.b@life.test', 'new ben password 1')->>'id' <> :'ben_id' AS new_user;
-- Deleting a deleted user: not found.
SELECT test_util.try(format('SELECT nile_auth.delete_user(%L)', :'ben_id')) AS deleted_twice;
