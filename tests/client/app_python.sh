#!/usr/bin/env bash
# The Clustify story from Python (psycopg 3 and the SQLAlchemy 2 ORM, tests/clients/python),
# directly and through pgbouncer in transaction mode (tests/clients/run.sh).
set -euo pipefail
exec bash "$(dirname "$0")/../clients/run.sh" python
