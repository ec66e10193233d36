#!/usr/bin/env bash
# Builds the sqlx client app (tests/clients/rust) at the versions Cargo.lock pins, into a target
# directory outside the clone (NILE_AUTH_RUST_APP_TARGET), so a fresh clone reuses the build.
# Cheap to rerun: cargo rebuilds only what changed.
set -euo pipefail
cd "$(dirname "$0")"
export PATH="$HOME/.cargo/bin:$PATH"
CARGO_TARGET_DIR=${NILE_AUTH_RUST_APP_TARGET:-$HOME/.cache/nile_auth/clients-rust-target} \
  cargo build --release --locked --quiet
