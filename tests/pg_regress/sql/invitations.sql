-- Invitations (issue 11): an owner or admin invites an address with roles and an expiry; the
-- token is shown once; the invitee accepts signed in, or signs up with it. Accepting is the
-- invitee's own action (origin accepted_invitation) and proves the address. As plain roles:
-- nile_app forwards each user's token with set_context.
\c - nile_app
SELECT (nile_auth.signup('iris@inv.test', 'iris password 1', 'Iris', 'Iris Co')->'tenants'->>0) AS iris_co \gset
SELECT nile_auth.login('iris@inv.test', 'iris password 1')->'token'->>'jwt' AS iris \gset
SELECT nile_auth.signup('jon@inv.test', 'jon password 1')->'token'->>'jwt' AS jon \gset
SELECT nile_auth.signup('kim@inv.test', 'kim password 1')->'token'->>'jwt' AS kim \gset
SELECT nile_auth.signup('out@inv.test', 'out password 1')->'token'->>'jwt' AS outsider \gset
SELECT id AS jon_id FROM nile_auth.users WHERE email = 'jon@inv.test' \gset
SELECT id AS kim_id FROM nile_auth.users WHERE email = 'kim@inv.test' \gset

-- Iris (owner) invites Jon as admin, with the shape of the contract; the token is shown once.
BEGIN;
SELECT nile_auth.set_context(:'iris', :'iris_co') IS NOT NULL AS iris_in;
SELECT nile_auth.invite('Jon@inv.test', '{admin}') AS inv \gset
COMMIT;
SELECT array(SELECT jsonb_object_keys(:'inv'::jsonb) ORDER BY 1) AS invite_keys;
SELECT :'inv'::jsonb->>'email' AS email, :'inv'::jsonb->'roles' AS roles, :'inv'::jsonb->>'tenantId' = :'iris_co' AS in_iris_co,
       (:'inv'::jsonb->>'expires')::timestamptz BETWEEN now() + '6 days 23 hours' AND now() + '7 days 1 hour' AS expires_in_7_days,
       length(:'inv'::jsonb->>'token') >= 43 AS token_256_bits;
SELECT :'inv'::jsonb->>'token' AS jon_invitation, :'inv'::jsonb->>'id' AS jon_invitation_id \gset

-- Bad input (22023), and who may invite.
BEGIN;
SELECT nile_auth.set_context(:'iris', :'iris_co') IS NOT NULL AS iris_in;
SELECT test_util.try($$SELECT nile_auth.invite('not an address')$$) AS malformed_email;
SELECT test_util.try($$SELECT nile_auth.invite(NULL)$$) AS null_email;
SELECT test_util.try($$SELECT nile_auth.invite('x@inv.test', '{}')$$) AS no_roles;
SELECT test_util.try($$SELECT nile_auth.invite('x@inv.test', '{member}', NULL, '-1 day')$$) AS negative_expiry;
SELECT test_util.try($$SELECT nile_auth.invite('iris@inv.test')$$) AS invite_a_member;
-- The list, without tokens or hashes.
SELECT array(SELECT jsonb_object_keys(i) ORDER BY 1) AS listed_keys, i->>'email' AS listed_email
  FROM nile_auth.list_invitations() i;
COMMIT;
BEGIN;
SELECT nile_auth.set_context(:'outsider') IS NOT NULL AS outsider_in;
SELECT test_util.try(format('SELECT nile_auth.invite(%L, %L, %L)', 'out@inv.test', '{owner}', :'iris_co')) AS outsider_invites;
SELECT test_util.try(format('SELECT nile_auth.list_invitations(%L)', :'iris_co')) AS outsider_lists;
SELECT test_util.try(format('SELECT nile_auth.revoke_invitation(%L)', :'jon_invitation_id')) AS outsider_revokes;
SELECT test_util.try(format('SELECT nile_auth.accept_invitation(%L)', :'jon_invitation')) AS other_address_accepts;
COMMIT;
-- Nothing of that was written: the invitation is still pending.
\c - postgres
SELECT count(*) AS pending FROM nile_auth.invitations WHERE tenant_id = :'iris_co' AND accepted IS NULL AND revoked IS NULL;
SELECT count(*) AS outsider_memberships FROM nile_auth.tenant_users tu JOIN nile_auth.users u ON u.id = tu.user_id
 WHERE u.email = 'out@inv.test';
-- Only a hash is stored.
SELECT count(*) AS token_stored_in_clear FROM nile_auth.invitations i
 WHERE i.token_hash = convert_to(:'jon_invitation', 'UTF8') OR i.email = :'jon_invitation';
SELECT has_table_privilege('nile_app', 'nile_auth.invitations', 'SELECT') AS app_reads_invitations;

