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
"""

import argparse
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

    def sql(self, db, query, user="postgres"):
        out = self.run(str(PG_BIN / "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", db,
                       "-c", query, env=self.env(user))
        return out.stdout.strip()

    def sql_file(self, db, path, variables):
        args = [str(PG_BIN / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", db, "-f", str(path)]
        for k, v in variables.items():
            args += ["-v", f"{k}={v}"]
        self.run(*args, env=self.env())

    def pgbench(self, db, script, seconds, clients=1, user=APP_ROLE, options=None, defines=None, log_dir=None):
        """Runs pgbench with one script, or several (a list) mixed at random per transaction.
        Returns (tps, average latency ms, per-transaction latencies in µs by script index)."""
        scripts = [script] if isinstance(script, str) else script
        args = [str(PG_BIN / "pgbench"), "-n", "-M", "prepared", "-T", str(seconds), "-c", str(clients),
                "-j", str(clients), db]
        for name in scripts:
            args += ["-f", str(SCRIPTS / name)]
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
            # Log lines: client transaction latency_us script_index epoch_s epoch_us
            for f in Path(log_dir).glob("tx*"):
                for line in f.read_text().splitlines():
                    fields = line.split()
                    if len(fields) >= 4:
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
    log(f"loading {db}: {shape['tenants']} tenants, {shape['users']} users, "
        f"{2 * shape['users']} memberships, {shape['rows'] if with_rows else 0} rows")
    server.run(str(PG_BIN / "dropdb"), "--if-exists", db, env=server.env())
    server.run(str(PG_BIN / "createdb"), db, env=server.env())
    t0 = time.time()
    server.sql_file(db, ROOT / "bench" / "load.sql", {
        "tenants": shape["tenants"], "users": shape["users"],
        "rows": shape["rows"] if with_rows else 0, "app_role": APP_ROLE, "password": f"'{PASSWORD}'",
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


def per_call_us(server, db, expr, calls, options, baseline="1", fresh=False):
    """Microseconds per evaluation of `expr` inside one statement, less one of `baseline`:
    the best of 3 timings of each, taken inside the server (bench_seconds in load.sql). With
    `fresh` (uncached calls), each timing of `expr` runs in a backend of its own, warmed by a few
    calls of `baseline` first: within one backend, a second timing would find the tokens and
    memberships the first one verified in that backend's caches."""
    env = server.env(APP_ROLE, options)
    def timed(e, repeats, warm=None):
        query = f"SELECT min(bench_seconds($q${e}$q$, {calls})) FROM generate_series(1, {repeats})"
        args = [str(PG_BIN / "psql"), "-X", "-q", "-A", "-t", "-d", db]
        if warm:
            args += ["-c", f"SELECT count({warm}) FROM generate_series(1, 10) g"]
        out = server.run(*args, "-c", query, env=env)
        return float(out.stdout.split()[-1])
    if fresh:
        cost = min(timed(expr, 1, warm=baseline) for _ in range(3))
    else:
        cost = timed(expr, 3)
    return max(0.0, (cost - timed(baseline, 3)) / calls * 1e6)


# Arm 4, uncached: tokens of each signing algorithm, the default (ES256) first in reports.
ALGS = ["ES256", "EdDSA", "HS256"]


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
        server.sql(db, f"INSERT INTO bench_tokens SELECT '{alg}', n, "
                       f"nile_auth.login_with_api_key('bench-key-' || n)->'token'->>'jwt' "
                       f"FROM generate_series(0, {count}) n")
        log(f"  {count + 1} {alg} tokens minted in {time.time() - t0:.1f} s")
    rows = server.sql(db, "SELECT alg, count(bench_identity(n, alg)) FROM bench_tokens GROUP BY alg", user=APP_ROLE)
    verified = dict(line.split("|") for line in rows.splitlines())
    if verified != {alg: str(count + 1) for alg in ALGS}:
        raise RuntimeError(f"tokens that verify, by algorithm: {verified} (of {count + 1} each)")


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
    index_cond = all("Index Cond: (tenant_id = nile_auth.tenant_id())" in plans[p] or
                     "Index Cond: ((tenant_id = nile_auth.tenant_id())" in plans[p]
                     for p in ("2a. count (RLS)", "2b. page (RLS)"))

    log("arm 3 detail and arm 4: per-call costs")
    # Arm 3's extra time, split: the baseline plus the same set_config statement on settings
    # nile_auth never reads isolates the protocol cost of that statement from nile_auth's work.
    keys = ["plain", "plain + set_config", "nile_auth"]
    split = {k: [] for k in keys}
    for _ in range(rounds):
        lat = server.mixed_latencies(db, ["session_plain.sql", "session_plain_set.sql", "session_rls.sql"],
                                     seconds, defines=dict(row, tok=token))
        for k, v in zip(keys, lat):
            split[k].append(v)
    arm3_split = {k: median(v) for k, v in split.items()}
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

    # Last, as it rotates the signing keys (and leaves ES256 current, as a new installation).
    log("arm 4: uncached calls, tokens of each signing algorithm")
    uncached_calls = min(20_000, shape["users"] - 1)   # users 1..n (0 is the baseline's); keys in load.sql
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

    return render(size, shape, rounds, seconds, results, plans, index_cond, per_call, by_alg,
                  (verify, login1, login2, login_ratio), (membership, warmed_mb), server, arm3_split)


def verdict(ok):
    return "PASS" if ok else "**FAIL**"


def render(size, shape, rounds, seconds, results, plans, index_cond, per_call, by_alg, login, arm6, server,
           arm3_split):
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
        f"`enable_tenant_isolation`) and the same rows in `items_plain` (no RLS); both with "
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
        "each uncached timing runs in a backend of its own, so none of its tokens was verified there "
        "before. Uncached rows above use ES256 tokens, the default.",
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
