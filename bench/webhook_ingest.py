"""Webhook ingest on PostgreSQL, one daphne process, 50 concurrent senders.

Side by side in the same run: chatdesk's real webhook (secret check, raw event committed; a
lone webhook is applied in its request, one that arrives during a burst is applied by a
worker) and a bare Django view on the same settings that only inserts one row. The figure is
the ratio of their rates. Then open-loop runs at a fixed 100 webhooks/s (bare, chatdesk) for the
p99 latency target. The web process is measured alone (on two cores a worker beside it takes
the CPU being measured); after each chatdesk run a real Dramatiq worker process applies what it
stored, timed, and every acknowledged webhook must have become exactly one message. Last, the
fixed rate again with the worker applying at the same time, on the same cores, for context.

    DATABASE_URL=postgres://... .venv/bin/python bench/webhook_ingest.py [--seconds 20]
"""

import argparse
import asyncio
import itertools
import json
import os
import sys
import time
from pathlib import Path

import httpx
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import (
    daphne,
    drain,
    free_port,
    last_event_id,
    manage,
    record,
    require_services,
    summary_ms,
    worker,
)

SECRET = "bench-secret"
RUN = f"{os.getpid()}T{int(time.time())}"
counter = itertools.count(1)
acked: set[str] = set()  # the WhatsApp ids of this run's webhooks that got a 200


def webhook_body() -> tuple[str, bytes]:
    n = next(counter)
    phone = f"59399{n % 5000:07d}"
    wa_id = f"BENCH{RUN}X{n:09d}"
    return wa_id, json.dumps(
        {
            "event": "messages.received",
            "timestamp": int(time.time()),
            "data": {
                "messages": {
                    "key": {
                        "id": wa_id,
                        "fromMe": False,
                        "remoteJid": f"{phone}@s.whatsapp.net",
                        "cleanedSenderPn": phone,
                    },
                    "pushName": f"Cliente {n % 5000}",
                    "messageTimestamp": int(time.time()),
                    "messageBody": "Hola, quiero renovar mi Netflix",
                }
            },
        }
    ).encode()


async def closed_loop(url: str, *, senders: int, seconds: float) -> tuple[float, list[float], int]:
    latencies: list[float] = []
    errors = 0
    deadline = time.monotonic() + seconds
    headers = {"X-Webhook-Signature": SECRET, "Content-Type": "application/json"}
    limits = httpx.Limits(max_connections=senders, max_keepalive_connections=senders)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:

        async def sender():
            nonlocal errors
            while time.monotonic() < deadline:
                wa_id, body = webhook_body()
                start = time.perf_counter()
                response = await client.post(url, content=body, headers=headers)
                latencies.append(time.perf_counter() - start)
                if response.status_code != 200:
                    errors += 1
                else:
                    acked.add(wa_id)

        began = time.monotonic()
        await asyncio.gather(*(sender() for _ in range(senders)))
        elapsed = time.monotonic() - began
    return len(latencies) / elapsed, latencies, errors


async def open_loop(url: str, *, rate: float, seconds: float) -> tuple[list[float], int]:
    latencies: list[float] = []
    errors = 0
    headers = {"X-Webhook-Signature": SECRET, "Content-Type": "application/json"}
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=200), timeout=30) as client:

        async def one():
            nonlocal errors
            wa_id, body = webhook_body()
            start = time.perf_counter()
            response = await client.post(url, content=body, headers=headers)
            latencies.append(time.perf_counter() - start)
            errors += response.status_code != 200
            if response.status_code == 200:
                acked.add(wa_id)

        tasks = []
        began = time.monotonic()
        for i in range(int(rate * seconds)):
            await asyncio.sleep(max(0.0, began + i / rate - time.monotonic()))
            tasks.append(asyncio.create_task(one()))
        await asyncio.gather(*tasks)
    return latencies, errors


def row(name: str, rate: str, latency: dict, errors: int, applied: str = "") -> str:
    return f"| {name} | {rate} | {latency['p50_ms']} | {latency['p99_ms']} | {errors} | {applied} |"


