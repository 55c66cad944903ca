#!/usr/bin/env bash
# The whole test suite: unit, property, integration and end-to-end tests of
# every crate (end-to-end tests start the real binary as a child process).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --workspace --bins --locked
bash tests/chart/run.sh
cargo test --workspace --locked
