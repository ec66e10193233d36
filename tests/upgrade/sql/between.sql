-- After the package upgrade, before ALTER EXTENSION UPDATE: the database still holds the
-- previous release's SQL objects, and each new session loads the new library behind them.
-- What a DBA's applications do in that window keeps working.
SELECT installed_version <> default_version AS not_yet_updated FROM pg_available_extensions WHERE name = 'nile_auth';
SELECT value AS ann_token FROM upgrade_fixture.secrets WHERE name = 'ann_token' \gset
SELECT id AS ann_id FROM nile_auth.users WHERE email = 'ann@upgrade.test' \gset
SELECT (nile_auth.login('ann@upgrade.test', 'ann password 1')->>'id')::uuid = :'ann_id' AS login_works;
SELECT upgrade_fixture.try($$SELECT nile_auth.login('ann@upgrade.test', 'not her password')$$) AS wrong_password;
SELECT upgrade_fixture.try($$SELECT nile_auth.login('lou@upgrade.test', 'lou password 1')$$) AS lou_still_locked;
\c - upgrade_web
SELECT nile_auth.authenticate(:'ann_token') = :'ann_id' AS old_token_verifies;
SELECT nile_auth.set_tenant(id) IS NOT NULL AS in_acme FROM nile_auth.tenants WHERE name = 'Acme';
SELECT item FROM shop.orders ORDER BY item;
SELECT jsonb_array_length(nile_auth.me()->'tenants') AS ann_tenants;
\c - postgres
