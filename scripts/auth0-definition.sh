#!/usr/bin/env bash
# Auth0's Management API definition for the conformance test, derived from
# Auth0's own generated SDK (auth0-python, PyPI) by scripts/auth0-definition.py.
#
#   scripts/auth0-definition.sh   # prints AUTH0_DEFINITION=<path of the JSON>
#
# Installs the pinned auth0-python into .local/auth0-definition/venv on first
# use (needs python3 with venv and access to PyPI), and writes the JSON once
# per pinned version. To follow Auth0's API as it changes, raise the pin and
# run the tests: the conformance test then checks our client against the
# newer definition (README, "Auth0: keeping to Auth0's definition").

set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"
HOME_DIR="$REPO_ROOT/.local/auth0-definition"
VENV="$HOME_DIR/venv"
# Pinned: a newer SDK is a newer definition; bump on purpose.
AUTH0_PYTHON_VERSION="6.8.0"
OUT="$HOME_DIR/auth0-definition-$AUTH0_PYTHON_VERSION.json"

log() { echo "auth0-definition: $*" >&2; }
die() { log "error: $*"; exit 1; }

if [[ ! -s "$OUT" ]]; then
    command -v python3 >/dev/null 2>&1 || die "python3 is needed (apt-get install -y python3 python3-venv)"
    mkdir -p "$HOME_DIR"
    if [[ ! -x "$VENV/bin/python" ]]; then
        python3 -m venv "$VENV" ||
            die "could not create a venv (Debian: apt-get install -y python3-venv)"
    fi
    if ! "$VENV/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('auth0-python') != '$AUTH0_PYTHON_VERSION')" 2>/dev/null; then
        log "installing auth0-python==$AUTH0_PYTHON_VERSION into $VENV"
        "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
            "auth0-python==$AUTH0_PYTHON_VERSION" >&2 ||
            die "pip could not install auth0-python==$AUTH0_PYTHON_VERSION"
    fi
    log "deriving the Management API definition from auth0-python $AUTH0_PYTHON_VERSION"
    "$VENV/bin/python" "$SCRIPT_DIR/auth0-definition.py" > "$OUT.tmp"
    mv "$OUT.tmp" "$OUT"
fi
echo "AUTH0_DEFINITION=$OUT"
