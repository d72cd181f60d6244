#!/usr/bin/env bash
# moto (a local fake of AWS APIs) standing in for Amazon SES v2 in tests and
# local development, without Docker.
#
#   scripts/moto.sh install   # python venv with moto[server] in .local/moto (once)
#   scripts/moto.sh start     # run it on loopback; prints SES_ENDPOINT=...
#   scripts/moto.sh stop      # stop what `start` started
#
# Typical use:
#   eval "$(scripts/moto.sh start)" && export SES_ENDPOINT
#   cargo test -p peak-mailer
#   scripts/moto.sh stop
#
# Every command is idempotent. `start` installs first if needed and honours
# MOTO_PORT (default: a free loopback port). Needs python3 with its venv
# module (Debian: apt-get install python3-venv) and access to PyPI on the
# first install.
#
# The server keeps everything in memory; what it "sent" can be read at
# GET $SES_ENDPOINT/moto-api/data.json, and POST $SES_ENDPOINT/moto-api/reset
# forgets it all.

set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"
HOME_DIR="$REPO_ROOT/.local/moto"
VENV="$HOME_DIR/venv"
# Pinned: a new moto may answer differently; bump on purpose.
MOTO_VERSION="5.2.5"
MARKER="$VENV/.installed-moto-$MOTO_VERSION"
SERVER="$VENV/bin/moto_server"
PID_FILE="$HOME_DIR/server.pid"
PORT_FILE="$HOME_DIR/server.port"
LOG_FILE="$HOME_DIR/server.log"

log() { echo "moto: $*" >&2; }
die() { log "error: $*"; exit 1; }

cmd_install() {
    if [[ -f "$MARKER" && -x "$SERVER" ]]; then
        return 0
    fi
    command -v python3 >/dev/null 2>&1 || die "python3 is needed (apt-get install -y python3 python3-venv)"
    mkdir -p "$HOME_DIR"
    if [[ ! -x "$VENV/bin/python" ]]; then
        python3 -m venv "$VENV" ||
            die "could not create a venv (Debian: apt-get install -y python3-venv)"
    fi
    log "installing moto[server]==$MOTO_VERSION into $VENV"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
        "moto[server]==$MOTO_VERSION" >&2 ||
        die "pip could not install moto[server]==$MOTO_VERSION"
    [[ -x "$SERVER" ]] || die "$SERVER missing after install"
    rm -f "$VENV"/.installed-moto-*
    touch "$MARKER"
    log "installed: $SERVER"
}

SERVER_NAME="moto"
SERVER_PATTERN="moto_server"
ENDPOINT_VAR="SES_ENDPOINT"
PORT_VAR="MOTO_PORT"
# shellcheck source=scripts/lib/server.sh
source "$SCRIPT_DIR/lib/server.sh"

server_launch() {
    exec setsid "$SERVER" -H 127.0.0.1 -p "$1"
}

# True once moto's own API answers.
server_answers() {
    python3 - "$1" <<'PY'
import sys, urllib.request
try:
    urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/moto-api/data.json", timeout=1)
except Exception:
    sys.exit(1)
PY
}

server_main "$@"
