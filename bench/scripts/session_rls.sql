\set id :base + random(0, :rpt - 1)
\startpipeline
BEGIN;
SELECT set_config('nile.auth_token', :tok, true), set_config('nile.tenant_id', :tid, true);
SELECT payload FROM items WHERE id = :id;
COMMIT;
\endpipeline
