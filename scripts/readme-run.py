#!/usr/bin/env python3
"""Runs every ```sh block of README.md verbatim, in order, so the README
cannot drift from what the code does.

    python3 scripts/readme-run.py            # needs: cargo, jq, curl, Java 17, npm
    python3 scripts/readme-run.py --list     # print the blocks and what is done with each

Each block runs as written, with `bash -e` in the repository root (a
reader's shell: no pipefail, so `… | head -1` is fine). HTML comments on the
lines right before a block say more (invisible when the README is rendered):

    <!-- readme-run: server -->      the block serves the API in the foreground
                                     (like a reader's first terminal): it runs in
                                     the background until the next server block
                                     or the end, then gets Ctrl-C (SIGINT) and must
                                     finish the rest of its lines with status 0
    <!-- readme-run: skip: <why> --> not run, and why (printed)
    <!-- readme-run: expect: <regex> -->
                                     the block's output (stdout + stderr) must
                                     match; one per line, all must match

The local API's data folder `.local/data` is moved aside for the run (and
put back after), so the run starts from a fresh clone's state. Port 3000
must be free: the blocks say `http://127.0.0.1:3000`.
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(ROOT, "README.md")
DATA = os.path.join(ROOT, ".local", "data")
PORT = 3000
BLOCK_TIMEOUT = 900
SERVER_START_TIMEOUT = 900  # the first `cargo run` may compile


class Block:
    def __init__(self, line, text, notes):
        self.line = line
        self.text = text
        self.server = any(n == "server" for n in notes)
        self.skip = next((n[len("skip:"):].strip() for n in notes if n.startswith("skip:")), None)
        self.expect = [n[len("expect:"):].strip() for n in notes if n.startswith("expect:")]

    def title(self):
        first = next((l for l in self.text.splitlines() if l.strip()), "")
        return f"README.md:{self.line}: {first.strip()[:70]}"


def blocks():
    lines = open(README, encoding="utf-8").read().splitlines()
    out, i = [], 0
    while i < len(lines):
        if lines[i].strip() == "```sh":
            indent = lines[i][: len(lines[i]) - len(lines[i].lstrip())]
            notes, j = [], i - 1
            while j >= 0 and lines[j].strip().startswith("<!-- readme-run:"):
                m = re.match(r"<!-- readme-run: (.*) -->$", lines[j].strip())
                if not m:
                    sys.exit(f"README.md:{j + 1}: a readme-run note must fit on one line")
                notes.insert(0, m.group(1).strip())
                j -= 1
            body, k = [], i + 1
            while lines[k].strip() != "```":
                body.append(lines[k][len(indent):] if lines[k].startswith(indent) else lines[k])
                k += 1
            out.append(Block(i + 1, "\n".join(body) + "\n", notes))
            i = k
        i += 1
    return out


def port_open():
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", PORT)) == 0


def fail(block, why, output):
    print(output, end="")
    sys.exit(f"readme-run: FAILED {block.title()}: {why}")


def check(block, output):
    for pattern in block.expect:
        if not re.search(pattern, output, re.MULTILINE):
            fail(block, f"its output does not match the expected /{pattern}/", output)


class Server:
    def __init__(self, block):
        self.block = block
        self.log = open(os.path.join(ROOT, ".local", "readme-run-server.log"), "w+")
        self.proc = subprocess.Popen(
            ["bash", "-e", "-c", block.text], cwd=ROOT, stdout=self.log,
            stderr=subprocess.STDOUT, start_new_session=True, text=True)

    def start(self):
        deadline = time.time() + SERVER_START_TIMEOUT
        while time.time() < deadline:
            if self.proc.poll() is not None:
                fail(self.block, f"exited ({self.proc.returncode}) before serving", self.output())
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{PORT}/openapi.json", timeout=2) as r:
                    if r.status == 200:
                        print(f"readme-run: serving: {self.block.title()}", flush=True)
                        return
            except Exception:
                pass
            time.sleep(0.5)
        self.kill()
        fail(self.block, "the server did not answer in time", self.output())

    def output(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def stop(self):
        """Ctrl-C, as a reader would; the rest of the block must then succeed."""
        os.killpg(self.proc.pid, signal.SIGINT)
        try:
            code = self.proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            self.kill()
            fail(self.block, "did not finish after Ctrl-C", self.output())
        out = self.output()
        if code != 0:
            fail(self.block, f"exited {code} after Ctrl-C", out)
        check(self.block, out)
        print(f"readme-run: ok (server stopped): {self.block.title()}", flush=True)

    def kill(self):
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def main():
    all_blocks = blocks()
    if "--list" in sys.argv:
        for b in all_blocks:
            kind = "skip: " + b.skip if b.skip else ("server" if b.server else "run")
            print(f"{b.title()}  [{kind}; {len(b.expect)} expectations]")
        return
    if port_open():
        sys.exit(f"readme-run: port {PORT} is in use; the README's blocks need it (stop the local API)")
    aside = None
    if os.path.exists(DATA):
        aside = f"{DATA}.readme-run-{os.getpid()}"
        os.rename(DATA, aside)
    dynamodb_pid = os.path.join(ROOT, ".local", "dynamodb", "server.pid")
    dynamodb_was_running = os.path.exists(dynamodb_pid)
    server = None
    try:
        for b in all_blocks:
            if b.skip:
                print(f"readme-run: skipped {b.title()}: {b.skip}", flush=True)
                continue
            if b.server:
                if server:
                    server.stop()
                server = Server(b)
                server.start()
                continue
            print(f"readme-run: running {b.title()}", flush=True)
            started = time.time()
            try:
                r = subprocess.run(["bash", "-e", "-c", b.text], cwd=ROOT, capture_output=True,
                                   text=True, timeout=BLOCK_TIMEOUT)
            except subprocess.TimeoutExpired as e:
                fail(b, "timed out", (e.stdout or "") + (e.stderr or ""))
            out = r.stdout + r.stderr
            if r.returncode != 0:
                fail(b, f"exited {r.returncode}", out)
            check(b, out)
            print(f"readme-run: ok in {time.time() - started:.1f} s", flush=True)
        if server:
            server.stop()
            server = None
        print(f"readme-run: every block of README.md ran ({len(all_blocks)} blocks)")
    finally:
        if server:
            server.kill()
        if not dynamodb_was_running and os.path.exists(dynamodb_pid):
            subprocess.run([os.path.join(ROOT, "scripts", "dynamodb-local.sh"), "stop"], cwd=ROOT)
        if aside:
            shutil.rmtree(DATA, ignore_errors=True)
            os.rename(aside, DATA)


if __name__ == "__main__":
    main()
