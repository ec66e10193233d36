-- signup, login, authenticate, me, update_me as a plain application role.
-- Counts below are relative to what was there before (the upgrade test runs this suite on a
-- database that already has users).
SELECT count(*) AS users_before FROM nile_auth.users \gset
SELECT count(*) AS tenants_before FROM nile_auth.tenants \gset
\c - nile_app

-- signup returns {id, email, tenants, token{jwt, maxAge, type}}
SELECT nile_auth.signup('Shaun@Example.com', 'correct horse battery', 'Shaun') AS s \gset
SELECT array(SELECT jsonb_object_keys(:'s'::jsonb) ORDER BY 1) AS keys,
       array(SELECT jsonb_object_keys(:'s'::jsonb->'token') ORDER BY 1) AS token_keys;
SELECT :'s'::jsonb->>'email' AS email,
       :'s'::jsonb->'tenants' AS tenants,
       :'s'::jsonb->'token'->>'type' AS type,
       :'s'::jsonb->'token'->'maxAge' AS max_age,
       substr(:'s'::jsonb->>'id', 15, 1) = '7' AS uuid_v7,
       (:'s'::jsonb->'token'->>'jwt') ~ '^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$' AS jwt_shape;

-- The token's header and claims.
SELECT test_util.jwt_part(:'s'::jsonb->'token'->>'jwt', 1) - 'kid' AS header;
SELECT test_util.jwt_part(:'s'::jsonb->'token'->>'jwt', 2) AS c \gset
SELECT array(SELECT jsonb_object_keys(:'c'::jsonb) ORDER BY 1) AS claims,
       :'c'::jsonb->>'sub' = :'s'::jsonb->>'id' AS sub_is_user,
       :'c'::jsonb->>'iss' AS iss, :'c'::jsonb->>'aud' = current_database() AS aud_is_db,
       (:'c'::jsonb->>'exp')::bigint - (:'c'::jsonb->>'iat')::bigint AS lifetime,
       :'c'::jsonb->>'nbf' = :'c'::jsonb->>'iat' AS nbf_is_iat;

-- signup with a new tenant: the user owns it, its id is in tenants.
SELECT nile_auth.signup('mary@example.com', 'mary had a lamb', NULL, 'side project') AS m \gset
SELECT jsonb_array_length(:'m'::jsonb->'tenants') AS tenant_count;

-- login with any letter case; same user, a fresh token.
SELECT nile_auth.login('SHAUN@example.COM', 'correct horse battery') AS l \gset
SELECT array(SELECT jsonb_object_keys(:'l'::jsonb) ORDER BY 1) AS keys,
       :'l'::jsonb->>'id' = :'s'::jsonb->>'id' AS same_user,
       :'l'::jsonb->'token'->>'type' AS type;

-- No identity before authenticate; me() needs one.
SELECT nile_auth.user_id() IS NULL AS no_identity_yet;
SELECT test_util.try('SELECT nile_auth.me()');

-- authenticate makes the token the session identity.
SELECT nile_auth.authenticate(:'l'::jsonb->'token'->>'jwt') = (:'s'::jsonb->>'id')::uuid AS authenticated;
SELECT nile_auth.user_id() = (:'s'::jsonb->>'id')::uuid AS user_id_is_shaun;
SELECT current_setting('nile.auth_token') = :'l'::jsonb->'token'->>'jwt' AS token_in_setting;
SELECT array(SELECT jsonb_object_keys(nile_auth.me()) ORDER BY 1) AS me_keys;
SELECT nile_auth.me()->>'email' AS email, nile_auth.me()->>'name' AS name,
       nile_auth.me()->'tenants' AS tenants, nile_auth.me()->'emailVerified' AS email_verified;

-- update_me: profile fields change, identity fields do not.
SELECT nile_auth.update_me('{"givenName": "Shaun", "familyName": "M", "picture": "https://p/x.png"}') - '{id,created,updated,tenants}'::text[] - 'emailVerified' AS updated;
-- Only verify_email sets emailVerified (issue 10, class 9): a user cannot claim an address they
-- never proved, whatever the value, and nothing else in the same call is written.
SELECT v AS claim, test_util.try(format('SELECT nile_auth.update_me(%L)', v)) AS result
  FROM unnest(ARRAY['{"emailVerified": true}', '{"emailVerified": "2020-01-01"}', '{"emailVerified": "not a time"}',
                    '{"name": "Claimed", "emailVerified": true}']) v;
