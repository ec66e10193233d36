#!/usr/bin/env bash
# The Node client apps (node-postgres, then Drizzle ORM), each telling the Clustify story and
# exiting non-zero on its first failed check. Called by tests/clients/run.sh with NILE_DB_HOST,
# NILE_DB_PORT, NILE_DB_NAME, NILE_DB_USER, NILE_VIA and NILE_RUN set.
set -euo pipefail
cd "$(dirname "$0")"
if [ ! -d node_modules ]; then
  echo "FAIL: tests/clients/node/node_modules is missing: run tests/clients/node/install.sh" >&2
  exit 1
fi
# nile-auth-client is a file: dependency, so node_modules holds a symlink to clients/node; without
# --preserve-symlinks its imports (drizzle-orm, a peer dependency) would resolve from clients/node,
# which has no node_modules. An install from a registry copies the package and needs no flag.
for app in app_pg.mjs app_drizzle.mjs; do
  node --preserve-symlinks "$app"
done
