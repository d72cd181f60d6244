#!/usr/bin/env bash
# Account import into the local store (SQLite), measured: rows/s and peak
# RSS (README, "Benchmarks"). Usage: scripts/bench-account-import.sh [ROWS]
# (default 100000). Release build without LTO (as the bulk-invite bench:
# LTO changes little here and costs minutes of linking).
set -euo pipefail
cd "$(dirname "$0")/.."
rows="${1:-100000}"
CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
  cargo build -q --release -p peak-tests --example account_import_bench
/usr/bin/time -v target/release/examples/account_import_bench "$rows" 2> >(
  grep -E 'Maximum resident set size|Elapsed \(wall clock\)' >&2
)
