-- Token verification: every forged, tampered or stale token yields no identity (28000 from
-- authenticate, NULL from user_id()); the key lifecycle (standby, current, retired, revoked).
\c - postgres
-- An HS256 key signs here, so tokens can be forged with SQL's HMAC: the standby is promoted and
-- an HS256 standby made, which the second rotation promotes.
SELECT nile_auth.rotate_signing_key('HS256') IS NOT NULL AS rotated,
       nile_auth.rotate_signing_key() IS NOT NULL AS rotated_again;
SELECT nile_auth.signup('tokens@example.com', 'token test password') AS u \gset
SELECT nile_auth.signup('victim@example.com', 'victim password') AS v \gset
SELECT kid AS key_kid, secret AS key_secret FROM nile_auth.signing_keys WHERE state = 'current' AND alg = 'HS256' \gset
SELECT kid AS standby_kid, secret AS standby_secret FROM nile_auth.signing_keys WHERE state = 'standby' AND alg = 'HS256' \gset
SELECT extract(epoch FROM now())::bigint AS now \gset

-- Tokens signed here with the real key (or a foreign one), varying one thing at a time.
CREATE TABLE test_util.tokens (name text PRIMARY KEY, token text);
GRANT SELECT ON test_util.tokens TO PUBLIC;
WITH base AS (
    SELECT jsonb_build_object('alg', 'HS256', 'typ', 'JWT', 'kid', :'key_kid') AS h,
           jsonb_build_object('sub', :'u'::jsonb->>'id', 'email', 'tokens@example.com', 'iat', :now,
                              'nbf', :now, 'exp', :now + 600, 'jti', 'j', 'iss', 'nile_auth',
                              'aud', current_database()) AS c,
           :'key_secret'::bytea AS k
)
INSERT INTO test_util.tokens
SELECT 'control: well formed', test_util.jwt(h, c, k) FROM base
UNION ALL SELECT 'expired', test_util.jwt(h, c || jsonb_build_object('iat', :now - 7200, 'nbf', :now - 7200, 'exp', :now - 3600), k) FROM base
UNION ALL SELECT 'not yet valid', test_util.jwt(h, c || jsonb_build_object('nbf', :now + 3600), k) FROM base
UNION ALL SELECT 'wrong audience', test_util.jwt(h, c || '{"aud": "some_other_db"}', k) FROM base
UNION ALL SELECT 'wrong issuer', test_util.jwt(h, c || '{"iss": "someone_else"}', k) FROM base
UNION ALL SELECT 'no exp', test_util.jwt(h, c - 'exp', k) FROM base
UNION ALL SELECT 'no sub', test_util.jwt(h, c - 'sub', k) FROM base
UNION ALL SELECT 'sub not a uuid', test_util.jwt(h, c || '{"sub": "admin"}', k) FROM base
UNION ALL SELECT 'user does not exist', test_util.jwt(h, c || jsonb_build_object('sub', gen_random_uuid()), k) FROM base
UNION ALL SELECT 'foreign key, real kid', test_util.jwt(h, c, gen_random_bytes(32)) FROM base
UNION ALL SELECT 'unknown kid', test_util.jwt(h || '{"kid": "no-such-key"}', c, k) FROM base
UNION ALL SELECT 'no kid', test_util.jwt(h - 'kid', c, k) FROM base
UNION ALL SELECT 'standby key, its kid', test_util.jwt(h || jsonb_build_object('kid', :'standby_kid'), c, :'standby_secret'::bytea) FROM base
UNION ALL SELECT 'alg ES256 header, HS256 key', test_util.jwt(h || '{"alg": "ES256"}', c, k) FROM base
UNION ALL SELECT 'alg HS512 header', test_util.jwt(h || '{"alg": "HS512"}', c, k) FROM base
UNION ALL SELECT 'crit header', test_util.jwt(h || '{"crit": ["exp"]}', c, k) FROM base
UNION ALL SELECT 'alg none', test_util.b64url(convert_to((h || '{"alg": "none"}')::text, 'utf8')) || '.' ||
                             test_util.b64url(convert_to(c::text, 'utf8')) || '.' FROM base
UNION ALL SELECT 'garbage', 'not a token'
UNION ALL SELECT 'empty parts', '..';

