"""What the journeys (test_inbox_journeys.py) and the Enter-to-visible benchmark share: a whole
chatdesk to drive (a `Desk`), logged-in agents, and a recorder in each page that notes what the
agent's open thread shows, mutation by mutation.

The recorder is how "the ticks never go back" and "never two lines for one message" are
proven: a final state can look right after a line was shown twice for a moment or a tick went
from ✓✓ back to ✓. It only reads the page (the assertions a person would make are Playwright's
visibility assertions, in the tests).
"""

import contextlib
import importlib.util
import os
import re
import socket
import struct
import threading
from dataclasses import dataclass

import httpx

from tests.procs import PYTHON, free_port, free_port_run, process_env, running, wait_for_http

PHONE = "+593968196046"
# The order a visible tick may move in (inbox/live.py STATUS_RANK, as the page shows it).
TICK_ORDER = {
    "scheduled": 0,
    "queued": 1,
    "sending": 1,
    "unconfirmed": 2,
    "unknown": 3,
    "sent": 4,
    "failed": 5,
    "delivered": 5,
    "read": 6,
    "played": 7,
    "cancelled": 8,
}

RECORDER = """
(() => {
  const log = { lines: {}, twice: [], staged: [] };
  window.__thread = log;
  function scan() {
    const box = document.getElementById("thread-messages");
    // The page places what lands in #live-staging before it paints: look once that is done.
    setTimeout(() => {
      const staging = document.getElementById("live-staging");
      const stuck = staging && staging.querySelector(".msg");
      if (stuck) log.staged.push(staging.innerHTML.slice(0, 300));
    }, 0);
    if (!box) return;
    const seen = {};
    box.querySelectorAll(":scope > .msg-out").forEach((line) => {
      const key = line.dataset.ref || line.id;
      const tick = line.querySelector(".tick");
      const status = tick ? tick.dataset.status : "";
      if (seen[key]) log.twice.push(key);
      seen[key] = true;
      const entry = log.lines[key] || (log.lines[key] = {
        statuses: [], ids: [], text: "", first: performance.now(),
      });
      if (entry.statuses[entry.statuses.length - 1] !== status) entry.statuses.push(status);
      if (line.id && !entry.ids.includes(line.id)) entry.ids.push(line.id);
      const body = line.querySelector(".msg-body");
      entry.text = body ? body.textContent : entry.text;
    });
  }
  const everything = { childList: true, subtree: true, attributes: true };
  new MutationObserver(scan).observe(document, everything);
})();
"""


@dataclass
class Desk:
    """A running chatdesk: the web address each agent uses (one daphne each in production) and
    the simulator standing in for WaSender."""

    name: str
    urls: tuple[str, str]
    sim: str

    def knobs(self, **values) -> None:
        response = httpx.post(f"{self.sim}/_sim/config", json=values, timeout=10)
        assert response.status_code == 200, f"simulator refused {values}: {response.text}"

    def config(self) -> dict:
        return httpx.get(f"{self.sim}/_sim/config", timeout=10).json()

    def reset(self) -> None:
        httpx.post(f"{self.sim}/_sim/reset", timeout=10).raise_for_status()

    def stats(self) -> dict:
        return httpx.get(f"{self.sim}/_sim/stats", timeout=10).json()

    def customer_writes(self, text: str, *, phone: str = PHONE, name: str = "María González"):
        response = httpx.post(
            f"{self.sim}/_sim/inbound",
            json={"phone": phone, "text": text, "name": name},
            timeout=30,
        )
        assert response.json()["data"]["delivered"] is True, response.text


@contextlib.contextmanager
def embedded_desk(log_dir):
    """`manage.py runembedded`, the process `make demo` runs: web, worker threads, scheduler and
    simulator in one, on the tests' database, with no Redis. The simulator's customers who
    write in now and then are off: the journeys count every message."""
    port = free_port_run()
    env = process_env(DEBUG="1", REDIS_URL="", WASENDER_SIM_DEMO="0", LOG_LEVEL="WARNING")
    env.pop("WASENDER_API_KEY", None)
    url, sim = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{port + 1}"
    args = [PYTHON, "manage.py", "runembedded", "--port", str(port)]
    with running(args, env=env, ready_url=f"{url}/healthz", log=log_dir / "embedded.log") as proc:
        wait_for_http(f"{sim}/", proc=proc)
        yield Desk("embedded", (url, url), sim)


