#!/usr/bin/env python3
"""nile_auth benchmarks: what tenant isolation and identity cost, measured side by side.

Starts its own PostgreSQL 15 with the extension, loads a dataset, runs pgbench with the
scripts in bench/scripts, and prints a table of ratios (alternating arms, several rounds,
median reported). The report goes to bench/results/latest.md (or --out).

    python3 bench/run.py                 # reduced dataset (10x smaller than full), a few minutes
    python3 bench/run.py --size full     # 100k tenants, 1M users, 2M memberships, 10M rows
    python3 bench/run.py --quick         # seconds: proves the runner works (used by the tests)

Each arm is compared with its baseline: the same query written by hand, with an explicit
WHERE tenant_id = $1 on a table without row-level security, by the same non-superuser role.
Arm 3 is also run with many distinct users per backend, against a Supabase-style claims policy
as well, with the cache memory that takes; a big tenant shows whether its scans run in parallel.
"""

import argparse
import math
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ROOT / "bench" / "scripts"
PG_BIN = Path("/usr/lib/postgresql/15/bin")
APP_ROLE = "bench_app"
PASSWORD = "bench password"

SIZES = {
    # tenants, users (each in 2 tenants), application rows
    "quick": dict(tenants=100, users=1_000, rows=10_000),
    "reduced": dict(tenants=10_000, users=100_000, rows=1_000_000),
    "full": dict(tenants=100_000, users=1_000_000, rows=10_000_000),
}
SMALLER = {"full": "reduced", "reduced": "tenth", "quick": "quick"}
SIZES["tenth"] = dict(tenants=1_000, users=10_000, rows=0)
# The 'parallel' tenant's rows (load.sql), on top of `rows`: one tenant as large as a tenth of all.
BIG_TENANT_SHARE = 10

# Arm 3 by users per backend: the numbers of distinct users one backend serves (capped at the
# dataset's users), and the warm-up's length at each (measured) times this, so it never ends the run.
USERS_PER_BACKEND = {"quick": (1, 10, 100), "reduced": (1, 1_000, 10_000, 100_000),
                     "full": (1, 1_000, 10_000, 100_000)}
WARM_UP_MARGIN = 1.2
# Arm 4: tokens timed per uncached figure, and for the token of a session the backend knows.
UNCACHED_CALLS = 20_000
KNOWN_CALLS = 10_000


def keyed_users(shape):
    """How many users (0 to n - 1) get an API key in load.sql: those arms 3 and 4 sign in."""
    return min(shape["users"], max(UNCACHED_CALLS + 1, max(USERS_PER_BACKEND["full"])))

SERVER_SETTINGS = {
    "shared_buffers": "2GB",
    "work_mem": "16MB",
    "maintenance_work_mem": "512MB",
    "max_wal_size": "8GB",
    "checkpoint_timeout": "30min",
    "synchronous_commit": "off",
    "jit": "off",
    "max_worker_processes": "16",
    # Background work would land in whichever arm happens to be running; the loader vacuums
    # and checkpoints instead.
    "autovacuum": "off",
}


def log(msg):
    print(msg, file=sys.stderr, flush=True)


