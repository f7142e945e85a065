#!/usr/bin/env bash
# test.sh — build, then run every test (ctest); each test prints
# "N passed, N failed" and ctest prints the overall summary.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
ctest --test-dir build --output-on-failure -j2
