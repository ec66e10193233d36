#!/usr/bin/env bash
# Installs the Node client apps' dependencies (package-lock.json, exact versions) with `npm ci`,
# only when node_modules is missing or older than package-lock.json: cheap to run again.
set -euo pipefail
cd "$(dirname "$0")"
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
  touch node_modules/.package-lock.json
fi
