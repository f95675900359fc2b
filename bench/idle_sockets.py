"""How many idle agent sockets one daphne process holds (target 1,000), and its memory.

Opens agent sockets on /ws/inbox/ in batches (50 agents, their sessions shared round robin),
keeps them idle past the Redis read timeout, then checks every one still receives a push
(one webhook) and reads the daphne process's RSS (psutil) before and after.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/chatdesk_bench \\
    REDIS_URL=redis://127.0.0.1:6379/0 .venv/bin/python bench/idle_sockets.py [--sockets 1000]
"""

import argparse
import asyncio
import resource
import sys
import time
from pathlib import Path

import httpx
import psutil
import websockets

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import daphne, free_port, manage, record
from bench.webhook_to_browser import SECRET, agent_cookies, bench_env, webhook_body


def fd_limit_raise(wanted: int) -> int:
    """Both this client and daphne (which inherits it) need a descriptor per socket."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, wanted)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def rss_mb(pid: int) -> float:
    return psutil.Process(pid).memory_info().rss / 1024 / 1024


async def hold(port: int, cookies: list[str], count: int, idle: float, pid: int) -> dict:
    host = f"127.0.0.1:{port}"
    before = rss_mb(pid)
    sockets, failures = [], 0
    began = time.monotonic()
    for start in range(0, count, 50):
        batch = [cookies[i % len(cookies)] for i in range(start, min(start + 50, count))]
        results = await asyncio.gather(
            *(
                websockets.connect(
                    f"ws://{host}/ws/inbox/",
                    origin=f"http://{host}",
                    additional_headers={"Cookie": c},
                    ping_interval=None,
                    max_size=None,
                )
                for c in batch
            ),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, Exception):
                failures += 1
            else:
                sockets.append(result)
    connect_seconds = time.monotonic() - began
    await asyncio.sleep(idle)
    after = rss_mb(pid)
    marker = f"idle{int(time.time())}z"
    received = 0

    async def wait_for_it(ws):
        nonlocal received
        try:
            async with asyncio.timeout(60):
                while marker not in await ws.recv():
                    pass
            received += 1
        except (TimeoutError, websockets.ConnectionClosed):
            pass

    waiters = [asyncio.create_task(wait_for_it(ws)) for ws in sockets]
    async with httpx.AsyncClient(timeout=30) as client:
        response = await client.post(
            f"http://{host}/webhooks/wasender/",
            content=webhook_body(marker),
            headers={"X-Webhook-Signature": SECRET, "Content-Type": "application/json"},
        )
    await asyncio.gather(*waiters)
    await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
    return {
        "open": len(sockets),
        "failed": failures,
        "received": received,
        "webhook": response.status_code,
        "rss_before": before,
        "rss_after": after,
        "connect_seconds": connect_seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sockets", type=int, default=1000)
    parser.add_argument("--idle", type=float, default=10.0)
    args = parser.parse_args()
    limit = fd_limit_raise(args.sockets * 2 + 200)
    env = bench_env("core")
    manage("migrate", "--noinput", "-v", "0", env=env)
    cookies = agent_cookies(50)
    port = free_port()
    with daphne(port, env=env) as proc:
        result = asyncio.run(hold(port, cookies, args.sockets, args.idle, proc.pid))
    per_socket_kb = (result["rss_after"] - result["rss_before"]) * 1024 / max(result["open"], 1)
    ok = "ok" if result["received"] >= 1000 else "MISSED"
    record(
        "Idle agent sockets on one daphne (issue 4)",
        [
            f"Asked for {args.sockets} agent sockets on /ws/inbox/ (50 agents' sessions, core "
            f"Redis layer, PostgreSQL), fd limit {limit}; idle {args.idle:.0f} s, then one "
            "webhook.",
            "",
            "| open | failed to open | received the push after idling | daphne RSS before MB "
            "| RSS with sockets MB | per socket KB | connect time s |",
            "|---|---|---|---|---|---|---|",
            f"| {result['open']} | {result['failed']} | {result['received']} "
            f"| {result['rss_before']:.0f} | {result['rss_after']:.0f} | {per_socket_kb:.0f} "
            f"| {result['connect_seconds']:.1f} |",
            "",
            f"Target: 1,000 live sockets on one process: {ok}.",
        ],
    )


if __name__ == "__main__":
    main()
