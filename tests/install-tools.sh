#!/usr/bin/env bash
# Installs the tools the test suite needs on a fresh machine that has the Rust
# toolchain, gcc, Python 3.11 and apt. Idempotent; safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
tools="${LOGFERRY_TOOLS_DIR:-$PWD/target/tools}"
mkdir -p "$tools"
echo "install-tools: nothing beyond the Rust toolchain needed yet"
