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

is_running() {
    [[ -f "$PID_FILE" ]] || return 1
    local pid
    pid="$(cat "$PID_FILE")"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    # Make sure the pid was not recycled by something else.
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "moto_server"
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

port_free() {
    python3 - "$1" <<'PY'
import socket, sys
s = socket.socket()
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
finally:
    s.close()
PY
}

# True once moto's own API answers.
answers() {
    python3 - "$1" <<'PY'
import sys, urllib.request
try:
    urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/moto-api/data.json", timeout=1)
except Exception:
    sys.exit(1)
PY
}

cmd_start() {
    if is_running; then
        echo "SES_ENDPOINT=http://127.0.0.1:$(cat "$PORT_FILE")"
        return 0
    fi
    cmd_install
    local port="${MOTO_PORT:-}"
    [[ -n "$port" ]] || port="$(free_port)"
    [[ "$port" =~ ^[0-9]+$ ]] || die "MOTO_PORT must be a number, not '$port'"
    # Otherwise the readiness check could take another server for ours.
    port_free "$port" || die "port $port is already in use"
    # setsid: its own session, so the server outlives this script and a
    # Ctrl-C in the calling terminal does not reach it.
    setsid "$SERVER" -H 127.0.0.1 -p "$port" >"$LOG_FILE" 2>&1 </dev/null &
    local pid=$!
    echo "$pid" >"$PID_FILE"
    echo "$port" >"$PORT_FILE"
    local i
    for ((i = 0; i < 60; i++)); do
        if ! kill -0 "$pid" 2>/dev/null; then
            rm -f "$PID_FILE" "$PORT_FILE"
            tail -n 20 "$LOG_FILE" >&2 || true
            die "moto exited during startup (log: $LOG_FILE)"
        fi
        if answers "$port"; then
            log "running, pid $pid, log $LOG_FILE"
            echo "SES_ENDPOINT=http://127.0.0.1:$port"
            return 0
        fi
        sleep 0.5
    done
    kill "$pid" 2>/dev/null || true
    rm -f "$PID_FILE" "$PORT_FILE"
    die "moto did not answer on port $port within 30 s (log: $LOG_FILE)"
}

cmd_stop() {
    if ! is_running; then
        rm -f "$PID_FILE" "$PORT_FILE"
        log "not running"
        return 0
    fi
    local pid i
    pid="$(cat "$PID_FILE")"
    kill "$pid"
    for ((i = 0; i < 20; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.25
    done
    if kill -0 "$pid" 2>/dev/null; then
        kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$PID_FILE" "$PORT_FILE"
    log "stopped pid $pid"
}

case "${1:-}" in
install) cmd_install ;;
start) cmd_start ;;
stop) cmd_stop ;;
*)
    echo "usage: $0 install|start|stop" >&2
    exit 2
    ;;
esac
