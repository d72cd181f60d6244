#!/usr/bin/env python3
"""Init-time benchmark for the Lambda function binaries (a benchmark, not a
test; scripts/bench-functions.sh runs it, docs/benchmarks.md has the method).

For every run of every binary: spawn the binary against a local stand-in of
the Lambda Runtime API and measure, on one clock (time.monotonic_ns in this
process), the time from just before the spawn until the stand-in receives the
binary's first `GET /2018-06-01/runtime/invocation/next`. The stand-in holds
that request unanswered; the process is then killed.

The same local server also serves a static JWKS at /.well-known/jwks.json, so
the functions' JWKS warm-up at init (peak_functions::state_from_env) is a real
HTTP round trip, on loopback (`--jwks-delay-ms` adds latency to it).

Runs are interleaved: each round runs every binary once, in a shuffled order,
after one discarded warm-up round, so drift (CPU frequency, other load) hits
all binaries alike.

Usage: bench-init.py [--runs N] [--json OUT] [--set K=V]... [--unset K]...
                     NAME=PATH [NAME=PATH ...]
The first NAME=PATH is the baseline the ratios are taken against. NAME is the
function name (AWS_LAMBDA_FUNCTION_NAME; it does not select behaviour, each
binary serves its own routes).
"""
import argparse
import json
import math
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # no __pycache__ in scripts/lib
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from lambda_runtime_api import RuntimeApi, serve_in_background  # noqa: E402

JWKS_PATH = "/.well-known/jwks.json"

# A throwaway RSA public key (its private half was never kept): only its shape
# matters, the benchmark verifies no token.
JWKS = json.dumps({
    "keys": [{
        "kty": "RSA",
        "kid": "bench",
        "use": "sig",
        "alg": "RS256",
        "n": "n3DtEEXP0cju-FesYhojqdumrucCnHMVn9b581hYRpVkc6zEFHIsWVFQeNQmadUQj9mIa6CRSetbio0mCMYKcK7sDhq2_AP9R-X0wE5FD7SXzxQXf1Zyg72lOrKc1bF5_OTb6NlJYbNJSTDRn6jATD8UI5EYx8z-_izFRwFK0pEWDcNc-v6Jw8Id_0rp2b5siExAsAsj_QYim9JEREv4DRtncT5VnQHmbZU7ozN9O-UyC9m-OsBDeqNuZnf-kWfs71e52pn8Zscz6AlpzWHXMBtwro5tiW9wDFx55SFZUvFmf9m8hBipPdxHR8GGQtQ9VVXrs8GsOMa5uJWavpmn5w",
        "e": "AQAB",
    }]
}).encode()

EMAIL_BRANDS = json.dumps({
    "default": {
        "name": "Bench Portal",
        "sender": "noreply@example.com",
        "portal_url": "https://portal.example.com",
    }
})


class Run:
    """What the benchmark counts during one run besides the stand-in's
    session (the JWKS fetches)."""

    def __init__(self):
        self.jwks_requests = 0


class Bench:
    """The Runtime API stand-in (scripts/lib/lambda_runtime_api.py), which
    also serves a static JWKS at /.well-known/jwks.json."""

    def __init__(self, jwks_delay_s):
        self.run = Run()
        self.jwks_delay_s = jwks_delay_s
        self.api = RuntimeApi(extra_get={JWKS_PATH: self._jwks})
        serve_in_background(self.api)

    def _jwks(self):
        self.run.jwks_requests += 1
        if self.jwks_delay_s:
            time.sleep(self.jwks_delay_s)
        return 200, JWKS


def function_env(name, port, home, sets, unsets):
    base = f"http://127.0.0.1:{port}"
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        # An empty home: no ~/.aws/config or credentials of whoever runs this.
        "HOME": home,
        "LANG": "C.UTF-8",
        "TZ": ":UTC",
        # What Lambda itself sets.
        "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{port}",
        "AWS_LAMBDA_FUNCTION_NAME": name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        "AWS_LAMBDA_FUNCTION_VERSION": "1",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": "bench",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "AKIDBENCH",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_SESSION_TOKEN": "bench",
        "AWS_EC2_METADATA_DISABLED": "true",
        # What the template gives the functions (infra/template.yaml).
        "TABLE_NAME": "x",
        "JWT_ISSUER": f"{base}/",
        "JWT_AUDIENCE": "x",
        "JWKS_URL": f"{base}{JWKS_PATH}",
        "PUBLIC_API_URL": "http://127.0.0.1",
        "PORTAL_URL": "https://portal.example.com",
        # Nothing listens on port 9: the SDK clients connect lazily, at the
        # first request, so init never uses these.
        "DYNAMODB_ENDPOINT": "http://127.0.0.1:9",
        "SES_ENDPOINT": "http://127.0.0.1:9",
        "EMAIL_BRANDS": EMAIL_BRANDS,
    }
    env.update(sets)
    for k in unsets:
        env.pop(k, None)
    return env


