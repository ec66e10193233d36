\set u random(0, :n - 1)
\set id (:u % :tenants) * :rpt + random(0, :rpt - 1)
\startpipeline
BEGIN;
SELECT payload FROM items_plain WHERE tenant_id = (SELECT tenant::uuid FROM bench_sessions WHERE u = :u) AND id = :id;
COMMIT;
\endpipeline
