#!/usr/bin/env bash
# Airflow's real Elasticsearch task handler reads what logferry shipped, in the three deployment
# modes (tests/airflow/run.py). The Airflow venv comes from tests/install-tools.sh
# (target/tools/env.sh); the binaries from `cargo build --workspace --bins`.
set -euo pipefail
cd "$(dirname "$0")/../.."
env_sh="${LOGFERRY_TOOLS_DIR:-$PWD/target/tools}/env.sh"
if [[ ! -f "$env_sh" ]]; then
  echo "tests/airflow: $env_sh missing: run 'bash tests/install-tools.sh' first" >&2
  exit 1
fi
# shellcheck source=/dev/null
source "$env_sh"
exec "$LOGFERRY_AIRFLOW_PYTHON" tests/airflow/run.py "$@"
