#!/usr/bin/env bash
# Benchmark (not a test) of the Lambda function binaries, see
# docs/benchmarks.md:
#   1. the size of every function binary (release profile: stripped), and of
#      the hello-world baseline (functions/examples/hello-baseline.rs);
#   2. init time: process start until the first `GET .../invocation/next` to
#      a local stand-in of the Lambda Runtime API (scripts/bench-init.py),
#      every function side by side with the baseline in one run.
#
# Usage: scripts/bench-functions.sh [--no-build] [--runs N] [--only a,b,c]
#                                   [-- extra arguments for bench-init.py]
#   --no-build   use the binaries already in target/release
#   --runs N     measured runs per binary (default 15)
#   --only LIST  time only these functions (default: all); sizes are always
#                given for all
# Prints two Markdown tables; the raw samples go to target/bench/init.json.
# Needs cargo, python3 and `file`.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"

build=1
runs=15
only=""
extra=()
while [ $# -gt 0 ]; do
    case "$1" in
        --no-build) build=0 ;;
        --runs) runs="$2"; shift ;;
        --only) only="$2"; shift ;;
        --) shift; extra=("$@"); break ;;
        *) echo "bench-functions.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done

TARGET="${CARGO_TARGET_DIR:-$REPO_ROOT/target}"
REL="$TARGET/release"

if [ "$build" = 1 ]; then
    cargo build --release --locked -p peak-functions --bins --example hello-baseline
fi

functions=()
for src in functions/src/bin/*.rs; do
    functions+=("$(basename "$src" .rs)")
done

# --- 1. Size -----------------------------------------------------------------
echo "### Binary size (release profile, x86_64, $(rustc --version | cut -d' ' -f1-2))"
echo
python3 - "$REL" hello-baseline=examples/hello-baseline "${functions[@]}" <<'EOF'
import io, os, subprocess, sys, zipfile
rel, names = sys.argv[1], sys.argv[2:]
LIMIT = 5_000_000  # "≤ 5 MB": decimal megabytes
print("| binary | bytes | MB | zipped as `bootstrap` (MB) | `file` says | ≤ 5 MB |")
print("|---|---:|---:|---:|---|---|")
worst = 0
for n in names:
    name, _, rel_path = n.partition("=")
    path = os.path.join(rel, rel_path or name)
    if not os.path.exists(path):
        print(f"| {name} | missing: {path} | | | | |")
        continue
    size = os.stat(path).st_size
    if name != "hello-baseline":
        worst = max(worst, size)
    out = subprocess.run(["file", "-bL", path], capture_output=True, text=True).stdout
    stripped = "stripped" if ", stripped" in out else ("NOT stripped" if "not stripped" in out else "?")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.write(path, "bootstrap")
    print(f"| {name} | {size:,} | {size / 1e6:.2f} | {len(buf.getvalue()) / 1e6:.2f} "
          f"| {stripped} | {'yes' if size <= LIMIT else '**no**'} |")
print(f"\nLargest function binary: {worst:,} bytes ({worst / 1e6:.2f} MB).")
EOF

# --- 2. Init time --------------------------------------------------------------
if [ -n "$only" ]; then
    IFS=, read -r -a functions <<<"$only"
fi
args=("hello-baseline=$REL/examples/hello-baseline")
for f in "${functions[@]}"; do
    args+=("$f=$REL/$f")
done
mkdir -p "$TARGET/bench"
echo
echo "### Init time, $runs runs each (process start until the first /next)"
echo
python3 scripts/bench-init.py --runs "$runs" --json "$TARGET/bench/init.json" \
    ${extra[@]+"${extra[@]}"} "${args[@]}"
