#!/usr/bin/env bash
# Property-based fuzzing of the API against its own document: schemathesis
# (installed into .local/schemathesis on first use) generates requests from
# the OpenAPI document the local server serves, sends them with an admin's
# token, and fails on any request the document allows that the server
# refuses, or any answer that breaks the document.
#
#   scripts/api-fuzz.sh [extra schemathesis arguments]
#
# Starts `peak-local` on a free loopback port with a throwaway data
# directory, and stops it again.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"
HOME_DIR="$REPO_ROOT/.local/schemathesis"
VENV="$HOME_DIR/venv"
# Pinned: a new release may check differently; bump on purpose.
VERSION="3.39.16"
MARKER="$VENV/.installed-$VERSION"
if [[ ! -f "$MARKER" ]]; then
    mkdir -p "$HOME_DIR"
    python3 -m venv "$VENV"
    # hypothesis pinned below what this schemathesis release was built on.
    "$VENV/bin/pip" install -q "schemathesis==$VERSION" "hypothesis<6.115"
    touch "$MARKER"
fi

DATA="$(mktemp -d)"
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
cargo build -q -p peak-local
# The webhook configured (with a token the fuzzer does not know), so it
# answers 401 as in a deployment rather than 503 "not configured".
export PEAK_DATA_DIR="$DATA" PORT AUTH0_EVENT_STREAM_TOKENS="fuzz-$RANDOM-$RANDOM-not-sent"
target/debug/peak-local >"$DATA/server.log" 2>&1 &
SERVER=$!
trap 'kill "$SERVER" 2>/dev/null || true; rm -rf "$DATA"' EXIT
for _ in $(seq 100); do
    curl -fs "http://127.0.0.1:$PORT/openapi.json" >/dev/null && break
    sleep 0.2
done
TOKEN="$(target/debug/peak-local token)"
PYTHONPATH="$REPO_ROOT/scripts" SCHEMATHESIS_HOOKS=api_fuzz_hooks \
    "$VENV/bin/schemathesis" run "http://127.0.0.1:$PORT/openapi.json" \
    --header "Authorization: Bearer $TOKEN" \
    --checks all \
    --experimental=openapi-3.1 \
    --hypothesis-max-examples "${FUZZ_EXAMPLES:-25}" \
    --hypothesis-seed 1 \
    --no-color \
    "$@"
