#!/usr/bin/env bash
# Chart, image and monitoring tests: helm lint/template on every charts/logferry/ci/*.yaml,
# kubernetes-validate --strict, assertions on the rendered objects, schema rejection of typos,
# `logferry validate` on every rendered config (the real binary from `cargo build --bins`),
# promtool check/test rules, dashboard metric names, hadolint. Tools come from
# tests/install-tools.sh (target/tools/env.sh). Prints "N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")/../.."
env_sh="${LOGFERRY_TOOLS_DIR:-$PWD/target/tools}/env.sh"
if [[ ! -f "$env_sh" ]]; then
  echo "tests/chart: $env_sh missing: run 'bash tests/install-tools.sh' first" >&2
  exit 1
fi
# shellcheck source=/dev/null
source "$env_sh"
exec "$LOGFERRY_PYTHON" tests/chart/test_chart.py "$@"