SELECT nile_auth.me()->'emailVerified' AS still_unverified, nile_auth.me()->>'name' AS name_unchanged;
-- Hostile JSON (class 9): nesting PostgreSQL accepts but the extension cannot read back is the
-- documented 22023, never XX000; so are values of the wrong shape deep inside.
SELECT test_util.try(format('SELECT nile_auth.update_me(%L)', repeat('{"a":', 3000) || '1' || repeat('}', 3000))) AS deeply_nested;
SELECT test_util.try(format('SELECT nile_auth.update_me(%L)', '{"name": ' || repeat('[', 200) || repeat(']', 200) || '}')) AS deeply_nested_value;
SELECT (nile_auth.me()->>'updated')::timestamptz > (nile_auth.me()->>'created')::timestamptz AS updated_moved;
SELECT test_util.try($$SELECT nile_auth.update_me('{"email": "evil@example.com"}')$$);
SELECT test_util.try($$SELECT nile_auth.update_me('{"id": "00000000-0000-0000-0000-000000000000"}')$$);
SELECT test_util.try($$SELECT nile_auth.update_me('{"created": "2000-01-01"}')$$);
SELECT test_util.try($$SELECT nile_auth.update_me('{"updated": "2000-01-01"}')$$);
SELECT test_util.try($$SELECT nile_auth.update_me('{"isAdmin": true}')$$);
SELECT test_util.try($$SELECT nile_auth.update_me('{"name": 42}')$$);
SELECT test_util.try($$SELECT nile_auth.update_me('[]')$$);
SELECT test_util.try($$SELECT nile_auth.update_me(NULL)$$);
-- A refused change writes nothing, even alongside an allowed one.
SELECT test_util.try($$SELECT nile_auth.update_me('{"name": "Changed", "email": "evil@example.com"}')$$);
SELECT nile_auth.me()->>'name' AS name_unchanged, nile_auth.me()->>'email' AS email_unchanged;

-- The error table: 23505, 22023, 28P01.
SELECT test_util.try($$SELECT nile_auth.signup('SHAUN@EXAMPLE.COM', 'another password')$$) AS duplicate_email;
SELECT test_util.try($$SELECT nile_auth.signup('not-an-email', 'long enough pw')$$) AS malformed_email;
SELECT test_util.try($$SELECT nile_auth.signup('a@b', 'long enough pw')$$) AS malformed_email_2;
SELECT test_util.try($$SELECT nile_auth.signup('new@example.com', 'short')$$) AS short_password;
SELECT test_util.try($$SELECT nile_auth.signup('new@example.com', '')$$) AS empty_password;
SELECT test_util.try(format('SELECT nile_auth.signup(%L, %L)', 'new@example.com', repeat('x', 1025))) AS long_password;
SELECT test_util.try($$SELECT nile_auth.signup(NULL, 'long enough pw')$$) AS null_email;
SELECT test_util.try($$SELECT nile_auth.signup('new@example.com', NULL)$$) AS null_password;
SELECT test_util.try($$SELECT nile_auth.signup('new2@example.com', 'long enough pw', NULL, '  ')$$) AS empty_tenant_name;
SELECT test_util.try($$SELECT nile_auth.login('nobody@example.com', 'correct horse battery')$$) AS unknown_email;
SELECT test_util.try($$SELECT nile_auth.login('shaun@example.com', 'wrong horse battery')$$) AS wrong_password;
SELECT test_util.try($$SELECT nile_auth.login(NULL, 'x')$$) AS null_login;
SELECT test_util.try($$SELECT nile_auth.authenticate(NULL)$$) AS null_token;
SELECT test_util.try(format('SELECT nile_auth.login(%L, %L)', 'shaun@example.com', repeat('x', 1025))) AS long_login_password;
-- The minimum length is the DBA's setting, not the client's.
SELECT test_util.try('SET nile_auth.min_password_length = 1') AS client_cannot_lower_minimum;

-- Failed signups left nothing behind (checked as superuser: the tables are not readable here).
\c - postgres
SELECT count(*) - :users_before AS users, count(*) FILTER (WHERE lower(email) = 'new@example.com' OR email = 'new2@example.com') AS half_written
  FROM nile_auth.users;
SELECT count(*) - :tenants_before AS tenants FROM nile_auth.tenants;
SELECT t.name, tu.roles FROM nile_auth.tenant_users tu JOIN nile_auth.tenants t ON t.id = tu.tenant_id
  JOIN nile_auth.users u ON u.id = tu.user_id WHERE u.email = 'mary@example.com';
-- Stored hashes are argon2id with the OWASP minimum parameters, never the password.
SELECT password_hash LIKE '$argon2id$v=19$m=19456,t=2,p=1$%' AS argon2id_default,
       position('correct horse' in password_hash) = 0 AS no_plaintext
  FROM nile_auth.credentials c JOIN nile_auth.users u ON u.id = c.user_id WHERE u.email = 'Shaun@Example.com';
-- The email is stored as given.
SELECT email FROM nile_auth.users WHERE email ILIKE '%@example.com' ORDER BY created;
SET nile_auth.min_password_length = 20;
SELECT test_util.try($$SELECT nile_auth.signup('new@example.com', 'only 19 characters.')$$) AS below_raised_minimum;
RESET nile_auth.min_password_length;

-- Issue 10, class 9: one address in two Unicode normal forms is one address (stored in NFC),
-- and addresses with invisible or reordering characters, which look like another address,
-- are refused.
\c - nile_app
SELECT nile_auth.signup(U&'caf\00E9@nfc.test', 'cafe password 1')->>'email' = U&'caf\00E9@nfc.test' AS precomposed_signed_up;
SELECT test_util.try(format('SELECT nile_auth.signup(%L, %L)', U&'cafe\0301@nfc.test', 'other password 1')) AS combining_form_is_taken;
SELECT nile_auth.login(U&'cafe\0301@nfc.test', 'cafe password 1') ? 'token' AS logs_in_in_the_other_form;
SELECT test_util.try(format('SELECT nile_auth.signup(%L, %L)', e, 'some password 1')) AS lookalike
  FROM unnest(ARRAY[U&'zw\200Bsp@nfc.test', U&'bidi\202Egnp.test@nfc.test', U&'\FEFFbom@nfc.test', U&'caf\00E9\2060@nfc.test']) e;
