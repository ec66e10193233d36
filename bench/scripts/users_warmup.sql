-- In front of each users_*.sql script (bench/run.py, USERS_WARMUP): the client's first
-- transaction verifies every token and membership of users u < n in its backend.
\if :warmed = 0
SELECT count(nile_auth.set_context(token, tenant::uuid)) FROM bench_sessions WHERE u < :n;
\set warmed 1
\endif
