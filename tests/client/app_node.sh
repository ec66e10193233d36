#!/usr/bin/env bash
# The Clustify story from Node (node-postgres and Drizzle, tests/clients/node), directly and
# through pgbouncer in transaction mode (tests/clients/run.sh).
set -euo pipefail
exec bash "$(dirname "$0")/../clients/run.sh" node
