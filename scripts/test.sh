#!/usr/bin/env bash
# The test command from README.md: installs the test dependencies (see
# scripts/test-deps.sh), then runs every test. Extra arguments go to cargo test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/test-deps.sh
cargo test "$@"
