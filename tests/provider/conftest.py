"""What the simulator tests share: a small HTTP server playing chatdesk's webhook endpoint, and
a simulator's management command started on a free loopback port, both for a test module."""

import contextlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

from tests.procs import PYTHON, free_port, process_env, running


class WebhookReceiver:
    """Records every POST (path, headers, the raw bytes and their JSON) and answers 200.
    `wait_for` waits on what `seen()` answers: the hooks, or what a subclass reads in them."""

    def __init__(self, path: str):
        self.hooks: list[dict] = []
        self.changed = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                hook = {
                    "path": self.path,
                    "headers": dict(self.headers),
                    "raw": raw,
                    "body": json.loads(raw),
                }
                with receiver.changed:
                    receiver.hooks.append(hook)
                    receiver.changed.notify_all()
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}{path}"

    def seen(self) -> list:
        return list(self.hooks)

    def wait_for(self, predicate, timeout=15.0) -> list:
        """Waits (with a deadline) until predicate(seen()) is true; returns seen()."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while not predicate(self.seen()):
                remaining = deadline - time.monotonic()
                assert remaining > 0, f"webhooks never matched; got {self.seen()}"
                self.changed.wait(remaining)
            return self.seen()


@contextlib.contextmanager
def receiving(receiver: WebhookReceiver):
    """The receiver serving in a thread for the block."""
    threading.Thread(target=receiver.server.serve_forever, daemon=True).start()
    try:
        yield receiver
    finally:
        receiver.server.shutdown()


@contextlib.contextmanager
def sim_running(command: str, *options: str):
    """`manage.py <command> --port <free port> <options>` for the block; yields its URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = [PYTHON, "manage.py", command, "--port", str(port), *options]
    with running(args, env=process_env(), ready_url=url + "/_sim/stats"):
        yield url


def configure(sim_url: str, **knobs) -> None:
    httpx.post(sim_url + "/_sim/config", json=knobs).raise_for_status()
