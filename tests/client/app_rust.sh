#!/usr/bin/env bash
# The Clustify story from Rust (sqlx, tests/clients/rust), directly and through pgbouncer in
# transaction mode (tests/clients/run.sh).
set -euo pipefail
exec bash "$(dirname "$0")/../clients/run.sh" rust