-- A real token whose claims are edited to another user, signature kept.
SELECT nile_auth.login('tokens@example.com', 'token test password')->'token'->>'jwt' AS real \gset
INSERT INTO test_util.tokens
SELECT 'tampered sub', split_part(:'real', '.', 1) || '.' ||
       test_util.b64url(convert_to((test_util.jwt_part(:'real', 2) || jsonb_build_object('sub', :'v'::jsonb->>'id'))::text, 'utf8')) ||
       '.' || split_part(:'real', '.', 3)
UNION ALL
SELECT 'tampered signature', left(:'real', -2) || CASE WHEN right(:'real', 2) = 'AA' THEN 'BB' ELSE 'AA' END;

\c - nile_app
SELECT name,
       test_util.try(format('SELECT nile_auth.authenticate(%L)', token)) AS authenticate,
       test_util.identity_under(token) IS NOT NULL AS user_id_set
  FROM test_util.tokens ORDER BY name;
-- The control row's authenticate() made that token the session's identity; the forged ones
-- changed nothing. After RESET the session has no identity.
SELECT nile_auth.user_id() = (:'u'::jsonb->>'id')::uuid AS control_token_is_session_identity;
RESET nile.auth_token;
SELECT nile_auth.user_id() IS NULL AS no_identity;
SELECT test_util.try('SELECT nile_auth.me()') AS me_without_identity;

-- SET works like authenticate(), SET LOCAL for one transaction (the pooler pattern).
SELECT token AS good FROM test_util.tokens WHERE name = 'control: well formed' \gset
BEGIN;
SET LOCAL nile.auth_token = :'good';
SELECT nile_auth.user_id() = (:'u'::jsonb->>'id')::uuid AS local_identity;
COMMIT;
SELECT nile_auth.user_id() IS NULL AS gone_after_commit, current_setting('nile.auth_token') AS setting_after_commit;
SELECT nile_auth.authenticate(:'good', true) IS NOT NULL AS authenticate_local;
SELECT nile_auth.user_id() IS NULL AS local_authenticate_ends_with_statement_transaction;
SET nile.auth_token = :'good';
SELECT nile_auth.me()->>'email' AS me_via_set;
RESET nile.auth_token;
SELECT nile_auth.user_id() IS NULL AS no_identity_after_reset;

-- Keys: application roles cannot manage them or see them; anyone may read the JWKS.
SELECT test_util.try('SELECT nile_auth.rotate_signing_key()') AS app_rotate;
SELECT test_util.try($$SELECT nile_auth.revoke_signing_key('x')$$) AS app_revoke;
SELECT test_util.try('SELECT nile_auth.list_signing_keys()') AS app_list;
SELECT test_util.try($$SELECT nile_auth._add_signing_key('ES256', 'current')$$) AS app_add;
SELECT test_util.try('SELECT nile_auth.jwks()') AS app_jwks;
-- 0.1.0's retire_signing_key is gone: "retired" now means a key that still verifies.
SELECT test_util.try($$SELECT nile_auth.retire_signing_key('x')$$) AS retire_is_gone;
SELECT nile_auth.login('tokens@example.com', 'token test password')->'token'->>'jwt' AS t_old \gset

-- A member of nile_auth_admin rotates to ES256: the HS256 standby signs first, while an ES256
-- standby is published; the next rotation makes that one current. Old tokens still verify.
\c - nile_keyadmin
SELECT nile_auth.rotate_signing_key('ES256') IS NOT NULL AS rotated_to_es256_standby;
SELECT nile_auth.rotate_signing_key() AS new_kid \gset
SELECT alg, state FROM nile_auth.list_signing_keys() k(j), jsonb_to_record(j) AS x(alg text, state text, kid text)
 ORDER BY j->>'created' DESC LIMIT 4;
SELECT test_util.try($$SELECT nile_auth.rotate_signing_key('RS256')$$) AS unknown_alg;
SELECT test_util.try($$SELECT nile_auth.revoke_signing_key('no-such-key')$$) AS revoke_unknown;
SELECT test_util.try('SELECT nile_auth.revoke_signing_key(NULL)') AS revoke_null;
SELECT test_util.try(format('SELECT nile_auth.revoke_signing_key(%L)', :'new_kid')) AS revoke_current;
\c - nile_app
SELECT nile_auth.login('tokens@example.com', 'token test password')->'token'->>'jwt' AS t_new \gset
SELECT test_util.jwt_part(:'t_new', 1)->>'kid' = :'new_kid' AS new_token_new_kid,
       test_util.jwt_part(:'t_new', 1)->>'alg' AS new_alg,
       test_util.jwt_part(:'t_old', 1)->>'kid' = :'key_kid' AS old_token_old_kid;
