\set u random(0, :n - 1)
\set id (:u % :tenants) * :rpt + random(0, :rpt - 1)
\startpipeline
BEGIN;
SELECT set_config('request.jwt.claims', claims, true) FROM bench_sessions WHERE u = :u;
SELECT payload FROM items_claims WHERE id = :id;
COMMIT;
\endpipeline
