#!/usr/bin/env python3
"""A local stand-in of the AWS Lambda Runtime API, on loopback, for one
function process at a time. Shared by the init benchmark
(scripts/bench-init.py imports it) and the Runtime API test of the built
artefacts (tests/tests/lambda_runtime.rs runs it as a program).

What a function binary sees is what Lambda gives it: `GET
/2018-06-01/runtime/invocation/next` answers the next event with the
`Lambda-Runtime-*` headers, and the function posts `.../{id}/response`,
`.../{id}/error` or `/runtime/init/error`. The caller side is the one the
Lambda Runtime Interface Emulator (what `sam local invoke` runs in Docker)
offers: `POST /2015-03-31/functions/function/invocations` with the event as
the body answers the function's response, or its error with
`X-Amz-Function-Error: Unhandled` (HTTP 200, as Lambda's Invoke does).

Run as a program it prints `127.0.0.1:PORT` (the value for
AWS_LAMBDA_RUNTIME_API) on its first line and serves until its stdin
closes, so it never outlives the test that started it:

    python3 scripts/lib/lambda_runtime_api.py
"""
import http.server
import queue
import sys
import threading
import time
import uuid

NEXT_PATH = "/2018-06-01/runtime/invocation/next"
INVOCATION_PREFIX = "/2018-06-01/runtime/invocation/"
INIT_ERROR_PATH = "/2018-06-01/runtime/init/error"
INVOKE_PATH = "/2015-03-31/functions/function/invocations"
# How long an invocation may take before the caller gets a 504 (the
# template's longest function timeout is 900 s; tests use far less).
DEFAULT_INVOKE_TIMEOUT_S = 60.0


class Invocation:
    def __init__(self, event):
        self.request_id = str(uuid.uuid4())
        self.event = event
        self.done = threading.Event()
        self.response = None
        self.error = None


class Session:
    """What the stand-in saw from one function process; `RuntimeApi.reset`
    starts a new one (the benchmark runs many processes on one server)."""

    def __init__(self):
        self.first_next_ns = None
        self.init_error = None
        # Set at the first /next or at an init error: the function is up
        # (or will never be).
        self.got_next = threading.Event()
        # Set when the process is gone: a waiting /next is answered 404.
        self.released = threading.Event()
        self.events = queue.Queue()
        self.inflight = {}
        self.lock = threading.Lock()


class RuntimeApi(http.server.ThreadingHTTPServer):
    daemon_threads = True
    # Default 5: a burst of connects from a slow machine must not be refused.
    request_queue_size = 64

    def __init__(self, extra_get=None, host="127.0.0.1", port=0):
        """`extra_get`: {path: fn() -> (status, body bytes)} for other GET
        routes served on the same port (the benchmark's JWKS)."""
        super().__init__((host, port), _Handler)
        self.session = Session()
        self.extra_get = extra_get or {}

    def handle_error(self, request, client_address):
        # A function process killed with its connection open (the benchmark
        # kills every one) is not an error of the stand-in.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)

    @property
    def address(self):
        host, port = self.server_address[:2]
        return f"{host}:{port}"

    def reset(self):
        """A new session for the next function process."""
        self.session.released.set()
        self.session = Session()
        return self.session

    def invoke(self, event, timeout_s=DEFAULT_INVOKE_TIMEOUT_S):
        """Hands `event` (bytes) to the function; returns the finished
        Invocation, or None when it did not finish in time."""
        inv = Invocation(event)
        session = self.session
        with session.lock:
            session.inflight[inv.request_id] = inv
        session.events.put(inv)
        return inv if inv.done.wait(timeout_s) else None


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        now = time.monotonic_ns()
        server = self.server
        session = server.session
        path = self.path.split("?", 1)[0]
        if path == NEXT_PATH:
            if session.first_next_ns is None:
                session.first_next_ns = now
                session.got_next.set()
            while True:
                if session.released.is_set():
                    self._send(404, b'{"errorMessage":"the stand-in is done with this process"}')
                    return
                try:
                    inv = session.events.get(timeout=0.05)
                    break
                except queue.Empty:
                    continue
            deadline_ms = int(time.time() * 1000) + 60_000
            self._send(200, inv.event, {
                "Lambda-Runtime-Aws-Request-Id": inv.request_id,
                "Lambda-Runtime-Deadline-Ms": str(deadline_ms),
                "Lambda-Runtime-Invoked-Function-Arn":
                    "arn:aws:lambda:us-east-1:123456789012:function:local",
                "Lambda-Runtime-Trace-Id": "Root=1-00000000-000000000000000000000000",
            })
        elif path in server.extra_get:
            status, body = server.extra_get[path]()
            self._send(status, body)
        else:
            self._send(404, b"{}")

    def do_POST(self):
        server = self.server
        session = server.session
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        path = self.path.split("?", 1)[0]
        if path == INIT_ERROR_PATH:
            session.init_error = body.decode("utf-8", "replace")
            session.got_next.set()
            # Whoever waits for an answer gets the init error.
            with session.lock:
                waiting = list(session.inflight.values())
            for inv in waiting:
                inv.error = body
                inv.done.set()
            self._send(202, b"{}")
        elif path.startswith(INVOCATION_PREFIX):
            request_id, _, kind = path[len(INVOCATION_PREFIX):].partition("/")
            with session.lock:
                inv = session.inflight.pop(request_id, None)
            if inv is None or kind not in ("response", "error"):
                self._send(400, b'{"errorMessage":"unknown invocation"}')
                return
            if kind == "response":
                inv.response = body
            else:
                inv.error = body
            inv.done.set()
            self._send(202, b"{}")
        elif path == INVOKE_PATH:
            if session.init_error is not None:
                self._send(200, session.init_error.encode(),
                           {"X-Amz-Function-Error": "Unhandled"})
                return
            inv = server.invoke(body)
            if inv is None:
                self._send(504, b'{"errorMessage":"the function did not answer in time"}')
            elif inv.error is not None:
                self._send(200, inv.error, {"X-Amz-Function-Error": "Unhandled"})
            else:
                self._send(200, inv.response)
        else:
            self._send(404, b"{}")

    def _send(self, status, body, headers=None):
        try:
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            pass  # the function was killed meanwhile

    def log_message(self, *args):
        pass


def serve_in_background(server):
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                     daemon=True).start()
    return server


def main():
    server = serve_in_background(RuntimeApi())
    print(server.address, flush=True)
    # Serve until whoever started us closes our stdin (or dies).
    try:
        sys.stdin.read()
    except KeyboardInterrupt:
        pass
    server.session.released.set()
    server.shutdown()


if __name__ == "__main__":
    main()
