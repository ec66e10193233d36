-- After the package upgrade, before ALTER EXTENSION UPDATE: the database still holds the
-- previous release's SQL objects, and each new session loads the new library behind them.
-- What a DBA's applications do in that window keeps working, except checking passwords: the
-- 0.2.0 lockout needs the login_failures table the update creates, so logins refuse with 55000
-- (docs/upgrading.md: run the update right after the restart).
SELECT installed_version <> default_version AS not_yet_updated FROM pg_available_extensions WHERE name = 'nile_auth';
SELECT value AS ann_token FROM upgrade_fixture.secrets WHERE name = 'ann_token' \gset
SELECT id AS ann_id FROM nile_auth.users WHERE email = 'ann@upgrade.test' \gset
SELECT upgrade_fixture.try($$SELECT nile_auth.login('ann@upgrade.test', 'ann password 1')$$) AS login_waits_for_update;
SELECT upgrade_fixture.try($$SELECT nile_auth.login('lou@upgrade.test', 'lou password 1')$$) AS lou_waits_for_update;
\c - upgrade_web
SELECT nile_auth.authenticate(:'ann_token') = :'ann_id' AS old_token_verifies;
SELECT nile_auth.set_tenant(id) IS NOT NULL AS in_acme FROM nile_auth.tenants WHERE name = 'Acme';
SELECT item FROM shop.orders ORDER BY item;
SELECT jsonb_array_length(nile_auth.me()->'tenants') AS ann_tenants;
\c - postgres
-- Revoking an API key still works in this window (0.2.0 would also end the key's sessions,
-- which do not exist yet).
SELECT nile_auth.revoke_api_key(id) AS revoke_works_before_update FROM nile_auth.api_keys WHERE name = 'old laptop';
