\set id :base + random(0, :rpt - 1)
\startpipeline
BEGIN;
SELECT set_config('bench.auth_token', :tok, true), set_config('bench.tenant_id', :tid, true);
SELECT payload FROM items_plain WHERE tenant_id = :tid AND id = :id;
COMMIT;
\endpipeline
