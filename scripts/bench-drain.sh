#!/usr/bin/env bash
# Drain and search benchmarks (issue 18; README, "Drain and search
# benchmarks"): starts DynamoDB Local (bigger heap) and moto, runs
# tests/examples/drain_bench.rs and tests/examples/search_bench.rs, stops
# what it started. Each phase's wall time is printed.
#
#   scripts/bench-drain.sh                # the README's runs
#   ROWS=100000 WINDOW=300 USERS=1000000 scripts/bench-drain.sh
#
# ROWS (bulk-invite rows, default 600), WINDOW (seconds of accepts at each
# Auth0 rate, default 90), RATES (default 2,16), LOAD (API requests of the
# load run under heavier faults, default 600; 0 for none), USERS (search
# tenant size, default 1000000: about 7 minutes, 1 GB of DynamoDB Local), REQUESTS (per filter, default 200), FAULTS / SES_FAULTS
# (fault-proxy rates; `none` for none). Debug build, as the e2e tests: the
# time goes to DynamoDB Local and moto (Java and Python on the same cores),
# not to our code.
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS="${ROWS:-600}"
WINDOW="${WINDOW:-90}"
RATES="${RATES:-2,16}"
LOAD="${LOAD:-600}"
USERS="${USERS:-1000000}"
REQUESTS="${REQUESTS:-200}"
FAULTS="${FAULTS:-throttle=0.03,500=0.01,reset=0.01,latency=0.03,latency_ms=100}"
SES_FAULTS="${SES_FAULTS:-throttle=0.1,500=0.02,reset=0.02}"
[[ "$FAULTS" == none ]] && FAULTS=""
[[ "$SES_FAULTS" == none ]] && SES_FAULTS=""

cargo build -q -p peak-tests --example drain_bench --example search_bench
export DYNAMODB_LOCAL_JAVA_OPTS="${DYNAMODB_LOCAL_JAVA_OPTS:--Xmx6g}"
export AWS_EC2_METADATA_DISABLED=true AWS_REGION=us-east-1 RUST_LOG=warn
stop() { scripts/dynamodb-local.sh stop >/dev/null || true; scripts/moto.sh stop >/dev/null || true; }
trap stop EXIT
# Each benchmark on a fresh DynamoDB Local (in memory) and moto.
fresh() {
  stop
  eval "$(scripts/dynamodb-local.sh start)"; export DYNAMODB_ENDPOINT
  eval "$(scripts/moto.sh start)"; export SES_ENDPOINT
}
# JSON log lines (warnings of retried calls) go to a file, figures to stdout.
fresh
time target/debug/examples/drain_bench --rows "$ROWS" --window "$WINDOW" --rates "$RATES" --load "$LOAD" \
  ${FAULTS:+--faults "$FAULTS"} ${SES_FAULTS:+--ses-faults "$SES_FAULTS"} 2>>target/bench-drain.log
fresh
time target/debug/examples/search_bench --users "$USERS" --requests "$REQUESTS" 2>>target/bench-drain.log