def applied(database_url: str, after_id: int, *, sent: int) -> str:
    """Wait for the worker, then: how long it took, and whether every acknowledged webhook is
    one message (none lost, none twice)."""
    seconds, states = drain(database_url, after_id=after_id)
    with psycopg.connect(database_url) as conn:
        rows = dict(
            conn.execute(
                "SELECT wa_id, count(*) FROM inbox_message WHERE wa_id LIKE %s GROUP BY wa_id",
                (f"BENCH{RUN}X%",),
            ).fetchall()
        )
    lost = len(acked - set(rows))
    twice = sum(1 for n in rows.values() if n > 1)
    waiting = states.get("pending", 0) + states.get("failed", 0)
    return (
        f"{sent} applied {seconds:.1f} s after the run; {lost} lost, {twice} twice, "
        f"{waiting} not applied"
    )


def chatdesk_run(database_url: str, env: dict, load) -> tuple:
    """The load against the web process alone, then a worker applies what it stored."""
    acked.clear()
    first = last_event_id(database_url)
    result = asyncio.run(load)
    with worker(env=env):
        return (*result, applied(database_url, first, sent=len(acked)))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--senders", type=int, default=50)
    args = parser.parse_args()
    database_url, _ = require_services()
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "bench.settings"}
    manage("migrate", "--noinput", "-v", "0", env=env)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with daphne(port, env=env):
        asyncio.run(closed_loop(f"{base}/bench/bare-insert/", senders=10, seconds=2))  # warm-up
        bare_rps, bare_lat, bare_err = asyncio.run(
            closed_loop(f"{base}/bench/bare-insert/", senders=args.senders, seconds=args.seconds)
        )
        real_rps, real_lat, real_err, real_applied = chatdesk_run(
            database_url,
            env,
            closed_loop(f"{base}/webhooks/wasender/", senders=args.senders, seconds=args.seconds),
        )
        bare_fixed_lat, bare_fixed_err = asyncio.run(
            open_loop(f"{base}/bench/bare-insert/", rate=100, seconds=args.seconds)
        )
        fixed_lat, fixed_err, fixed_applied = chatdesk_run(
            database_url,
            env,
            open_loop(f"{base}/webhooks/wasender/", rate=100, seconds=args.seconds),
        )
        with worker(env=env):
            acked.clear()
            first = last_event_id(database_url)
            busy_lat, busy_err = asyncio.run(
                open_loop(f"{base}/webhooks/wasender/", rate=100, seconds=args.seconds)
            )
            busy_applied = applied(database_url, first, sent=len(acked))
    bare, real, fixed = summary_ms(bare_lat), summary_ms(real_lat), summary_ms(fixed_lat)
    bare_fixed, busy = summary_ms(bare_fixed_lat), summary_ms(busy_lat)
    record(
        "Webhook ingest (issue 3)",
        [
            f"One daphne process, PostgreSQL with psycopg pool, {args.senders} concurrent "
            f"senders (httpx, same machine), {args.seconds:.0f} s per run; then one Dramatiq "
            "worker process (4 threads) applies what the web process stored raw.",
            "",
            "| run | requests/s | p50 ms | p99 ms | non-200 | applied |",
            "|---|---|---|---|---|---|",
            row("bare insert view (baseline)", f"{bare_rps:.0f}", bare, bare_err),
            row("chatdesk webhook", f"{real_rps:.0f}", real, real_err, real_applied),
            row("bare insert view at a fixed 100/s", "100", bare_fixed, bare_fixed_err),
            row("chatdesk webhook at a fixed 100/s", "100", fixed, fixed_err, fixed_applied),
            row(
                "chatdesk webhook at a fixed 100/s, the worker applying on the same cores",
                "100",
                busy,
                busy_err,
                busy_applied,
            ),
            "",
            f"**Ratio webhook / bare: {real_rps / bare_rps:.0%}** (target at least 70%); "
            f"p99 at 100/s: {fixed['p99_ms']} ms (target under 250 ms).",
        ],
    )


if __name__ == "__main__":
    main()
