"""Real processes for integration and browser tests: daphne, dramatiq, the simulator.

Each runs against the test database pytest-django created (committed data only, so tests
using these need `transactional_db`) and, where given, a Redis database of its own.
"""

import contextlib
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from contextlib import contextmanager, suppress
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
from django.db import connection

from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
BIN = Path(PYTHON).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_port_run(length: int = 3) -> int:
    """A free port whose next `length - 1` are free too: embedded mode serves WaSender's
    simulator on port + 1 and, with --cloudapi-number (make demo), Meta's on port + 2."""
    for _ in range(100):
        port = free_port()
        with contextlib.ExitStack() as held:
            try:
                for offset in range(1, length):
                    probe = held.enter_context(socket.socket())
                    probe.bind(("127.0.0.1", port + offset))
            except OSError:
                continue
        return port
    raise RuntimeError(f"no {length} consecutive free ports")


def redis_url_for_tests() -> str:
    """The CI Redis, on a database of the tests' own (15 unless CHATDESK_TEST_REDIS_DB says)."""
    parts = urlsplit(os.environ["REDIS_URL"])
    db = os.environ.get("CHATDESK_TEST_REDIS_DB", "15")
    return urlunsplit(parts._replace(path=f"/{db}"))


def database_env_for_tests() -> dict:
    db = connection.settings_dict
    if db["ENGINE"] == "django.db.backends.sqlite3":
        return {"DATABASE_URL": "", "SQLITE_PATH": str(db["NAME"])}
    user = db.get("USER") or ""
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user else ""
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or 5432
    return {"DATABASE_URL": f"postgres://{auth}{host}:{port}/{db['NAME']}"}


def process_env(**extra) -> dict:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTEST_VERSION", "DJANGO_ALLOW_ASYNC_UNSAFE")
    }
    env.update(database_env_for_tests())
    # DEBUG is off by default: processes started by tests run a laptop's settings unless a test
    # asks for production ones (DEBUG="0" with its secrets).
    env.update(
        {"DJANGO_SETTINGS_MODULE": "chatdesk.settings", "PYTHONUNBUFFERED": "1", "DEBUG": "1"}
    )
    env.update({k: str(v) for k, v in extra.items()})
    return env


def exited_check(proc: subprocess.Popen, what: str) -> Callable[[], None]:
    """wait_until's `check`: stop waiting as soon as `proc` has exited."""

    def check() -> None:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")

    return check


def answers(url: str) -> bool:
    """Whether anything answers at `url`, whatever the status."""
    try:
        httpx.get(url, timeout=2.0)
        return True
    except httpx.TransportError:
        return False


def wait_for_http(url: str, timeout: float = 30.0, proc: subprocess.Popen | None = None) -> None:
    """Until `url` answers at all (any status), or `proc` exits."""
    check = exited_check(proc, f"the process serving {url}") if proc is not None else None
    wait_until(
        lambda: answers(url), timeout=timeout, every=0.1, what=f"{url} to answer", check=check
    )


@contextmanager
def running(args: list[str], *, env: dict, ready_url: str | None = None, log: Path | None = None):
    """Start a process, wait until it answers, and always stop it (whole process group)."""
    out = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115
    proc = subprocess.Popen(
        args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        if ready_url:
            wait_for_http(ready_url, proc=proc)
        yield proc
    finally:
        stop(proc)
        if log:
            out.close()


def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, sig)
        proc.wait(timeout=timeout)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def daphne_args(port: int) -> list[str]:
    return [str(BIN / "daphne"), "-b", "127.0.0.1", "-p", str(port), "chatdesk.asgi:application"]


def dramatiq_args(processes: int = 1, threads: int = 4) -> list[str]:
    return [
        str(BIN / "dramatiq"),
        "chatdesk.worker",
        "--processes",
        str(processes),
        "--threads",
        str(threads),
    ]
