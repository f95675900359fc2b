"""Webhook ingest on PostgreSQL, one daphne process, 50 concurrent senders.

Side by side in the same run: chatdesk's real webhook (secret check, raw event committed,
parse, dedupe, customer + conversation + message) and a bare Django view on the same settings
that only inserts one row. The figure is the ratio of their rates. Then an open-loop run at a
fixed 100 webhooks/s for the p99 latency target.

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

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import daphne, free_port, manage, record, require_services, summary_ms

SECRET = "bench-secret"
counter = itertools.count(1)


def webhook_body() -> bytes:
    n = next(counter)
    phone = f"59399{n % 5000:07d}"
    return json.dumps(
        {
            "event": "messages.received",
            "timestamp": int(time.time()),
            "data": {
                "messages": {
                    "key": {
                        "id": f"BENCH{os.getpid()}X{n:012d}",
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
                start = time.perf_counter()
                response = await client.post(url, content=webhook_body(), headers=headers)
                latencies.append(time.perf_counter() - start)
                if response.status_code != 200:
                    errors += 1

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
            start = time.perf_counter()
            response = await client.post(url, content=webhook_body(), headers=headers)
            latencies.append(time.perf_counter() - start)
            errors += response.status_code != 200

        tasks = []
        began = time.monotonic()
        for i in range(int(rate * seconds)):
            await asyncio.sleep(max(0.0, began + i / rate - time.monotonic()))
            tasks.append(asyncio.create_task(one()))
        await asyncio.gather(*tasks)
    return latencies, errors


def row(name: str, rate: str, latency: dict, errors: int) -> str:
    return f"| {name} | {rate} | {latency['p50_ms']} | {latency['p99_ms']} | {errors} |"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--senders", type=int, default=50)
    args = parser.parse_args()
    require_services()
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "bench.settings"}
    manage("migrate", "--noinput", "-v", "0", env=env)
    port = free_port()
    with daphne(port, env=env):
        base = f"http://127.0.0.1:{port}"
        asyncio.run(closed_loop(f"{base}/bench/bare-insert/", senders=10, seconds=2))  # warm-up
        bare_rps, bare_lat, bare_err = asyncio.run(
            closed_loop(f"{base}/bench/bare-insert/", senders=args.senders, seconds=args.seconds)
        )
        real_rps, real_lat, real_err = asyncio.run(
            closed_loop(f"{base}/webhooks/wasender/", senders=args.senders, seconds=args.seconds)
        )
        fixed_lat, fixed_err = asyncio.run(
            open_loop(f"{base}/webhooks/wasender/", rate=100, seconds=args.seconds)
        )
    bare, real, fixed = summary_ms(bare_lat), summary_ms(real_lat), summary_ms(fixed_lat)
    record(
        "Webhook ingest (issue 3)",
        [
            f"One daphne process, PostgreSQL with psycopg pool, {args.senders} concurrent senders, "
            f"{args.seconds:.0f} s per run.",
            "",
            "| run | requests/s | p50 ms | p99 ms | non-200 |",
            "|---|---|---|---|---|",
            row("bare insert view (baseline)", f"{bare_rps:.0f}", bare, bare_err),
            row("chatdesk webhook", f"{real_rps:.0f}", real, real_err),
            row("chatdesk webhook at a fixed 100/s", "100", fixed, fixed_err),
            "",
            f"**Ratio webhook / bare: {real_rps / bare_rps:.0%}** (target at least 70%); "
            f"p99 at 100/s: {fixed['p99_ms']} ms (target under 250 ms).",
        ],
    )


if __name__ == "__main__":
    main()
