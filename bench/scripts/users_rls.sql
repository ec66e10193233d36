\set u random(0, :n - 1)
\set id (:u % :tenants) * :rpt + random(0, :rpt - 1)
\startpipeline
BEGIN;
SELECT set_config('nile.auth_token', token, true), set_config('nile.tenant_id', tenant, true) FROM bench_sessions WHERE u = :u;
SELECT payload FROM items WHERE id = :id;
COMMIT;
\endpipeline
