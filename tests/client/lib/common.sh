# Helpers sourced by tests/client/*.sh (this file is not a test: scripts/test.sh runs only the
# scripts directly in tests/client). They run against the server in PGHOST/PGPORT.
BIN=/usr/lib/postgresql/15/bin
q() { "$BIN/psql" -X -q -A -t -v ON_ERROR_STOP=1 "$@"; }
check() { # name expected actual
  if [ "$2" = "$3" ]; then echo "ok: $1"; else echo "FAIL: $1: expected [$2], got [$3]"; exit 1; fi
}
fresh_db() { # name: an empty database, dropped first if an earlier run left it
  "$BIN/dropdb" --if-exists "$1"
  "$BIN/createdb" "$1"
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
