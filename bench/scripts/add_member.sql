\set t random(0, :tenants - 1)
\set u random(0, :users - 1)
SELECT nile_auth.add_member((SELECT id FROM bench_tenants WHERE n = :t), 'user' || :u || '@bench.test');
