"""Shared pieces of the benchmarks: starting real servers, timing, machine description."""

import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psycopg

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
RESULTS = ROOT / "bench" / "RESULTS.md"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def require_services() -> tuple[str, str]:
    db, redis = os.environ.get("DATABASE_URL", ""), os.environ.get("REDIS_URL", "")
    if not db.startswith("postgres"):
        sys.exit("The benchmarks run on PostgreSQL: set DATABASE_URL (and REDIS_URL).")
    return db, redis


def manage(*args: str, env: dict | None = None) -> None:
    subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, check=True, env=env or os.environ.copy()
    )


SERVER_ENV = {
    "DJANGO_SETTINGS_MODULE": "bench.settings",
    "DEBUG": "0",
    "SECRET_KEY": "bench" * 10,
    "ALLOWED_HOSTS": "127.0.0.1,localhost",
    "WASENDER_WEBHOOK_SECRET": "bench-secret",
    "SECURE_SSL_REDIRECT": "0",
    "SECURE_COOKIES": "0",
    "SECURE_HSTS_SECONDS": "0",
}


@contextmanager
def _process(args: list[str], *, env: dict):
    proc = subprocess.Popen(
        args,
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        yield proc
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@contextmanager
def daphne(
    port: int,
    *,
    env: dict,
    settings: str = "bench.settings",
    app: str = "chatdesk.asgi:application",
):
    env = {**env, **SERVER_ENV, "DJANGO_SETTINGS_MODULE": settings}
    with _process([str(BIN / "daphne"), "-b", "127.0.0.1", "-p", str(port), app], env=env) as p:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        yield p


@contextmanager
def worker(*, env: dict, processes: int = 1, threads: int = 4):
    """A real Dramatiq worker: it applies the webhooks a busy web process stored raw."""
    env = {**env, **SERVER_ENV}
    args = [
        str(BIN / "dramatiq"),
        "chatdesk.worker",
        "--processes",
        str(processes),
        "--threads",
        str(threads),
    ]
    with _process(args, env=env) as p:
        yield p


def last_event_id(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        return conn.execute("SELECT coalesce(max(id), 0) FROM inbox_webhookevent").fetchone()[0]


def drain(database_url: str, *, after_id: int, timeout: float = 600) -> tuple[float, dict]:
    """Wait until every webhook event stored after `after_id` is applied (none pending or
    failed); answers the seconds it took and the events by state."""
    began = time.monotonic()
    query = "SELECT state, count(*) FROM inbox_webhookevent WHERE id > %s GROUP BY state"
    with psycopg.connect(database_url, autocommit=True) as conn:
        while True:
            states = dict(conn.execute(query, (after_id,)).fetchall())
            waiting = states.get("pending", 0) + states.get("failed", 0)
            if not waiting or time.monotonic() - began > timeout:
                return time.monotonic() - began, states
            time.sleep(0.2)


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def summary_ms(latencies: list[float]) -> dict:
    return {
        "n": len(latencies),
        "p50_ms": round(percentile(latencies, 50) * 1000, 1),
        "p99_ms": round(percentile(latencies, 99) * 1000, 1),
        "mean_ms": round(statistics.fmean(latencies) * 1000, 1) if latencies else None,
    }


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores, {cpu}, Python {platform.python_version()}"


def record(title: str, lines: list[str]) -> None:
    """Append a dated section to bench/RESULTS.md and print it."""
    # UTC: a script that set Django up runs on Guayaquil time, one that did not on the machine's.
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    text = f"\n## {title} ({stamp})\n\nMachine: {machine()}\n\n" + "\n".join(lines) + "\n"
    print(text)
    with RESULTS.open("a") as f:
        f.write(text)
