#!/usr/bin/env bash
# Applies every service's Alembic migrations to its own database (alembic upgrade head). Each
# service's URL comes from its settings (<SERVICE>_DATABASE_URL), never from alembic.ini.
# One script for every path: `make migrate`, the image's `migrate` command (compose's migrate
# job) and the Helm chart's pre-install/pre-upgrade Job.
#   scripts/migrate.sh [service...]     (default: all four)
set -euo pipefail

# The repository root, or /app in the image (where this script is linked as `migrate`).
cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.."

services=("$@")
((${#services[@]})) || services=(orchestrator inventory payment notification)
for s in "${services[@]}"; do
  echo "migrating $s"
  alembic -c "services/$s/alembic.ini" upgrade head
done