class Link:
    """A TCP hop between one browser and its web process that the test can cut (every open
    connection reset, new ones refused) and restore: an agent's network dropping out.
    Chromium's own offline emulation leaves an open WebSocket open."""

    def __init__(self, target_port: int):
        self.target = target_port
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.lock = threading.Lock()
        self.sockets: set[socket.socket] = set()
        self.listener: socket.socket | None = None
        self.restore()

    def restore(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        with self.lock:
            listener, self.listener = self.listener, None
            doomed, self.sockets = self.sockets, set()
        if listener is not None:
            listener.close()
        for sock in doomed:
            # Shut down first: a close alone leaves the pump thread's recv (and the connection)
            # alive. Both ends see the connection end, as they do when a network drops out and
            # the browser notices.
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    close = cut

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target))
            except OSError:
                client.close()
                continue
            with self.lock:
                if self.listener is not listener:
                    client.close()
                    upstream.close()
                    return
                self.sockets |= {client, upstream}
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            with self.lock:
                self.sockets -= {source, sink}


@contextlib.contextmanager
def production_desk(log_dir):
    """The README's production processes, started by tests/topology.py from the README's own
    lines (two daphnes, the worker, the scheduler, the simulator) on the tests' database and
    Redis: agent 1 on the first daphne, agent 2 on the second; the simulator's webhooks reach
    the first, so whatever agent 2 sees crossed Redis."""
    from tests.conftest import require
    from tests.procs import redis_url_for_tests

    topology_run = from_topology("topology_run")
    database_url = from_topology("database_url_for_tests")()
    require(database_url.startswith("postgres"), "the production topology needs PostgreSQL")
    require(bool(os.environ.get("REDIS_URL")), "the production topology needs Redis (REDIS_URL)")
    with topology_run(
        logs=log_dir, database_url=database_url, redis_url=redis_url_for_tests()
    ) as top:
        try:
            yield Desk("production", (top.web1, top.web2), top.simulator)
        finally:
            print(top.logs_tail())  # shown when a test of the module failed


def from_topology(name: str):
    """`name` from tests/topology.py (issue 15: the documented commands as fixtures), or a
    skip that names it while it is not merged."""
    from tests.conftest import require

    module = None
    if importlib.util.find_spec("tests.topology") is not None:
        module = importlib.import_module("tests.topology")
    require(hasattr(module, name), f"tests/topology.py has no {name} yet (issue 15)")
    return getattr(module, name)


def login(
    browser, url: str, username: str, *, password: str = "", width: int = 1280, height: int = 800
):
    """(context, page) of an agent logged in (password "pass-<username>" unless given), with
    the thread recorder in every document."""
    context = browser.new_context(viewport={"width": width, "height": height}, locale="es-EC")
    context.add_init_script(RECORDER)
    page = context.new_page()
    page.goto(f"{url}/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password or "pass-" + username)
    page.click("button[type=submit]")
    page.wait_for_url(f"{url}/")
    return context, page


def socket_open(page) -> None:
    page.wait_for_function("window.chatdeskInbox && window.chatdeskInbox.socket !== null")


def open_thread(page, url: str, conversation_id: int) -> None:
    page.goto(f"{url}/inbox/c/{conversation_id}/")
    socket_open(page)


def thread_log(page) -> dict:
    return page.evaluate("window.__thread")


def tick_problems(log: dict) -> list[str]:
    """Every way the recorded thread went wrong: a message shown twice at once, a line left in
    the hidden staging element, a tick that moved backward."""
    problems = [f"shown twice: {key}" for key in sorted(set(log["twice"]))]
    if log["staged"]:
        problems.append(f"a line sat in #live-staging: {log['staged']}")
    for entry in log["lines"].values():
        ranks = [TICK_ORDER.get(s, -1) for s in entry["statuses"]]
        if ranks != sorted(ranks):
            problems.append(f"{entry['text']!r} went back: {entry['statuses']}")
        if len(entry["ids"]) > 1:
            problems.append(f"{entry['text']!r} became several messages: {entry['ids']}")
    return problems


def digits(phone: str) -> str:
    return re.sub(r"\D", "", phone)