-- Jon accepts: admin of Iris Co, by his own action, address verified; the token is single use.
\c - nile_app
BEGIN;
SELECT nile_auth.set_context(:'jon') IS NOT NULL AS jon_in;
SELECT nile_auth.accept_invitation(:'jon_invitation') - 'userId' - 'tenantId' AS membership;
SELECT nile_auth.me()->'emailVerified' IS NOT NULL AS jon_verified;
SELECT m->>'name' AS tenant, m->'roles' AS roles, m->'isAdmin' AS is_admin FROM jsonb_array_elements(nile_auth.me()->'memberships') m;
SELECT test_util.try(format('SELECT nile_auth.accept_invitation(%L)', :'jon_invitation')) AS accepted_twice;
COMMIT;
\c - postgres
SELECT origin FROM nile_auth.tenant_users WHERE tenant_id = :'iris_co' AND user_id = :'jon_id';
SELECT count(*) AS still_listed FROM nile_auth.invitations WHERE tenant_id = :'iris_co' AND accepted IS NULL AND revoked IS NULL;

-- Jon (admin) invites Kim; a member cannot invite; Jon revokes and Kim's token accepts nothing;
-- a new invitation replaces a pending one.
\c - nile_app
BEGIN;
SELECT nile_auth.set_context(:'jon', :'iris_co') IS NOT NULL AS jon_in;
SELECT nile_auth.invite('kim@inv.test')->>'token' AS kim_revoked_token \gset
SELECT nile_auth.invite('kim@inv.test', '{member}', NULL, '1 hour') AS kim_inv \gset
SELECT count(*) AS one_pending_for_kim FROM nile_auth.list_invitations() i WHERE i->>'email' = 'kim@inv.test';
COMMIT;
BEGIN;
SELECT nile_auth.set_context(:'kim') IS NOT NULL AS kim_in;
SELECT test_util.try(format('SELECT nile_auth.accept_invitation(%L)', :'kim_revoked_token')) AS replaced_token;
SELECT test_util.try($$SELECT nile_auth.accept_invitation('not a token')$$) AS garbage_token;
SELECT test_util.try('SELECT nile_auth.accept_invitation(NULL)') AS null_token;
COMMIT;
BEGIN;
SELECT nile_auth.set_context(:'jon', :'iris_co') IS NOT NULL AS jon_in;
SELECT nile_auth.revoke_invitation((:'kim_inv'::jsonb->>'id')::uuid) AS revoked;
SELECT test_util.try(format('SELECT nile_auth.revoke_invitation(%L)', :'kim_inv'::jsonb->>'id')) AS revoked_twice;
COMMIT;
BEGIN;
SELECT nile_auth.set_context(:'kim') IS NOT NULL AS kim_in;
SELECT test_util.try(format('SELECT nile_auth.accept_invitation(%L)', :'kim_inv'::jsonb->>'token')) AS revoked_token;
COMMIT;
-- An expired invitation accepts nothing.
BEGIN;
SELECT nile_auth.set_context(:'jon', :'iris_co') IS NOT NULL AS jon_in;
SELECT nile_auth.invite('kim@inv.test', '{member}', NULL, '1 second')->>'token' AS kim_expiring \gset
COMMIT;
SELECT pg_sleep(1.2);
BEGIN;
SELECT nile_auth.set_context(:'kim') IS NOT NULL AS kim_in;
SELECT test_util.try(format('SELECT nile_auth.accept_invitation(%L)', :'kim_expiring')) AS expired_token;
COMMIT;
-- Kim, a plain member now (invited once more), may neither invite nor list.
BEGIN;
SELECT nile_auth.set_context(:'jon', :'iris_co') IS NOT NULL AS jon_in;
SELECT nile_auth.invite('kim@inv.test')->>'token' AS kim_token \gset
COMMIT;
BEGIN;
SELECT nile_auth.set_context(:'kim') IS NOT NULL AS kim_in;
SELECT nile_auth.accept_invitation(:'kim_token')->'roles' AS kim_roles;
SELECT nile_auth.set_tenant(:'iris_co', true) IS NOT NULL AS kim_uses_iris_co;
SELECT test_util.try($$SELECT nile_auth.invite('new@inv.test')$$) AS member_invites;
SELECT test_util.try('SELECT nile_auth.list_invitations()') AS member_lists;
COMMIT;

-- Signing up with an invitation creates the user, accepts, and proves the address, in one call.
BEGIN;
SELECT nile_auth.set_context(:'iris', :'iris_co') IS NOT NULL AS iris_in;
SELECT nile_auth.invite('lea@inv.test', '{member,billing}')->>'token' AS lea_token \gset
SELECT nile_auth.invite('max@inv.test')->>'token' AS max_token \gset
COMMIT;
-- With another address: 42501, and no user is created.
SELECT test_util.try(format('SELECT nile_auth.signup(%L, %L, NULL, NULL, %L)', 'mallory@inv.test', 'mallory password 1', :'lea_token')) AS other_address_signup;
SELECT test_util.try(format('SELECT nile_auth.signup(%L, %L, NULL, NULL, %L)', 'nobody@inv.test', 'nobody password 1', 'forged')) AS forged_invitation_signup;
SELECT nile_auth.signup('lea@inv.test', 'lea password 1', 'Lea', NULL, :'lea_token') AS lea \gset
SELECT :'lea'::jsonb->'tenants' = jsonb_build_array(:'iris_co') AS lea_tenants;
BEGIN;
SELECT nile_auth.set_context(:'lea'::jsonb->'token'->>'jwt', :'iris_co') IS NOT NULL AS lea_in;
SELECT nile_auth.me()->'emailVerified' IS NOT NULL AS lea_verified, nile_auth.me()->'defaultTenant' = to_jsonb(:'iris_co'::text) AS lea_default;
SELECT nile_auth.has_role('billing') AS lea_billing, nile_auth.has_role('admin') AS lea_admin;
COMMIT;
\c - postgres
SELECT count(*) AS mallory_or_nobody FROM nile_auth.users WHERE email IN ('mallory@inv.test', 'nobody@inv.test');
SELECT u.email, tu.roles, tu.origin FROM nile_auth.tenant_users tu JOIN nile_auth.users u ON u.id = tu.user_id
 WHERE tu.tenant_id = :'iris_co' ORDER BY u.email;
