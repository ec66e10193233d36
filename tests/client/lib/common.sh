# Helpers sourced by tests/client/*.sh (this file is not a test: scripts/test.sh runs only the
# scripts directly in tests/client). They run against the server in PGHOST/PGPORT.
BIN=/usr/lib/postgresql/15/bin
q() { "$BIN/psql" -X -q -A -t -v ON_ERROR_STOP=1 "$@"; }
check() { # name expected actual
  if [ "$2" = "$3" ]; then echo "ok: $1"; else echo "FAIL: $1: expected [$2], got [$3]"; exit 1; fi
}
state() { grep -oE '^ERROR: +[0-9A-Z]{5}' | awk '{print $2}' | head -1; } # the first SQLSTATE psql -v VERBOSITY=sqlstate printed
fresh_db() { # name: an empty database, dropped first if an earlier run left it
  "$BIN/dropdb" --if-exists "$1"
  "$BIN/createdb" "$1"
}
start_pgbouncer() { # db port role...: pgbouncer in transaction mode with ONE server connection
  # to db, on 127.0.0.1:port, trusting the roles; stopped when the calling script exits.
  local db=$1 port=$2 dir
  shift 2
  dir=$(mktemp -d)
  chown postgres "$dir"
  cat >"$dir/pgbouncer.ini" <<INI
[databases]
$db = host=$PGHOST port=$PGPORT dbname=$db
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir =
auth_type = trust
auth_file = $dir/users.txt
pool_mode = transaction
default_pool_size = 1
max_client_conn = 50
pidfile = $dir/pgbouncer.pid
logfile = $dir/pgbouncer.log
INI
  printf '"%s" ""\n' "$@" >"$dir/users.txt"
  sudo -u postgres /usr/sbin/pgbouncer -d "$dir/pgbouncer.ini"
  trap "kill \$(cat '$dir/pgbouncer.pid' 2>/dev/null) 2>/dev/null || true; rm -rf '$dir'" EXIT
  for _ in $(seq 50); do "$BIN/pg_isready" -q -h 127.0.0.1 -p "$port" && break; sleep 0.1; done
}
app_db() { # name role: a fresh database with nile_auth, and a plain login role (kept if it exists) that may use it
  fresh_db "$1"
  q -d "$1" >/dev/null <<SQL
CREATE EXTENSION nile_auth;
DO \$\$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$2') THEN CREATE ROLE $2 LOGIN; END IF;
END \$\$;
GRANT USAGE ON SCHEMA nile_auth TO $2;
SQL
}