class Server:
    """A private cluster run as the postgres user (see scripts/cluster.sh)."""

    def __init__(self, directory, port):
        self.dir, self.port = directory, port

    def run(self, *args, check=True, env=None, capture=True):
        out = subprocess.run(args, text=True, env=env,
                             stdout=subprocess.PIPE if capture else None,
                             stderr=subprocess.PIPE if capture else None)
        if check and out.returncode != 0:
            raise RuntimeError(f"{' '.join(map(str, args))} failed:\n{out.stderr or ''}")
        return out

    def start(self, fresh):
        self.run("bash", str(ROOT / "scripts/cluster.sh"), "start" if fresh else "restart", self.dir, str(self.port))
        for name, value in SERVER_SETTINGS.items():
            self.sql("postgres", f"ALTER SYSTEM SET {name} = '{value}'")
        self.run("bash", str(ROOT / "scripts/cluster.sh"), "restart", self.dir, str(self.port))

    def stop(self):
        self.run("bash", str(ROOT / "scripts/cluster.sh"), "stop", self.dir, check=False)

    def env(self, user="postgres", options=None):
        env = dict(os.environ, PGHOST=self.dir, PGPORT=str(self.port), PGUSER=user)
        env.pop("PGOPTIONS", None)
        if options:
            env["PGOPTIONS"] = " ".join(f"-c {k}={v}" for k, v in options.items())
        return env

    def sql(self, db, query, user="postgres", options=None):
        out = self.run(str(PG_BIN / "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", db,
                       "-c", query, env=self.env(user, options))
        return out.stdout.strip()

    def sql_file(self, db, path, variables, user="postgres"):
        """Runs a psql script (one backend throughout) and returns its output."""
        args = [str(PG_BIN / "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", db, "-f", str(path)]
        for k, v in variables.items():
            args += ["-v", f"{k}={v}"]
        return self.run(*args, env=self.env(user)).stdout

    def pgbench(self, db, script, seconds, clients=1, user=APP_ROLE, options=None, defines=None, log_dir=None,
                skip_first=False, preamble=None):
        """Runs pgbench with one script, or several (a list) mixed at random per transaction.
        Returns (tps, average latency ms, per-transaction latencies in µs by script index); with
        `skip_first`, the latencies leave out each client's first transaction (its warm-up).
        `preamble` (a script file) goes in front of every script."""
        scripts = [script] if isinstance(script, str) else script
        args = [str(PG_BIN / "pgbench"), "-n", "-M", "prepared", "-T", str(seconds), "-c", str(clients),
                "-j", str(clients), db]
        with tempfile.TemporaryDirectory() as tmp:
            for name in scripts:
                path = SCRIPTS / name
                if preamble:
                    path = Path(tmp) / name
                    path.write_text((SCRIPTS / preamble).read_text() + (SCRIPTS / name).read_text())
                args += ["-f", str(path)]
            return self._pgbench(args, scripts, user, options, defines, log_dir, skip_first)

    def _pgbench(self, args, scripts, user, options, defines, log_dir, skip_first):
        for k, v in (defines or {}).items():
            args += ["-D", f"{k}={v}"]
        if log_dir:
            args += ["-l", "--log-prefix", str(Path(log_dir) / "tx")]
        out = self.run(*args, env=self.env(user, options), check=False)
        if out.returncode != 0:
            raise RuntimeError(f"pgbench {scripts} failed:\n{out.stdout}\n{out.stderr}")
        tps = float(re.search(r"tps = ([\d.]+)", out.stdout).group(1))
        lat = float(re.search(r"latency average = ([\d.]+) ms", out.stdout).group(1))
        latencies = {i: [] for i in range(len(scripts))}
        if log_dir:
            # Log lines: client transaction latency_us script_index epoch_s epoch_us, each
            # client's in the order it ran them.
            started = set()
            for f in Path(log_dir).glob("tx*"):
                for line in f.read_text().splitlines():
                    fields = line.split()
                    if len(fields) < 4:
                        continue
                    if skip_first and fields[0] not in started:
                        started.add(fields[0])
                        continue
                    latencies[int(fields[3])].append(int(fields[2]))
                f.unlink()
        return tps, lat, latencies if len(scripts) > 1 else latencies[0]

    def mixed_latencies(self, db, scripts, seconds, **kw):
        """Mean latency in µs of each script, run in one pgbench session that picks a script at
        random for every transaction: the scripts share every moment of the run, so the
        machine's drift (a shared VM's CPU steal moves speed by tens of percent within minutes)
        falls on all of them alike."""
        with tempfile.TemporaryDirectory() as tmp:
            os.chmod(tmp, 0o777)
            _, _, by_script = self.pgbench(db, scripts, seconds, 1, log_dir=tmp, **kw)
        return [statistics.fmean(by_script[i]) for i in range(len(scripts))]


def load(server, db, size, with_rows):
    """Loads tenants, users, memberships and (optionally) the application tables."""
    shape = SIZES[size]
    rows = shape["rows"] if with_rows else 0
    log(f"loading {db}: {shape['tenants']} tenants, {shape['users']} users, "
        f"{2 * shape['users']} memberships, {rows} rows (+ {rows // BIG_TENANT_SHARE} in one tenant)")
    server.run(str(PG_BIN / "dropdb"), "--if-exists", db, env=server.env())
    server.run(str(PG_BIN / "createdb"), db, env=server.env())
    t0 = time.time()
    server.sql_file(db, ROOT / "bench" / "load.sql", {
        "tenants": shape["tenants"], "users": shape["users"], "rows": rows, "big_rows": rows // BIG_TENANT_SHARE,
        "keyed_users": keyed_users(shape), "app_role": APP_ROLE, "password": f"'{PASSWORD}'",
    })
    server.sql(db, "VACUUM (ANALYZE)")
    server.sql(db, "CHECKPOINT")
    # Let the kernel write the load out now rather than during the first measured arm.
    subprocess.run(["sync"], check=False)
    time.sleep(2)
    log(f"  loaded in {time.time() - t0:.0f} s")


def median(values):
    return statistics.median(values) if values else float("nan")


def percentile(values, p):
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def compare(server, db, name, base_script, arm_script, rounds, seconds, options, defines):
    """Baseline and arm side by side: each round is one pgbench run that mixes the two scripts
    per transaction (see mixed_latencies). A round's ratio is the throughput of one client
    running the arm over one running the baseline, i.e. mean baseline latency over mean arm
    latency; the result is the median over rounds. The session has the arm's settings (`options`);
    the baseline's table has no policy, so they do nothing for it."""
    base_lat, arm_lat, ratios = [], [], []
    server.mixed_latencies(db, [base_script, arm_script], 1, options=options, defines=defines)  # warm-up
    for r in range(rounds):
        base, arm = server.mixed_latencies(db, [base_script, arm_script], seconds, options=options, defines=defines)
        log(f"    round {r + 1}: baseline {base:.1f} µs, arm {arm:.1f} µs")
        base_lat.append(base)
        arm_lat.append(arm)
        ratios.append(base / arm)
    result = dict(name=name, base_tps=1e6 / median(base_lat), arm_tps=1e6 / median(arm_lat),
                  base_lat=median(base_lat), arm_lat=median(arm_lat), ratio=median(ratios), ratios=ratios)
    log(f"  {name}: ratio {result['ratio']:.3f}")
    return result


def prewarm(server, db):
    """Reads the extension's tables and indexes (and bench_tenants, which add_member.sql reads)
    into shared buffers, as a running system's working set would be, and returns their MB. Arm 6
    measures the operations, not this VM's disk: the full dataset is larger than shared_buffers
    and the VM does not keep it in the page cache."""
    return int(server.sql(db, "CREATE EXTENSION IF NOT EXISTS pg_prewarm; "
                              "SELECT round(sum(pg_prewarm(c.oid)) * current_setting('block_size')::int / 1048576) "
                              "FROM pg_class c WHERE c.relkind IN ('r', 'i') AND "
                              "(c.relnamespace = 'nile_auth'::regnamespace OR c.relname LIKE 'bench\\_tenants%')"))


def explain(server, db, query, options):
    env = server.env(APP_ROLE, options)
    out = server.run(str(PG_BIN / "psql"), "-X", "-q", "-A", "-t", "-d", db, "-c",
                     f"EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, TIMING OFF, SUMMARY OFF) {query}", env=env)
    return out.stdout.rstrip()


def per_call_us(server, db, expr, calls, options, baseline="1", fresh=False, known=None):
    """Microseconds per evaluation of `expr` (of g = 1 to `calls`) inside one statement, less one
    of `baseline`: the best of 3 timings of each, taken inside the server (bench_seconds in
    load.sql). With `fresh` (uncached calls), each timing of `expr` runs in a backend of its own
    (a psql of its own), warmed by a few calls of `baseline` first: within one backend, a second
    timing would find the tokens and memberships the first one verified in that backend's caches.
    With `known`, that backend also evaluates `known` for the same g first: what it has seen."""
    env = server.env(APP_ROLE, options)
    def timed(e, repeats, warm=()):
        query = f"SELECT min(bench_seconds($q${e}$q$, {calls})) FROM generate_series(1, {repeats})"
        args = [str(PG_BIN / "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", db]
        for statement in warm:
            args += ["-c", statement]
        out = server.run(*args, "-c", query, env=env)
        return float(out.stdout.split()[-1])
    if fresh:
        warm = [f"SELECT count({baseline}) FROM generate_series(1, 10) g"]
        if known:
            warm.append(f"SELECT count({known}) FROM generate_series(1, {calls}) g")
        cost = min(timed(expr, 1, warm) for _ in range(3))
    else:
        cost = timed(expr, 3)
    return max(0.0, (cost - timed(baseline, 3)) / calls * 1e6)


# Arm 4, uncached: tokens of each signing algorithm, the default (ES256) first in reports.
ALGS = ["ES256", "EdDSA", "HS256"]
KNOWN_SESSION_ROW = "user_id(), new token (refresh) of a user and session the backend knows"


def current_alg(server, db):
    return server.sql(db, "SELECT alg FROM nile_auth.signing_keys WHERE state = 'current'")


def make_current(server, db, alg):
    """Makes a key of `alg` the signing key: rotate_signing_key(alg) promotes the standby and
    makes a standby of `alg`, a second promotes that. The keys replaced retire, so the tokens
    they signed keep verifying."""
    for _ in range(2):
        if current_alg(server, db) != alg:
            server.sql(db, f"SELECT nile_auth.rotate_signing_key('{alg}')")
    if current_alg(server, db) != alg:
        raise RuntimeError(f"could not make an {alg} key current")


def mint_tokens(server, db, count):
    """Tokens for users 0 to `count`, one batch per algorithm in bench_tokens, each minted while
    a key of that algorithm signed, through login_with_api_key (the API keys of load.sql): what
    login returns, without argon2. Ends with the default algorithm current (ES256, signing its
    batch). Checks that every token verifies, in a backend of its own (the measuring backends
    must not have seen them): user_id() is NULL, not an error, for a token that does not."""
    server.sql(db, "TRUNCATE bench_tokens")
    for alg in ALGS[1:] + ALGS[:1]:
        make_current(server, db, alg)
        t0 = time.time()
        # MATERIALIZED: one login per row, however many columns read its result.
        server.sql(db, f"WITH l AS MATERIALIZED (SELECT n, nile_auth.login_with_api_key('bench-key-' || n) AS j "
                       f"FROM generate_series(0, {count}) n) "
                       f"INSERT INTO bench_tokens SELECT '{alg}', n, j->'token'->>'jwt', j->>'refreshToken' FROM l")
        log(f"  {count + 1} {alg} tokens minted in {time.time() - t0:.1f} s")
    rows = server.sql(db, "SELECT alg, count(bench_identity(n, alg)) FROM bench_tokens GROUP BY alg", user=APP_ROLE)
    verified = dict(line.split("|") for line in rows.splitlines())
    if verified != {alg: str(count + 1) for alg in ALGS}:
        raise RuntimeError(f"tokens that verify, by algorithm: {verified} (of {count + 1} each)")


def refresh_tokens(server, db, count):
    """Batch 'refreshed' in bench_tokens: for users 0 to `count`, a second access token of the
    default algorithm's batch's session, from refresh() with that session's refresh token. Checks
    that each is new, names the same session (sid) as the first, and verifies."""
    t0 = time.time()
    server.sql(db, f"INSERT INTO bench_tokens SELECT 'refreshed', n, nile_auth.refresh(refresh)->'token'->>'jwt' "
                   f"FROM bench_tokens WHERE alg = '{ALGS[0]}' AND n <= {count}")
    log(f"  {count + 1} tokens refreshed in {time.time() - t0:.1f} s")
    same_session = server.sql(db, f"SELECT count(*) FROM bench_tokens a JOIN bench_tokens b USING (n) "
                                  f"WHERE a.alg = '{ALGS[0]}' AND b.alg = 'refreshed' AND a.token <> b.token "
                                  f"AND bench_jwt_payload(a.token)->>'sid' = bench_jwt_payload(b.token)->>'sid'")
    verified = server.sql(db, "SELECT count(bench_identity(n, 'refreshed')) FROM bench_tokens WHERE alg = 'refreshed'",
                          user=APP_ROLE)
    if same_session != str(count + 1) or verified != str(count + 1):
        raise RuntimeError(f"refreshed tokens: {same_session} of the same session, {verified} verify (of {count + 1})")


def fill_sessions(server, db, count, tenants):
    """bench_sessions for users 0 to count - 1 (load.sql): a token from login_with_api_key,
    signed by the default algorithm's key, the user's first tenant, and the claims PostgREST
    would set for the request: the token's payload plus tenant_id."""
    make_current(server, db, ALGS[0])
    server.sql(db, "TRUNCATE bench_sessions")
    t0 = time.time()
    server.sql(db, f"""WITH s AS MATERIALIZED (
                         SELECT u, nile_auth.login_with_api_key('bench-key-' || u)->'token'->>'jwt' AS token,
                                (SELECT id::text FROM bench_tenants WHERE n = u % {tenants}) AS tenant
                           FROM generate_series(0, {count - 1}) u)
                       INSERT INTO bench_sessions
                       SELECT u, token, tenant, (bench_jwt_payload(token) || jsonb_build_object('tenant_id', tenant))::text
                         FROM s""")
    log(f"  {count} sessions opened in {time.time() - t0:.1f} s")
    # As the loader does: no vacuum or write-out of these rows lands in the measured runs.
    server.sql(db, "VACUUM (ANALYZE) bench_sessions")
    server.sql(db, "CHECKPOINT")


# Arm 3 by users per backend, in pgbench's script order: baseline, nile_auth, claims reference.
USERS_SCRIPTS = ["users_plain.sql", "users_rls.sql", "users_claims.sql"]
USERS_WARMUP = "users_warmup.sql"  # in front of each: the client's first transaction warms its backend
USERS_ARMS = ["plain", "nile", "claims"]

# One backend: its anonymous memory before and after verifying the tokens and memberships of
# users u < :n, as each run's warm-up does (bench/scripts/users_*.sql). The first two statements
# (a set_context of a user outside that set, the warm-up's statement for no rows) leave out what
# any backend pays once: catalog caches, signing keys, the statement's first planning. The
# warm-up's time is the server's: the clock read once the count is done, less the statement's start.
CACHE_GROWTH = r"""
SELECT count(nile_auth.set_context(:'prime_token', :'prime_tenant'::uuid)) AS ignored \gset
SELECT count(nile_auth.set_context(token, tenant::uuid)) AS ignored FROM bench_sessions WHERE u < 0 \gset
SELECT pg_backend_pid() AS pid \gset
\setenv BENCH_PID :pid
\! grep RssAnon /proc/$BENCH_PID/status
SELECT 'verified ' || count(nile_auth.set_context(token, tenant::uuid)),
       'seconds ' || extract(epoch FROM clock_timestamp() - statement_timestamp())
  FROM bench_sessions WHERE u < :n;
\! grep RssAnon /proc/$BENCH_PID/status
"""


def cache_growth(server, db, n, prime):
    """(MB of RssAnon the backend grew by, seconds the warm-up took) for `n` users (CACHE_GROWTH).
    The runner reads /proc/<pid>/status of a backend on the same machine (it is world-readable)."""
    with tempfile.NamedTemporaryFile("w", suffix=".sql") as script:
        script.write(CACHE_GROWTH)
        script.flush()
        out = server.sql_file(db, script.name, dict(n=n, prime_token=prime[0], prime_tenant=prime[1]), user=APP_ROLE)
    rss_kb = [int(m) for m in re.findall(r"RssAnon:\s+(\d+) kB", out)]
    verified = int(re.search(r"verified (\d+)", out).group(1))
    if len(rss_kb) != 2 or verified != n:
        raise RuntimeError(f"cache memory for {n} users: unexpected output\n{out}")
    return (rss_kb[1] - rss_kb[0]) / 1024, float(re.search(r"seconds ([\d.]+)", out).group(1))


def buffer_counts(server, db):
    """(blocks found in shared buffers, blocks read) in `db` so far. Waits for the bench role's
    backends to exit first: a backend adds its counts on exit."""
    for _ in range(50):
        if server.sql(db, f"SELECT count(*) FROM pg_stat_activity WHERE usename = '{APP_ROLE}'") == "0":
            break
        time.sleep(0.1)
    hit, read = server.sql(db, f"SELECT blks_hit, blks_read FROM pg_stat_database WHERE datname = '{db}'").split("|")
    return int(hit), int(read)


def users_per_backend(server, db, size, shape, rounds, seconds, prime):
    """Arm 3 with N distinct users cycling through one backend, for each N of USERS_PER_BACKEND:
    each round one pgbench run mixing USERS_SCRIPTS per transaction (see compare), whose client
    first verifies every token and membership of users u < N in its backend (left out of the
    means; the run is that much longer). Also the cache memory of a backend serving N users."""
    ns = sorted({min(n, shape["users"]) for n in USERS_PER_BACKEND[size]})
    fill_sessions(server, db, ns[-1], shape["tenants"])
    defines = dict(tenants=shape["tenants"], rpt=shape["rows"] // shape["tenants"], warmed=0)
    out = []
    for n in ns:
        memory_mb, warm_s = cache_growth(server, db, n, prime)
        run_s = seconds + math.ceil(WARM_UP_MARGIN * warm_s)
        log(f"  {n} users: warm-up {warm_s:.2f} s, cache memory {memory_mb:.1f} MB; runs of {run_s} s")
        hit0, read0 = buffer_counts(server, db)
        lat = {arm: [] for arm in USERS_ARMS}
        for r in range(rounds):
            by_arm = dict(zip(USERS_ARMS, server.mixed_latencies(db, USERS_SCRIPTS, run_s, skip_first=True, preamble=USERS_WARMUP,
                                                                 defines=dict(defines, n=n))))
            log(f"    round {r + 1}: " + ", ".join(f"{arm} {us:.1f} µs" for arm, us in by_arm.items()))
            for arm, us in by_arm.items():
                lat[arm].append(us)
        hit1, read1 = buffer_counts(server, db)
        ratios = {arm: [b / a for b, a in zip(lat["plain"], lat[arm])] for arm in ("nile", "claims")}
        out.append(dict(n=n, memory_mb=memory_mb, warm_s=warm_s, **{f"{arm}_lat": median(v) for arm, v in lat.items()},
                        nile_ratio=median(ratios["nile"]), claims_ratio=median(ratios["claims"]),
                        nile_ratios=ratios["nile"],
                        hit_pct=100 * (hit1 - hit0) / max(1, hit1 - hit0 + read1 - read0)))
        log(f"  {n} users: nile_auth {out[-1]['nile_ratio']:.3f}, claims {out[-1]['claims_ratio']:.3f}")
    return out


def parallelism(plan):
    """(has a Gather node, workers launched) of an EXPLAIN ANALYZE plan."""
    launched = re.findall(r"Workers Launched: (\d+)", plan)
    return "Gather" in plan, sum(map(int, launched))


def big_tenant(server, db, shape, rounds, seconds, big, token):
    """The 'parallel' tenant (load.sql): its count, as its member, against the hand-written
    query; both plans; whether each runs in parallel; and a ratio as arm 2a's."""
    end_user = {"nile.auth_token": token, "nile.tenant_id": big}
    counts = (int(server.sql(db, "SELECT count(*) FROM items", user=APP_ROLE, options=end_user)),
              int(server.sql(db, f"SELECT count(*) FROM items_plain WHERE tenant_id = '{big}'", user=APP_ROLE)))
    plans = (explain(server, db, "SELECT count(*) FROM items", end_user),
             explain(server, db, f"SELECT count(*) FROM items_plain WHERE tenant_id = '{big}'", {}))
    ratio = compare(server, db, "big tenant count", "count_plain.sql", "count_rls.sql", rounds, seconds, end_user,
                    dict(tid=big))
    policy = server.sql(db, "SELECT string_agg(format('%s (%s): %s', policyname, permissive, qual), '; ') "
                            "FROM pg_policies WHERE schemaname = 'public' AND tablename = 'items'")
    marking = server.sql(db, "SELECT CASE proparallel WHEN 's' THEN 'SAFE' WHEN 'r' THEN 'RESTRICTED' ELSE 'UNSAFE' END "
                             "FROM pg_proc WHERE oid = 'nile_auth.tenant_id()'::regprocedure")
    return dict(rows=shape["rows"] // BIG_TENANT_SHARE, counts=counts, plans=plans,
                parallel=tuple(map(parallelism, plans)), ratio=ratio, policy=policy, marking=marking)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", choices=["reduced", "full"], default="reduced")
    ap.add_argument("--quick", action="store_true", help="tiny dataset, 1 s runs: proves the runner works")
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--seconds", type=int, default=4, help="length of each pgbench run")
    ap.add_argument("--no-build", action="store_true", help="use the installed extension as is")
    ap.add_argument("--reuse", action="store_true", help="reuse the loaded databases of a previous run")
    ap.add_argument("--dir", default="/tmp/nile_auth-bench")
    ap.add_argument("--port", type=int, default=55499)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "latest.md"))
    args = ap.parse_args()
    size = "quick" if args.quick else args.size
    rounds, seconds = (1, 1) if args.quick else (args.rounds, args.seconds)

    if not args.no_build:
        log("building and installing the extension (release)")
        subprocess.run(["cargo", "pgrx", "install", "--release", "--pg-config", str(PG_BIN / "pg_config")],
                       cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    server = Server(args.dir, args.port)
    server.start(fresh=not args.reuse)
    try:
        report = run_arms(server, size, rounds, seconds, args.reuse)
    finally:
        server.stop()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(report)
    print(report)
    log(f"report written to {args.out}")


def run_arms(server, size, rounds, seconds, reuse):
    db, small_db = "bench", "bench_small"
    if not reuse:
        load(server, db, size, with_rows=True)
        load(server, small_db, SMALLER[size], with_rows=False)
    shape = SIZES[size]
    rpt = shape["rows"] // shape["tenants"]
    k = shape["tenants"] // 2                          # the tenant every arm works in
    tid = server.sql(db, f"SELECT id FROM bench_tenants WHERE n = {k}")
    email = f"user{k}@bench.test"                      # user k's first tenant is tenant k
    token = server.sql(db, f"SELECT nile_auth.login('{email}', '{PASSWORD}')->'token'->>'jwt'", user=APP_ROLE)
    tenant_opt = {"nile.tenant_id": tid}
    end_user_opt = {"nile.tenant_id": tid, "nile.auth_token": token}
    row = dict(base=k * rpt, rpt=rpt, tid=tid)
    results = []

    log("arms 1-3")
    results.append(("1. point lookup", 0.95, compare(
        server, db, "point lookup", "point_plain.sql", "point_rls.sql", rounds, seconds, tenant_opt, row)))
    results.append(("2a. tenant scan: count", 0.95, compare(
        server, db, "count", "count_plain.sql", "count_rls.sql", rounds, seconds, tenant_opt, row)))
    results.append(("2b. tenant scan: 50-row page", 0.95, compare(
        server, db, "page", "page_plain.sql", "page_rls.sql", rounds, seconds, tenant_opt, row)))
    results.append(("3. end-user transaction", 0.85, compare(
        server, db, "end-user transaction", "session_plain.sql", "session_rls.sql", rounds, seconds, {},
        dict(row, tok=token))))

    plans = {
        "1. point lookup (RLS)": explain(server, db, f"SELECT payload FROM items WHERE id = {k * rpt + rpt // 2}", tenant_opt),
        "1. point lookup (baseline)": explain(server, db, f"SELECT payload FROM items_plain WHERE tenant_id = '{tid}' AND id = {k * rpt + rpt // 2}", {}),
        "2a. count (RLS)": explain(server, db, "SELECT count(*) FROM items", tenant_opt),
        "2a. count (baseline)": explain(server, db, f"SELECT count(*) FROM items_plain WHERE tenant_id = '{tid}'", {}),
        "2b. page (RLS)": explain(server, db, "SELECT id, payload FROM items ORDER BY id LIMIT 50", tenant_opt),
        "2b. page (baseline)": explain(server, db, f"SELECT id, payload FROM items_plain WHERE tenant_id = '{tid}' ORDER BY id LIMIT 50", {}),
    }
    # The policy's predicate, `tenant_id = nile_auth.tenant_id()`, or `tenant_id = $0` when the
    # policy reads the tenant once per statement (`tenant_id = (SELECT nile_auth.tenant_id())`).
    index_cond = all(re.search(r"Index Cond: \(+tenant_id = (nile_auth\.tenant_id\(\)|\$\d+)\)", plans[p])
                     for p in ("2a. count (RLS)", "2b. page (RLS)"))

    log("arm 3 detail and arm 4: per-call costs")
    # Arm 3's extra time, split: the baseline plus the same set_config statement on settings
    # nile_auth never reads isolates the protocol cost of that statement from nile_auth's work.
    keys = ["plain", "plain + set_config", "nile_auth"]
    split = {key: [] for key in keys}
    for _ in range(rounds):
        lat = server.mixed_latencies(db, ["session_plain.sql", "session_plain_set.sql", "session_rls.sql"],
                                     seconds, defines=dict(row, tok=token))
        for key, v in zip(keys, lat):
            split[key].append(v)
    arm3_split = {key: median(v) for key, v in split.items()}
    calls = 2_000 if size == "quick" else 100_000
    per_call = {
        "user_id(), cached": per_call_us(server, db, "nile_auth.user_id()", calls, end_user_opt),
        "tenant_id(), cached (trusted backend)": per_call_us(server, db, "nile_auth.tenant_id()", calls, tenant_opt),
        "tenant_id(), cached (end user)": per_call_us(server, db, "nile_auth.tenant_id()", calls, end_user_opt),
    }

    log("arm 5: login")
    phc = server.sql(db, "SELECT password_hash FROM nile_auth.credentials LIMIT 1")
    login_defs = dict(email=email, password=PASSWORD, phc=phc)
    with tempfile.TemporaryDirectory() as tmp:
        os.chmod(tmp, 0o777)
        # Both in one pgbench run, picked at random per transaction, so they share every moment
        # of it (see mixed_latencies); as postgres, because _argon2_verify is superuser-only
        # (login does not depend on its caller).
        _, _, by_script = server.pgbench(db, ["argon2_verify.sql", "login.sql"], seconds * 4, 1, user="postgres",
                                         defines=login_defs, log_dir=tmp)
    login_alone = server.pgbench(db, "login.sql", seconds * 2, 1, defines=login_defs)
    verify = (0.0, 0.0, by_script[0])
    login1 = (login_alone[0], login_alone[1], by_script[1])
    login2 = server.pgbench(db, "login.sql", seconds * 2, 2, defines=login_defs)
    login_ratio = median(login1[2]) / median(verify[2])

    log("arm 6: membership operations at two sizes")
    membership, warmed_mb = {}, {}
    for label, database, sz in ((f"{size}", db, size), (f"{SMALLER[size]}", small_db, SMALLER[size])):
        shape6 = SIZES[sz]
        big = server.sql(database, "SELECT id FROM nile_auth.tenants WHERE name = 'big'")
        multi = server.sql(database, f"SELECT nile_auth.login('multi@bench.test', '{PASSWORD}')->'token'->>'jwt'", user=APP_ROLE)
        defs = dict(tenants=shape6["tenants"], users=shape6["users"])
        warmed_mb[label] = prewarm(server, database)
        ops = {}
        with tempfile.TemporaryDirectory() as tmp:
            os.chmod(tmp, 0o777)
            ops["add_member"] = server.pgbench(database, "add_member.sql", seconds, 1, defines=defs, log_dir=tmp)[2]
            ops["list_users (100 members)"] = server.pgbench(database, "list_users.sql", seconds, 1, options={"nile.tenant_id": big}, log_dir=tmp)[2]
            ops["list_tenants (user in 20)"] = server.pgbench(database, "list_tenants.sql", seconds, 1, options={"nile.auth_token": multi}, log_dir=tmp)[2]
        membership[label] = {op: (percentile(v, 50) / 1000, percentile(v, 99) / 1000) for op, v in ops.items()}

    # After arms 5 and 6, so that they run on the database as before (the sessions this opens
    # are written out before it measures anything).
    log("arm 3 by users per backend, and cache memory")
    parallel_tid = server.sql(db, "SELECT id FROM nile_auth.tenants WHERE name = 'parallel'")
    parallel_token = server.sql(db, f"SELECT nile_auth.login('parallel@bench.test', '{PASSWORD}')->'token'->>'jwt'",
                                user=APP_ROLE)
    # Every per-backend cache size the extension has (token_cache_size, membership_cache_size, …).
    cache_sizes = dict(line.split("|") for line in server.sql(
        db, "SELECT name, setting FROM pg_settings WHERE name LIKE 'nile\\_auth.%cache\\_size' ORDER BY name",
        user=APP_ROLE).splitlines())
    by_users = users_per_backend(server, db, size, shape, rounds, seconds, (parallel_token, parallel_tid))

    log("big tenant: parallel plan")
    big = big_tenant(server, db, shape, rounds, seconds, parallel_tid, parallel_token)
    plans["big tenant count (RLS, as its member)"], plans["big tenant count (baseline)"] = big["plans"]

    # Last, as it rotates the signing keys (and leaves ES256 current, as a new installation).
    log("arm 4: uncached calls, tokens of each signing algorithm")
    uncached_calls = min(UNCACHED_CALLS, shape["users"] - 1)   # users 1..n (0 is the baseline's); keys in load.sql
    mint_tokens(server, db, uncached_calls)
    by_alg = {alg: per_call_us(server, db, f"bench_identity(g, '{alg}')", uncached_calls, {},
                               baseline=f"bench_identity(0, '{alg}')", fresh=True) for alg in ALGS}
    for alg, us in by_alg.items():
        log(f"  user_id(), uncached, {alg}: {us:.2f} µs")
    per_call["user_id(), uncached (new token each call)"] = by_alg[ALGS[0]]
    per_call["tenant_id(), uncached (new token and membership each call)"] = per_call_us(
        server, db, "bench_tenant(g)", uncached_calls, {}, baseline="bench_tenant(0)", fresh=True)
    per_call["membership check, uncached (the difference)"] = max(
        0.0, per_call["tenant_id(), uncached (new token and membership each call)"]
        - per_call["user_id(), uncached (new token each call)"])
    # A new token of a user and session the backend has verified before: users 1..known's
    # first tokens are verified in the timing backend, then a second token of each session.
    known_calls = min(KNOWN_CALLS, uncached_calls)
    refresh_tokens(server, db, known_calls)
    per_call[KNOWN_SESSION_ROW] = per_call_us(
        server, db, "bench_identity(g, 'refreshed')", known_calls, {}, baseline="bench_identity(0, 'refreshed')",
        fresh=True, known=f"bench_identity(g, '{ALGS[0]}')")

    return render(size, shape, rounds, seconds, results, plans, index_cond, per_call, by_alg,
                  (verify, login1, login2, login_ratio), (membership, warmed_mb), server, arm3_split,
                  (by_users, cache_sizes), big, known_calls)


def verdict(ok):
    return "PASS" if ok else "**FAIL**"


def render_users(shape, rounds, seconds, by_users, cache_sizes):
    """The report's sections for arm 3 by users per backend and the cache memory."""
    at_target = [r for r in by_users if r["n"] == 10_000]
    largest = max(by_users, key=lambda r: r["memory_mb"])
    lines = [
        "", "## Arm 3 by users per backend", "",
        "N distinct users cycle through one backend, as through one pooled connection. `bench_sessions` "
        "holds, for each user u < N, a token from a real `login_with_api_key`, u's first tenant "
        f"(u mod {shape['tenants']:,}) and the claims PostgREST would set for the request (the token's "
        "payload plus `tenant_id`). Each round is one pgbench run (1 client, `-M prepared`) that picks one "
        "of three pipelined transactions at random per transaction, for a random u < N and a random row "
        "of u's tenant; all three do the same one lookup of `bench_sessions`:", "",
        "- baseline: `BEGIN; SELECT payload FROM items_plain WHERE tenant_id = (SELECT tenant::uuid FROM "
        "bench_sessions WHERE u = $1) AND id = $2; COMMIT;`",
        "- nile_auth: `BEGIN; SELECT set_config('nile.auth_token', token, true), set_config('nile.tenant_id', "
        "tenant, true) FROM bench_sessions WHERE u = $1; SELECT payload FROM items WHERE id = $2; COMMIT;`",
        "- claims (reference): `BEGIN; SELECT set_config('request.jwt.claims', claims, true) FROM "
        "bench_sessions WHERE u = $1; SELECT payload FROM items_claims WHERE id = $2; COMMIT;`, on a third "
        "copy of the rows under the Supabase-style policy `tenant_id = (SELECT (current_setting("
        "'request.jwt.claims', true)::jsonb ->> 'tenant_id')::uuid)`, which believes the claims and checks "
        "nothing in the database.", "",
        "Before its first transaction, the client verifies every token and membership of users u < N in "
        "its backend (one `set_context` each), so no run starts cold; that transaction is left out of the "
        f"means, and each run lasts the warm-up's time (as measured below) × {WARM_UP_MARGIN} plus {seconds} s. "
        "Ratios are mean baseline latency over mean arm latency; the median of "
        f"{rounds} rounds. Shared-buffer hits: of the blocks all runs at that N read (`pg_stat_database`); "
        "where the N users' tenants' rows do not fit in shared buffers, all three arms read from the "
        "operating system alike.", "",
        "| users per backend | baseline µs | nile_auth µs | claims µs | nile_auth ratio | claims ratio | "
        "nile_auth ratios by round | shared-buffer hits | nile_auth ≥ 0.90 | nile_auth ahead of claims |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | --- | --- |",
    ]
    for r in by_users:
        by_round = " ".join(f"{x:.2f}" for x in r["nile_ratios"])
        target = verdict(r["nile_ratio"] >= 0.90) if r["n"] == 10_000 else ""
        lines.append(f"| {r['n']:,} | {r['plain_lat']:.1f} | {r['nile_lat']:.1f} | {r['claims_lat']:.1f} | "
                     f"{r['nile_ratio']:.3f} | {r['claims_ratio']:.3f} | {by_round} | {r['hit_pct']:.1f}% | {target} | "
                     f"{verdict(r['nile_ratio'] > r['claims_ratio'])} |")
    lines += [
        "",
        "- nile_auth at 10,000 users per backend ≥ 0.90 of the baseline: "
        + (f"{at_target[0]['nile_ratio']:.3f} {verdict(at_target[0]['nile_ratio'] >= 0.90)}" if at_target
           else f"not measured at this size (at most {by_users[-1]['n']:,} users)"),
        "- nile_auth ahead of the claims policy at every N: "
        + verdict(all(r["nile_ratio"] > r["claims_ratio"] for r in by_users)),
        "", "## Cache memory per backend", "",
        "In a new backend of the application role: one `set_context` for a user outside the N and the "
        "warm-up's statement for no users (so what every backend pays once, catalog caches, signing keys "
        "and the statement's first planning, is not counted), its `RssAnon` from "
        "`/proc/<pid>/status`, then the warm-up of arm 3 by users for N users (one statement: "
        "`SELECT count(nile_auth.set_context(token, tenant::uuid)) FROM bench_sessions WHERE u < N`), "
        "and `RssAnon` again. The growth is what the verified-token and membership caches keep for N "
        "users (and what the allocator keeps of memory freed meanwhile). Cache sizes, the defaults: "
        + (", ".join(f"`{k} = {v}`" for k, v in cache_sizes.items()) or "none found") + ".", "",
        "| users per backend | memory growth (MB) | warm-up, in the server (s) | per user (µs; planning included) |",
        "| ---: | ---: | ---: | ---: |",
    ]
    lines += [f"| {r['n']:,} | {r['memory_mb']:.1f} | {r['warm_s']:.2f} | {r['warm_s'] / r['n'] * 1e6:.1f} |"
              for r in by_users]
    lines += ["", f"Largest growth ≤ 16 MB (at the default sizes): {largest['memory_mb']:.1f} MB, at "
              f"{largest['n']:,} users {verdict(largest['memory_mb'] <= 16)}"]
    return lines


def render_big_tenant(big):
    """The report's section for the big tenant's parallel plan."""
    (rls_count, base_count), (rls_par, base_par), r = big["counts"], big["parallel"], big["ratio"]
    def plan_row(name, count, parallel):
        gather, workers = parallel
        return f"| {name} | {count:,} | {'yes' if gather else 'no'} | {workers} |"
    if not base_par[1]:
        parallel_line = "not judged: the hand-written query gets no parallel plan at this size either"
    else:
        parallel_line = verdict(rls_par[1] > 0)
        if not rls_par[1] and "InitPlan" in big["plans"][0]:
            parallel_line += (" (the policy reads the tenant in an InitPlan: `$0` is unknown when planning, "
                              "so the planner sizes the scan for an average tenant, not this one)")
        elif not rls_par[1] and big["marking"] != "SAFE":
            parallel_line += (f" (`nile_auth.tenant_id()` is PARALLEL {big['marking']}: a scan whose condition "
                              "calls it cannot run in parallel workers)")
    return [
        "", "## Big tenant: parallel plan", "",
        f"The tenant `parallel` holds {big['rows']:,} rows (ids after all the others'), in `items`, "
        "`items_plain` and `items_claims`. Its one member signs in, and as that end user (token and "
        "tenant set for the session) `SELECT count(*) FROM items` runs against the hand-written "
        "`SELECT count(*) FROM items_plain WHERE tenant_id = '<its id>'`. Plans (EXPLAIN ANALYZE) under "
        f"Plans below. The isolation policy installed on `items`: `{big['policy']}`; `nile_auth.tenant_id()` "
        f"is PARALLEL {big['marking']}.", "",
        "| query | count | Gather node | workers launched |", "| --- | ---: | --- | ---: |",
        plan_row("as the member, row-level security", rls_count, rls_par),
        plan_row("hand-written", base_count, base_par),
        "",
        f"- Both counts equal the rows loaded for the tenant: {verdict(rls_count == base_count == big['rows'])}",
        f"- The policy's plan runs in parallel when the hand-written one does: {parallel_line}",
        f"- Throughput of the count, as arm 2a (1 client, {len(r['ratios'])} rounds): baseline "
        f"{r['base_tps']:,.1f} tps, as the member {r['arm_tps']:,.1f} tps, ratio {r['ratio']:.3f} "
        f"(by round: {' '.join(f'{x:.2f}' for x in r['ratios'])}); no target.",
    ]


def render(size, shape, rounds, seconds, results, plans, index_cond, per_call, by_alg, login, arm6, server,
           arm3_split, users_arm, big, known_calls):
    verify, login1, login2, login_ratio = login
    membership, warmed_mb = arm6
    cpu = next((l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines()
                if l.startswith("model name")), platform.processor())
    mem_gb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1)) / 1024 / 1024
    version = server.sql("bench", "SHOW server_version")
    lines = [
        "# nile_auth benchmark results", "",
        f"Produced by `python3 bench/run.py{' --size full' if size == 'full' else ''}` on "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.", "",
        "## Machine and settings", "",
        f"- CPU: {cpu}, {os.cpu_count()} cores; memory {mem_gb:.0f} GiB; {platform.system()} {platform.release()}",
        f"- PostgreSQL {version} (Debian), pgbench from the same install, on a Unix socket",
        "- Settings: " + ", ".join(f"`{k} = {v}`" for k, v in SERVER_SETTINGS.items()),
        f"- Dataset `{size}`: {shape['tenants']:,} tenants, {shape['users']:,} users, "
        f"{2 * shape['users']:,} memberships, {shape['rows']:,} rows in `items` (made tenant-isolated with "
        f"`enable_tenant_isolation`) and {shape['rows'] // BIG_TENANT_SHARE:,} more of one big tenant, the same rows "
        f"in `items_plain` (no RLS) and in `items_claims` (a Supabase-style claims policy); all with "
        f"`PRIMARY KEY (id)` and an index on `(tenant_id, id)`",
        f"- Method (arms 1-3): pgbench `-M prepared`, 1 client, a 1 s warm-up, then {rounds} rounds of "
        f"{seconds} s. Each round is one pgbench run given both the baseline and the arm script, which "
        "picks one at random for every transaction, so both share every moment of the run (this VM's "
        "speed drifts by tens of percent within minutes). A round's ratio is the throughput of a client "
        "running the arm over one running the baseline (mean baseline latency over mean arm latency, "
        "from pgbench's per-transaction log); the ratio reported is the median over rounds, and tps "
        "are 1 / median latency. Every query runs as the same non-superuser role, in a session with "
        "the arm's settings (the baseline's table has no policy, so they do nothing for it).",
        "- Baselines: the same query by hand with an explicit `WHERE tenant_id = $1` on `items_plain`.",
        "", "## Arms 1-3: ratios of throughput (arm / baseline)", "",
        "| arm | baseline tps | arm tps | ratio (median of rounds) | ratios by round | target | result |",
        "| --- | ---: | ---: | ---: | --- | ---: | --- |",
    ]
    for label, target, r in results:
        by_round = " ".join(f"{x:.2f}" for x in r["ratios"])
        lines.append(f"| {label} | {r['base_tps']:,.0f} | {r['arm_tps']:,.0f} | {r['ratio']:.3f} | {by_round} | "
                     f"≥ {target} | {verdict(r['ratio'] >= target)} |")
    arm3 = results[-1][2]
    lines += [
        "", f"Arm 2 plans put the tenant predicate in the index condition: {verdict(index_cond)}.", "",
        "Arm 3 is one transaction per iteration, sent as a pipeline (`\\startpipeline`): "
        "`BEGIN; SELECT set_config('nile.auth_token', $1, true), set_config('nile.tenant_id', $2, true); "
        "SELECT payload FROM items WHERE id = $3; COMMIT;` against "
        "`BEGIN; SELECT payload FROM items_plain WHERE tenant_id = $1 AND id = $2; COMMIT;`. "
        f"The arm's transaction takes **{arm3['arm_lat'] - arm3['base_lat']:.1f} µs** more "
        f"({arm3['arm_lat']:.1f} µs vs {arm3['base_lat']:.1f} µs): the statement that sets the token and "
        "tenant, plus identity verification and the membership check, which are both cached per backend "
        "and dropped in every backend when a key, a user or a membership changes (docs/api.md).", "",
        f"Where that time goes (mean latency of each, the three scripts mixed in every run; median of {rounds} runs):", "",
        "| transaction | µs | added |", "| --- | ---: | ---: |",
        f"| baseline | {arm3_split['plain']:.1f} | |",
        f"| baseline + the same `set_config` statement on settings nile_auth never reads | "
        f"{arm3_split['plain + set_config']:.1f} | {arm3_split['plain + set_config'] - arm3_split['plain']:+.1f} (protocol: one more statement) |",
        f"| arm 3 (token and tenant set, row-level security) | {arm3_split['nile_auth']:.1f} | "
        f"{arm3_split['nile_auth'] - arm3_split['plain + set_config']:+.1f} (nile_auth: identity, membership, policy) |",
    ]
    lines += render_users(shape, rounds, seconds, *users_arm)
    lines += render_big_tenant(big)
    lines += [
        "", "## Arm 4: cost per call", "",
        "| call | µs |", "| --- | ---: |",
    ]
    lines += [f"| {k} | {v:.2f} |" for k, v in per_call.items()]
    lines += [
        "", "Each figure is `count(f())` over many rows, timed inside the server (best of 3), less the "
        "same count over a cheap baseline: `count(1)` for cached calls, the same helper with a fixed "
        "argument for uncached ones. \"Uncached\" user_id() verifies a token not seen before on every "
        "call (signature, claims, key, user and session lookups); uncached tenant_id() does that and "
        "probes a membership not seen before (bench_tenant in bench/load.sql). The tokens are what "
        "login returns, one per user, minted through `login_with_api_key` (login without argon2); "
        "each uncached timing runs in a backend of its own (a new connection) that has verified only "
        "user 0's token (the baseline's) before, so every token, user, session and membership it is "
        "timed on is new to it. The last row: that backend first verifies the tokens of users 1 to "
        f"{known_calls:,}, then is timed on a second token of each of those sessions, from `refresh()` "
        "(same user and `sid`, new `jti`). Uncached rows above use ES256 tokens, the default.",
        "", "Uncached user_id() by the algorithm of the key that signed the token (one batch of "
        "tokens minted while a key of each algorithm was current; `rotate_signing_key` retires the "
        "key it replaces, so all three batches verify at once):", "",
        "| algorithm | µs | vs ES256 |", "| --- | ---: | ---: |",
    ]
    lines += [f"| {alg}{' (default)' if alg == ALGS[0] else ''} | {us:.2f} | "
              f"{us / by_alg[ALGS[0]] if by_alg[ALGS[0]] else float('nan'):.2f}x |" for alg, us in by_alg.items()]
    lines += [
        "", "## Arm 5: login", "",
        "Both measured in one pgbench run that picks one of the two per transaction (the machine's "
        "drift falls on both alike); logins/s from runs of login alone.", "",
        "| measure | value |", "| --- | ---: |",
        f"| bare argon2id verify (same parameters, same backend), median | {median(verify[2]) / 1000:.2f} ms |",
        f"| `login()`, median | {median(login1[2]) / 1000:.2f} ms |",
        f"| ratio login / verify (target ≤ 1.10) | {login_ratio:.3f} {verdict(login_ratio <= 1.10)} |",
        f"| logins/s, 1 client | {login1[0]:.1f} |",
        f"| logins/s, 2 clients | {login2[0]:.1f} ({login2[0] / login1[0]:.2f}x) |",
        "", "## Arm 6: membership operations, p50 / p99 latency (ms)", "",
    ]
    sizes = list(membership)
    lines += ["| operation | " + " | ".join(f"{s} p50 | {s} p99" for s in sizes) + " | p50 < 1 ms | growth of p50 |",
              "| --- |" + " ---: | ---: |" * len(sizes) + " --- | ---: |"]
    for op in membership[sizes[0]]:
        cells = " | ".join(f"{membership[s][op][0]:.3f} | {membership[s][op][1]:.3f}" for s in sizes)
        big_p50, small_p50 = membership[sizes[0]][op][0], membership[sizes[-1]][op][0]
        growth = big_p50 / small_p50 if small_p50 else float("nan")
        lines.append(f"| {op} | {cells} | {verdict(big_p50 < 1.0)} | {growth:.2f}x |")
    lines += ["", "Growth is p50 at the larger size over p50 at the 10x smaller size; logarithmic "
              "growth over 10x more data is a small constant factor (B-tree depth), not 10x. Each "
              "operation is one pgbench run: add_member adds a random existing user to a random tenant "
              "(as the trusted backend), list_users lists a tenant of 100 members, list_tenants is "
              "called by a user in 20 tenants. Before them, the extension's tables and indexes are read "
              "into shared buffers with pg_prewarm ("
              + ", ".join(f"{mb:,} MB at {label} size" for label, mb in warmed_mb.items())
              + "), as a running system's working set would be: the full dataset does not fit in "
              "shared_buffers, and this VM does not keep it in the page cache, so without it add_member "
              "measures the disk.", "",
              "## Plans (EXPLAIN ANALYZE, BUFFERS)", ""]
    for name, plan in plans.items():
        lines += [f"### {name}", "", "```", plan, "```", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