SELECT nile_auth.authenticate(:'t_old') = (:'u'::jsonb->>'id')::uuid AS retired_key_token_verifies;
-- The JWKS has the current and standby ES256 keys first and no HS256 key (those are secret).
SELECT nile_auth.jwks()->'keys'->0->>'kid' = :'new_kid' AS current_listed_first,
       nile_auth.jwks()->'keys'->1->>'kid' = (SELECT kid FROM nile_auth.signing_keys WHERE state = 'standby') AS standby_second,
       jsonb_path_query_array(nile_auth.jwks(), '$.keys[*].alg') @> '["HS256"]' AS hs256_published;

-- A retired key verifies only what it signed while current: a token claiming to be issued
-- later than its retirement (plus a minute's grace) is refused.
\c - postgres
SELECT extract(epoch FROM now())::bigint AS now \gset
SELECT test_util.jwt(jsonb_build_object('alg', 'HS256', 'typ', 'JWT', 'kid', :'key_kid'),
                     jsonb_build_object('sub', :'u'::jsonb->>'id', 'email', 'tokens@example.com', 'iat', :now + 300,
                                        'nbf', :now, 'exp', :now + 600, 'jti', 'j', 'iss', 'nile_auth',
                                        'aud', current_database()), :'key_secret'::bytea) AS late
\gset
SELECT test_util.try(format('SELECT nile_auth.authenticate(%L)', :'late')) AS minted_after_retirement;

-- Revoking the old key in another backend reaches a backend that has the token cached.
SELECT nile_auth.authenticate(:'t_old') IS NOT NULL AS cached_in_this_backend;
SELECT revoked AS revoked_elsewhere
  FROM dblink(format('host=%s port=%s dbname=%s user=nile_keyadmin',
                     current_setting('unix_socket_directories'), current_setting('port'), current_database()),
              format('SELECT nile_auth.revoke_signing_key(%L)', :'key_kid')) AS t(revoked boolean);
SELECT nile_auth.user_id() IS NULL AS cached_identity_dropped;
SELECT test_util.try(format('SELECT nile_auth.authenticate(%L)', :'t_old')) AS revoked_key_token;
SELECT nile_auth.authenticate(:'t_new') IS NOT NULL AS new_key_token_verifies;
SELECT nile_auth.revoke_signing_key(:'key_kid') AS revoke_again_is_noop;
SELECT state FROM nile_auth.signing_keys WHERE kid = :'key_kid';

-- Revoking the standby: no longer published; the next rotation, having nothing to promote,
-- makes a new key current at once (and a new standby).
SELECT kid AS es_standby FROM nile_auth.signing_keys WHERE state = 'standby' \gset
SELECT nile_auth.revoke_signing_key(:'es_standby') AS standby_revoked,
       nile_auth.jwks()::text LIKE '%' || :'es_standby' || '%' AS still_published;
SELECT nile_auth.rotate_signing_key() NOT IN (:'es_standby', :'new_kid') AS fresh_current;
SELECT count(*) FILTER (WHERE state = 'current') AS current_keys, count(*) FILTER (WHERE state = 'standby') AS standby_keys,
       bool_and(alg = 'ES256') FILTER (WHERE state IN ('current', 'standby')) AS es256
  FROM nile_auth.signing_keys;
SELECT nile_auth.authenticate(:'t_new') IS NOT NULL AS previous_current_still_verifies;

-- A deleted user's token stops verifying, and the user cannot log in.
UPDATE nile_auth.users SET deleted = now() WHERE email = 'tokens@example.com';
SELECT nile_auth.user_id() IS NULL AS deleted_user_has_no_identity;
SELECT test_util.try($$SELECT nile_auth.login('tokens@example.com', 'token test password')$$) AS deleted_user_login;
RESET nile.auth_token;
