#!/usr/bin/env bash
# Creates or updates the virtualenv the Python client apps run in (tests/clients/python/run.sh).
# Idempotent and cheap to rerun: it does nothing when the venv already holds exactly
# requirements.txt (a copy of which it keeps inside the venv as the stamp).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
venv=${NILE_AUTH_VENV:-$HOME/.cache/nile_auth/venv}
stamp=$venv/nile_auth-requirements.txt

if [ -x "$venv/bin/python" ] && cmp -s "$here/requirements.txt" "$stamp" \
   && "$venv/bin/python" -c 'import psycopg, psycopg_pool, sqlalchemy' 2>/dev/null; then
  echo "python venv up to date: $venv"
  exit 0
fi
mkdir -p "$(dirname "$venv")"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$here/requirements.txt"
cp "$here/requirements.txt" "$stamp"
echo "python venv ready: $venv"