def one_run(bench, name, path, home, sets, unsets, log_path, timeout_s):
    run = Run()
    bench.run = run
    session = bench.api.reset()
    env = function_env(name, bench.api.server_address[1], home, sets, unsets)
    with open(log_path, "wb") as log:
        t0 = time.monotonic_ns()
        proc = subprocess.Popen([path], env=env, stdin=subprocess.DEVNULL,
                                stdout=log, stderr=subprocess.STDOUT,
                                close_fds=True)
        t_exec = time.monotonic_ns()  # Popen returns once exec succeeded
        deadline = time.monotonic() + timeout_s
        exited = None
        # The stand-in holds the first /next unanswered (no event is ever
        # queued); the process is then killed.
        while not session.got_next.wait(timeout=0.02):
            exited = proc.poll()
            if exited is not None or time.monotonic() > deadline:
                break
        proc.kill()
        proc.wait()
        session.released.set()
    if session.first_next_ns is None:
        with open(log_path, "rb") as f:
            tail = f.read()[-2000:].decode("utf-8", "replace")
        why = (f"init error posted: {session.init_error}" if session.init_error
               else f"exited with {exited}" if exited is not None
               else f"no /next within {timeout_s}s")
        raise RuntimeError(f"{name}: {why}\n--- output ---\n{tail}")
    return {
        "init_ms": (session.first_next_ns - t0) / 1e6,
        "spawn_ms": (t_exec - t0) / 1e6,
        "jwks_requests": run.jwks_requests,
    }


def p90(xs):
    s = sorted(xs)
    return s[max(0, math.ceil(0.9 * len(s)) - 1)]  # nearest rank


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--warmup", type=int, default=1, help="discarded rounds first")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", help="write every sample here")
    ap.add_argument("--jwks-delay-ms", type=float, default=0.0,
                    help="latency the JWKS endpoint adds (default 0: loopback)")
    ap.add_argument("--set", action="append", default=[], metavar="K=V",
                    help="extra or overriding environment for every binary")
    ap.add_argument("--unset", action="append", default=[], metavar="K")
    ap.add_argument("--timeout", type=float, default=20.0)
    ap.add_argument("binaries", nargs="+", metavar="NAME=PATH")
    a = ap.parse_args()

    bins = []
    for arg in a.binaries:
        name, _, path = arg.partition("=")
        if not path or not os.access(path, os.X_OK):
            sys.exit(f"bench-init: {arg!r}: not NAME=PATH of an executable")
        bins.append((name, os.path.abspath(path)))
    sets = dict(kv.split("=", 1) for kv in a.set)

    bench = Bench(a.jwks_delay_ms / 1000)
    rng = random.Random(a.seed)
    samples = {name: [] for name, _ in bins}
    with tempfile.TemporaryDirectory(prefix="bench-init-") as tmp:
        home = os.path.join(tmp, "home")
        os.mkdir(home)
        for rnd in range(a.warmup + a.runs):
            order = bins[:]
            rng.shuffle(order)
            for name, path in order:
                log = os.path.join(tmp, f"{name}.log")
                r = one_run(bench, name, path, home, sets, a.unset, log, a.timeout)
                if rnd == 0:
                    # The warm-up run's output: any error or warning at init
                    # (e.g. a failed JWKS warm-up) would skew what is measured.
                    with open(log, "rb") as f:
                        for line in f.read().decode("utf-8", "replace").splitlines():
                            if '"ERROR"' in line or '"WARN"' in line:
                                print(f"bench-init: {name} logged at init: {line}",
                                      file=sys.stderr)
                if rnd >= a.warmup:
                    samples[name].append(r)
            print(f"bench-init: round {rnd + 1}/{a.warmup + a.runs} done",
                  file=sys.stderr)
    bench.api.shutdown()

    base_name = bins[0][0]
    base_med = statistics.median(s["init_ms"] for s in samples[base_name])
    base_p90 = p90([s["init_ms"] for s in samples[base_name]])
    print(f"| binary | runs | init median (ms) | init p90 (ms) | min (ms) "
          f"| median / {base_name} | p90 / {base_name} | JWKS fetches at init |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    rows = []
    for name, _ in bins:
        xs = [s["init_ms"] for s in samples[name]]
        med, q90 = statistics.median(xs), p90(xs)
        jw = sorted({s["jwks_requests"] for s in samples[name]})
        rows.append({"binary": name, "runs": len(xs), "median_ms": med, "p90_ms": q90,
                     "min_ms": min(xs), "ratio_median": med / base_med,
                     "ratio_p90": q90 / base_p90, "samples": samples[name]})
        print(f"| {name} | {len(xs)} | {med:.2f} | {q90:.2f} | {min(xs):.2f} "
              f"| {med / base_med:.2f}× | {q90 / base_p90:.2f}× "
              f"| {'/'.join(map(str, jw))} |")
    spawn = [s["spawn_ms"] for v in samples.values() for s in v]
    print(f"\nSpawn itself (Popen until exec succeeded), every run: median "
          f"{statistics.median(spawn):.2f} ms, p90 {p90(spawn):.2f} ms — included "
          f"in every init figure above.")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"baseline": base_name, "runs": a.runs, "warmup": a.warmup,
                       "jwks_delay_ms": a.jwks_delay_ms, "set": sets,
                       "unset": a.unset, "results": rows}, f, indent=1)


if __name__ == "__main__":
    main()