-- Accepted memberships are the user's own action: Iris administers Lea's account.
\c - nile_app
BEGIN;
SELECT nile_auth.set_context(:'iris', :'iris_co') IS NOT NULL AS iris_in;
SELECT nile_auth.update_user((:'lea'::jsonb->>'id')::uuid, '{"familyName": "Lee"}')->>'familyName' AS iris_edits_lea;
COMMIT;
-- An invitation to a tenant deleted since accepts nothing.
BEGIN;
SELECT nile_auth.set_context(:'iris') IS NOT NULL AS iris_in;
SELECT nile_auth.create_tenant('Short lived')->>'id' AS short_lived \gset
SELECT nile_auth.invite('max@inv.test', '{member}', :'short_lived')->>'token' AS short_token \gset
SELECT nile_auth.delete_tenant(:'short_lived') AS deleted;
COMMIT;
SELECT test_util.try(format('SELECT nile_auth.signup(%L, %L, NULL, NULL, %L)', 'max@inv.test', 'max password 1', :'short_token')) AS deleted_tenant_signup;
-- The trusted backend invites into any tenant (the invitation records no inviter).
SELECT (nile_auth.invite('max@inv.test', '{viewer}', :'iris_co')->>'id') AS backend_inv \gset
\c - postgres
SELECT invited_by IS NULL AS no_inviter, roles FROM nile_auth.invitations WHERE id = :'backend_inv';
-- No token in the audit log.
SELECT count(*) AS tokens_in_audit FROM nile_auth.audit_log
 WHERE details::text LIKE '%' || :'jon_invitation' || '%' OR details::text LIKE '%' || :'lea_token' || '%';

-- An end-user role never receives an invitation token (it is to be mailed, not shown).
\c - clustify_web
SELECT nile_auth.authenticate(:'iris') IS NOT NULL AS iris_in;
SELECT test_util.try(format('SELECT nile_auth.invite(%L, %L, %L)', 'pal@inv.test', '{owner}', :'iris_co')) AS end_user_role_invites;
\c - nile_app
-- An invitation stands only while its inviter is an owner or admin there: Jon, demoted, can no
-- longer bring anyone in.
BEGIN;
SELECT nile_auth.set_context(:'jon', :'iris_co') IS NOT NULL AS jon_in;
SELECT nile_auth.invite('nia@inv.test', '{owner}')->>'token' AS nia_token \gset
COMMIT;
BEGIN;
SELECT nile_auth.set_context(:'iris', :'iris_co') IS NOT NULL AS iris_in;
SELECT nile_auth.add_member(:'iris_co', 'jon@inv.test', '{member}')->'roles' AS jon_demoted;
COMMIT;
SELECT test_util.try(format('SELECT nile_auth.signup(%L, %L, NULL, NULL, %L)', 'nia@inv.test', 'nia password 1', :'nia_token')) AS inviter_demoted;
-- A membership from an accepted invitation that rolls back leaves nothing cached: the session
-- that saw it has no access after the rollback.
BEGIN;
SELECT nile_auth.set_context(:'iris', :'iris_co') IS NOT NULL AS iris_in;
SELECT nile_auth.invite('out@inv.test', '{admin}')->>'token' AS out_token \gset
COMMIT;
SELECT nile_auth.authenticate(:'outsider') IS NOT NULL AS outsider_in;
BEGIN;
SELECT nile_auth.accept_invitation(:'out_token')->'roles' AS accepted_for_now;
SET LOCAL nile.tenant_id = :'iris_co';
SELECT nile_auth.has_role('admin') AS admin_for_now;
ROLLBACK;
SET nile.tenant_id = :'iris_co';
SELECT test_util.try($$SELECT nile_auth.has_role('admin')$$) AS admin_after_rollback;
SELECT test_util.try('SELECT nile_auth.tenant_id()') AS tenant_after_rollback;
RESET nile.tenant_id;
RESET nile.auth_token;
\c - postgres
SELECT event, count(*) FROM nile_auth.audit_log WHERE event LIKE 'invitation.%' AND tenant_id = :'iris_co' GROUP BY 1 ORDER BY 1;
