#!/usr/bin/env bash
# The Rust client app (sqlx), telling the Clustify story and exiting non-zero on its first failed
# check. Called by tests/clients/run.sh with NILE_DB_HOST, NILE_DB_PORT, NILE_DB_NAME,
# NILE_DB_USER, NILE_VIA and NILE_RUN set. Builds first if the sources changed since install.sh.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bash "$here/install.sh"
exec "${NILE_AUTH_RUST_APP_TARGET:-$HOME/.cache/nile_auth/clients-rust-target}/release/clustify-sqlx"
