#!/usr/bin/env bash
# Installs everything nile_auth needs on a fresh Debian 12 machine, as root. Idempotent:
# each step checks first, so a second run only costs the checks.
set -euo pipefail

PG_MAJOR=15
PGRX_VERSION=0.18.1
PG_CONFIG=/usr/lib/postgresql/$PG_MAJOR/bin/pg_config
PACKAGES=(postgresql-$PG_MAJOR postgresql-server-dev-$PG_MAJOR libclang-dev clang sudo pgbouncer pkg-config file
          python3-jwt python3-cryptography)  # the last two: tests/client/sessions.sh verifies tokens offline

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
# The client apps (tests/clients) need Node.js with npm, and a python3 that can make a venv;
# Debian's come from these packages, unless the machine has its own.
command -v npm >/dev/null || missing+=(nodejs npm)
python3 -c 'import venv, ensurepip' 2>/dev/null || missing+=(python3-venv)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Debian's package creates and starts a default cluster on 5432; we run our own private
# clusters, so the packaged one is left alone.

export PATH="$HOME/.cargo/bin:$PATH"
if ! cargo pgrx --version 2>/dev/null | grep -q "$PGRX_VERSION"; then
  echo "installing cargo-pgrx $PGRX_VERSION (takes several minutes)"
  cargo install cargo-pgrx --version "$PGRX_VERSION" --locked
fi

# Registers Debian's server with pgrx; downloads nothing.
if ! grep -qs "pg$PG_MAJOR = \"$PG_CONFIG\"" "${PGRX_HOME:-$HOME/.pgrx}/config.toml"; then
  cargo pgrx init --pg$PG_MAJOR "$PG_CONFIG"
fi

# The client apps' dependencies (tests/clients/<stack>), at the versions their lock files pin.
root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/tests/clients/node/install.sh"
bash "$root/tests/clients/python/install.sh"
bash "$root/tests/clients/rust/install.sh"
