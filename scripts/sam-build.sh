#!/usr/bin/env bash
# `sam build` of infra/template.yaml, every function, then a check of each
# artefact: a `bootstrap` ELF executable of the chosen architecture within
# the 5 MB size target (prints a table: function, binary, size).
#
# Usage: scripts/sam-build.sh [x86_64|arm64]     (default x86_64)
# Exit status: 0; 3 when every artefact was built right but one is over
# 5 MB; 1 otherwise (a build problem, or an artefact other than
# bulk-runner linking the spreadsheet reader). .ci/run fails on either.
#
# CI builds x86_64: this machine's one Rust toolchain has only the x86_64
# standard library and cannot fetch another (README, "OpenAPI, sample
# events, deployment"); real deployments use the template's default,
# arm64, with `rustup target add aarch64-unknown-linux-gnu` first.
#
# Installs aws-sam-cli, cargo-lambda and Zig (PyPI `ziglang`) into
# .local/venv-infra on first use. The artefacts land in target/sam/build
# (<LogicalId>/bootstrap, as `sam deploy` takes them); the Runtime API test
# (tests/tests/lambda_runtime.rs) runs them from there.
#
# One release build, shared: `sam build` runs one `cargo lambda build
# --release --bin <name>` per function (42 of them) one after another, and
# each of those links its binary alone; instead the script first runs one
# `cargo lambda build --release --bins` with exactly the flags SAM's
# builder uses, which builds the dependencies once and links the binaries
# two at a time (cargo's job server, one per core), so every call SAM then
# makes finds its binary fresh and only copies it. README, "Decisions", has
# the measurements behind this.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"

arch="${1:-x86_64}"
case "$arch" in
    x86_64) lambda_flags=() ;;                 # what SAM passes for x86_64: nothing
    arm64) lambda_flags=(--arm64) ;;           # and for arm64
    *) echo "sam-build.sh: architecture must be x86_64 or arm64, not $arch" >&2; exit 2 ;;
esac

VENV=.local/venv-infra
if [[ ! -x "$VENV/bin/sam" || ! -x "$VENV/bin/cargo-lambda" || ! -x "$VENV/bin/python-zig" ]]; then
    echo "sam-build.sh: installing aws-sam-cli, cargo-lambda and ziglang into $VENV" >&2
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check aws-sam-cli cargo-lambda ziglang
fi
# SAM looks for `cargo` and `cargo-lambda` on PATH; cargo-lambda finds Zig
# as `python3 -m ziglang` of this venv.
export PATH="$REPO_ROOT/$VENV/bin:$PATH"
export SAM_CLI_TELEMETRY=0
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

BUILD_DIR=target/sam/build
now() { date +%s.%N; }
t0=$(now)
echo "sam-build.sh: cargo lambda build --release --bins (${lambda_flags[*]:-x86_64}), every function at once" >&2
(cd functions && cargo lambda build --release --locked "${lambda_flags[@]}" --bins)
t1=$(now)
echo "sam-build.sh: sam build -> $BUILD_DIR (Architecture=$arch)" >&2
sam build --template-file infra/template.yaml --build-dir "$BUILD_DIR" \
    --parameter-overrides "Architecture=$arch"
t2=$(now)

check=0
"$VENV/bin/python" - "$BUILD_DIR" "$arch" functions/src/bin <<'EOF' || check=$?
import os, sys
from samcli.yamlhelper import yaml_parse  # YAML with CloudFormation's tags
build, arch, bins_dir = sys.argv[1:]
LIMIT = 5_000_000  # the size target, "≤ 5 MB": decimal megabytes
MACHINE = {62: "x86_64", 183: "arm64"}  # ELF e_machine
# Only bulk-runner parses uploaded files: no other artefact may link the
# spreadsheet reader (it put two HTTP functions over 5 MB). Its crates'
# source paths (panic locations) show it is linked.
READER_MARKS = (b"calamine-", b"quick-xml-")
READER_BINS = {"bulk-runner"}
if not os.path.isfile(os.path.join(build, "template.yaml")):
    sys.exit(f"sam-build.sh: sam build wrote no {build}/template.yaml")
# Every function of the template; sam build puts each one's artefact in
# <build>/<LogicalId>/.
resources = yaml_parse(open("infra/template.yaml").read())["Resources"]
functions = [
    (logical_id, r.get("Metadata", {}).get("BuildProperties", {}).get("Binary", "?"))
    for logical_id, r in resources.items()
    if r["Type"] == "AWS::Serverless::Function"
]
bins = sorted(f[:-3] for f in os.listdir(bins_dir) if f.endswith(".rs"))
problems = []  # the build is wrong: exit 1
oversize = []  # every artefact is there and right, but over the target: exit 3
missing = sorted(set(bins) - {b for _, b in functions})
if missing:
    problems.append(f"binaries with no function in the template: {', '.join(missing)}")
print(f"| function | binary | bytes | MB | architecture | ≤ 5 MB |")
print("|---|---|---:|---:|---|---|")
largest = 0
for logical_id, binary in sorted(functions, key=lambda f: f[1]):
    path = os.path.join(build, logical_id, "bootstrap")
    if not os.path.isfile(path):
        print(f"| {logical_id} | {binary} | missing | | | |")
        problems.append(f"{logical_id}: no {path}")
        continue
    size = os.stat(path).st_size
    largest = max(largest, size)
    with open(path, "rb") as f:
        head = f.read(20)
    elf = head[:4] == b"\x7fELF" and head[4] == 2  # 64-bit ELF
    machine = MACHINE.get(int.from_bytes(head[18:20], "little"), "?") if elf else "not ELF"
    ok = size <= LIMIT
    print(f"| {logical_id} | {binary} | {size:,} | {size / 1e6:.2f} | {machine} | {'yes' if ok else '**no**'} |")
    if machine != arch:
        problems.append(f"{logical_id}: {path} is {machine}, not {arch}")
    if not os.access(path, os.X_OK):
        problems.append(f"{logical_id}: {path} is not executable")
    if not ok:
        oversize.append(f"{logical_id}: {size:,} bytes, over the 5 MB target")
    if binary not in READER_BINS:
        with open(path, "rb") as f:
            data = f.read()
        if any(m in data for m in READER_MARKS):
            problems.append(f"{logical_id}: links the spreadsheet reader (only bulk-runner may)")
print(f"\n{len(functions)} functions; largest artefact {largest:,} bytes ({largest / 1e6:.2f} MB).")
if problems or oversize:
    print("sam-build.sh: FAILED:\n  " + "\n  ".join(problems + oversize), file=sys.stderr)
    sys.exit(1 if problems else 3)
EOF
t3=$(now)
python3 -c "import sys; a,b,c,d = map(float, sys.argv[1:]); print(f'sam-build.sh: cargo lambda build {b-a:.0f} s, sam build {c-b:.0f} s, check {d-c:.1f} s', file=sys.stderr)" "$t0" "$t1" "$t2" "$t3"
exit "$check"
