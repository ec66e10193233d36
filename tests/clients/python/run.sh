#!/usr/bin/env bash
# The Python client apps (psycopg 3, SQLAlchemy 2 ORM), run by tests/clients/run.sh python with
# NILE_DB_HOST, NILE_DB_PORT, NILE_DB_NAME, NILE_DB_USER, NILE_VIA and NILE_RUN set. Each prints
# "ok: ..." per check and exits non-zero at the first failure.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
venv=${NILE_AUTH_VENV:-$HOME/.cache/nile_auth/venv}
if ! [ -x "$venv/bin/python" ]; then
  echo "FAIL: no Python venv at $venv: run bash tests/clients/python/install.sh" >&2
  exit 1
fi
export PYTHONPATH="$here/../../../clients/python:$here" PYTHONDONTWRITEBYTECODE=1
for app in app_psycopg app_sqlalchemy; do
  "$venv/bin/python" "$here/$app.py"
done
