# Start and stop a local stand-in server on loopback: what
# scripts/dynamodb-local.sh and scripts/moto.sh share. Sourced, not run.
#
# The sourcing script sets, before calling server_start / server_stop:
#   SERVER_NAME     shown in messages ("DynamoDB Local")
#   SERVER_PATTERN  a string of the server's command line (to tell our pid
#                   from a recycled one)
#   ENDPOINT_VAR    the variable `start` prints (DYNAMODB_ENDPOINT=...)
#   PORT_VAR        the variable that may choose the port (else a free one)
#   PID_FILE PORT_FILE LOG_FILE
# and defines:
#   server_launch PORT    exec the server on 127.0.0.1:PORT (run in the
#                         background, output to LOG_FILE)
#   server_answers PORT   true once it answers
#   server_ready PORT     (optional) called once it answers
# It also needs log, die and cmd_install, and ends with `server_main "$@"`.

server_running() {
    [[ -f "$PID_FILE" ]] || return 1
    local pid
    pid="$(cat "$PID_FILE")"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    # Make sure the pid was not recycled by something else.
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "$SERVER_PATTERN"
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

server_start() {
    if server_running; then
        echo "$ENDPOINT_VAR=http://127.0.0.1:$(cat "$PORT_FILE")"
        return 0
    fi
    local port="${!PORT_VAR:-}"
    [[ -n "$port" ]] || port="$(free_port)"
    [[ "$port" =~ ^[0-9]+$ ]] || die "$PORT_VAR must be a number, not '$port'"
    # Otherwise the readiness check could take another server for ours.
    port_free "$port" || die "port $port is already in use"
    # setsid (in server_launch): its own session, so the server outlives
    # this script and a Ctrl-C in the calling terminal does not reach it.
    server_launch "$port" >"$LOG_FILE" 2>&1 </dev/null &
    local pid=$!
    echo "$pid" >"$PID_FILE"
    echo "$port" >"$PORT_FILE"
    local i
    for ((i = 0; i < 60; i++)); do
        if ! kill -0 "$pid" 2>/dev/null; then
            rm -f "$PID_FILE" "$PORT_FILE"
            tail -n 20 "$LOG_FILE" >&2 || true
            die "$SERVER_NAME exited during startup (log: $LOG_FILE)"
        fi
        if server_answers "$port"; then
            if declare -F server_ready >/dev/null; then
                server_ready "$port"
            fi
            log "running, pid $pid, log $LOG_FILE"
            echo "$ENDPOINT_VAR=http://127.0.0.1:$port"
            return 0
        fi
        sleep 0.5
    done
    kill "$pid" 2>/dev/null || true
    rm -f "$PID_FILE" "$PORT_FILE"
    die "$SERVER_NAME did not answer on port $port within 30 s (log: $LOG_FILE)"
}

server_stop() {
    if ! server_running; then
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

# The command line of both scripts: install | start | stop.
server_main() {
    case "${1:-}" in
    install) cmd_install ;;
    start)
        server_running || cmd_install
        server_start
        ;;
    stop) server_stop ;;
    *)
        echo "usage: $0 install|start|stop" >&2
        exit 2
        ;;
    esac
}
