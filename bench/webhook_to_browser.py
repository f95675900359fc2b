"""Webhook-to-browser latency: from just before the webhook POST to the moment a WebSocket
client logged in as an agent receives the frame holding that message. One daphne process on
PostgreSQL and channels-redis, with 1 and with 50 agents connected; for 50 the figure is the
time to the last (50th) agent. Side by side in the same run, message by message in turn: a
bare Channels app on the same settings that only group_sends the body of a POST
(bench/bare_channels.py), the floor (a view that inserts one row, then group_sends:
bench/urls.py) and chatdesk; interleaved, so that a machine shared with other work slows all
three alike and the ratios hold. Both Redis layers. Messages go one at a time, at most
MAX_RATE a second (faster is a flood to chatdesk).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/chatdesk_bench \\
    REDIS_URL=redis://127.0.0.1:6379/0 .venv/bin/python bench/webhook_to_browser.py \
    [--messages 1000]

Redis: the layers use database CHATDESK_BENCH_REDIS_DB (13 unless set) of REDIS_URL's server,
so no chatdesk running on that server hears the benchmark, nor the benchmark it.
"""

import argparse
import asyncio
import itertools
import json
import os
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import websockets

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import (
    SERVER_ENV,
    daphne,
    free_port,
    manage,
    record,
    require_services,
    summary_ms,
)

SECRET = "bench-secret"
MAX_RATE = 40  # messages a second, below inbox.events.FLOOD_PER_SECOND
TARGET = 1.5  # chatdesk / floor (issue 19)
counter = itertools.count(1)
STATE: dict = {}  # the message in flight: its marker, the sockets still waiting, when answered


def bench_env(layer: str = "core") -> dict:
    _, redis_url = require_services()
    if not redis_url:
        sys.exit("Set REDIS_URL: the benchmark compares the channels-redis layers.")
    db = os.environ.get("CHATDESK_BENCH_REDIS_DB", "13")
    redis_url = urlunsplit(urlsplit(redis_url)._replace(path=f"/{db}"))
    return {
        **os.environ,
        **SERVER_ENV,
        "REDIS_URL": redis_url,
        "CHANNEL_LAYER": layer,
        "DRAMATIQ_BROKER": "stub",
    }


def agent_cookies(count: int) -> list[str]:
    """`count` agents, each with a session of their own (made in this process, same DB)."""
    os.environ.update(SERVER_ENV)
    os.environ["REDIS_URL"] = bench_env()["REDIS_URL"]
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth.models import Group, User
    from django.test import Client

    group = Group.objects.get_or_create(name="agent")[0]
    cookies = []
    for n in range(count):
        user = User.objects.get_or_create(username=f"bench-agent-{n}")[0]
        user.groups.add(group)
        client = Client()
        client.force_login(user)
        cookies.append(
            f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
        )
    return cookies


def webhook_body(marker: str) -> bytes:
    n = next(counter)
    phone = f"59399{n % 50:07d}"
    return json.dumps(
        {
            "event": "messages.received",
            "timestamp": int(time.time()),
            "data": {
                "messages": {
                    "key": {
                        "id": f"LIVE{os.getpid()}X{n:012d}{marker[-6:]}",
                        "fromMe": False,
                        "remoteJid": f"{phone}@s.whatsapp.net",
                        "cleanedSenderPn": phone,
                    },
                    "pushName": f"Cliente {n % 50}",
                    "messageTimestamp": int(time.time()),
                    "messageBody": f"Hola {marker}",
                }
            },
        }
    ).encode()


async def sockets_open(url: str, cookies: list[str], origin: str) -> list:
    async def one(cookie):
        headers = {"Cookie": cookie} if cookie else {}
        ws = await websockets.connect(
            url, origin=origin, additional_headers=headers, max_size=None, ping_interval=None
        )
        return ws

    sockets = []
    for i in range(0, len(cookies), 25):
        sockets += await asyncio.gather(*(one(c) for c in cookies[i : i + 25]))
    return sockets


async def measure(targets: list[tuple], *, messages: int, warmup: int = 20) -> list[tuple]:
    """targets: [(post, sockets)]. One message at a time, to each target in turn, so that
    every target meets the same moments of a shared, noisy machine; a message's latency is
    until the last of its target's sockets has it. Answers [(latencies, answers)] by target."""
    state = STATE
    state.update(marker=None, left=set(), done=asyncio.Event(), answered=0.0)

    async def reader(key, ws):
        async for frame in ws:
            marker = state["marker"]
            if marker and key in state["left"] and marker in frame:
                state["left"].discard(key)
                if not state["left"]:
                    state["done"].set()

    lists = {id(sockets): sockets for _, sockets in targets}  # bare and floor share theirs
    readers = [
        asyncio.create_task(reader((key, i), ws))
        for key, sockets in lists.items()
        for i, ws in enumerate(sockets)
    ]
    results = [([], []) for _ in targets]
    try:
        start = 0.0
        for n in range(warmup + messages):
            for t, (post, sockets) in enumerate(targets):
                marker = f"m{os.getpid()}x{n:06d}t{t}q"
                left = {(id(sockets), i) for i in range(len(sockets))}
                state.update(marker=marker, left=left, done=asyncio.Event())
                # Never faster than MAX_RATE: past 60 list updates a second chatdesk stops
                # sending list rows (a flood: the lists re-fetch instead).
                await asyncio.sleep(max(0.0, start + 1 / MAX_RATE - time.perf_counter()))
                start = time.perf_counter()
                response = asyncio.create_task(post(marker))
                await asyncio.wait_for(state["done"].wait(), timeout=30)
                took = time.perf_counter() - start
                assert (await response).status_code == 200
                if n >= warmup:
                    results[t][0].append(took)
                    results[t][1].append(state["answered"] - start)
    finally:
        for task in readers:
            task.cancel()
        sockets = [ws for socket_list in lists.values() for ws in socket_list]
        await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
    return results


async def run(chatdesk_port: int, bare_port: int, cookies: list[str], messages: int) -> list:
    """Bare, floor and chatdesk, interleaved: [(latencies, answers)] for each."""
    chatdesk, bare = f"127.0.0.1:{chatdesk_port}", f"127.0.0.1:{bare_port}"
    chat_sockets = await sockets_open(f"ws://{chatdesk}/ws/inbox/", cookies, f"http://{chatdesk}")
    for ws in chat_sockets:
        await ws.send(json.dumps({"type": "watch", "conversation": None, "view": "all", "q": ""}))
    bare_sockets = await sockets_open(f"ws://{bare}/ws/", [""] * len(cookies), f"http://{bare}")
    await asyncio.sleep(0.5)
    headers = {"X-Webhook-Signature": SECRET, "Content-Type": "application/json"}
    async with httpx.AsyncClient(timeout=30) as client:

        def poster(url, body, **kwargs):
            async def post(marker):
                response = await client.post(url, content=body(marker), **kwargs)
                STATE["answered"] = time.perf_counter()
                return response

            return post

        def bare_body(marker):
            return f"Hola {marker}"

        targets = [
            (poster(f"http://{bare}/publish", bare_body), bare_sockets),
            (poster(f"http://{bare}/bench/insert-publish/", bare_body), bare_sockets),
            (
                poster(f"http://{chatdesk}/webhooks/wasender/", webhook_body, headers=headers),
                chat_sockets,
            ),
        ]
        return await measure(targets, messages=messages)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--layers", default="core,pubsub")
    parser.add_argument("--agents", default="1,50")
    args = parser.parse_args()
    agent_counts = [int(a) for a in args.agents.split(",")]
    env = bench_env()
    manage("migrate", "--noinput", "-v", "0", env=env)
    cookies = agent_cookies(max(agent_counts))
    rows = []
    for layer in args.layers.split(","):
        env = bench_env(layer)
        chatdesk_port, bare_port = free_port(), free_port()
        with ExitStack() as stack:
            stack.enter_context(daphne(chatdesk_port, env=env))
            stack.enter_context(daphne(bare_port, env=env, app="bench.bare_channels:application"))
            for agents in agent_counts:
                (bare_lat, _), (floor_lat, floor_answer), (real_lat, real_answer) = asyncio.run(
                    run(chatdesk_port, bare_port, cookies[:agents], args.messages)
                )
                figures = tuple(
                    map(summary_ms, (bare_lat, floor_lat, real_lat, floor_answer, real_answer))
                )
                rows.append((layer, agents, *figures))
                print(
                    layer,
                    agents,
                    *zip(
                        ("bare", "floor", "chatdesk", "floor answer", "answer"),
                        figures,
                        strict=True,
                    ),
                    flush=True,
                )
    lines = [
        f"One daphne process per app, PostgreSQL, channels-redis; {args.messages} messages to "
        f"each of bare, floor and chatdesk, one at a time and in turn (bare, floor, chatdesk, "
        f"bare...: all three meet the same moments of a shared machine), at most {MAX_RATE} "
        "a second, after 20 warm-up ones; latency from just "
        "before the POST until the last "
        "connected agent has the frame. Bare = a Channels app on the same settings that only "
        "group_sends the POST body (bench/bare_channels.py). Floor = the least a push that "
        "persists first can do: a Django view on the same settings that inserts one row and "
        "then group_sends (same app). Answered = the POST's own answer, chatdesk's webhook "
        "against the floor view's.",
        "",
        "| layer | agents | bare p50 / p99 ms | floor p50 / p99 ms | chatdesk p50 / p99 ms "
        "| chatdesk / floor p50, p99 | answered: floor / chatdesk p50 ms, ratio p50, p99 |",
        "|---|---|---|---|---|---|---|",
    ]
    for layer, agents, bare, floor, real, floor_answer, answer in rows:
        f50, f99 = real["p50_ms"] / floor["p50_ms"], real["p99_ms"] / floor["p99_ms"]
        a50 = answer["p50_ms"] / floor_answer["p50_ms"]
        a99 = answer["p99_ms"] / floor_answer["p99_ms"]
        ok = "ok" if max(f50, f99) <= TARGET else "MISSED"
        answer_ok = "ok" if max(a50, a99) <= TARGET else "MISSED"
        lines.append(
            f"| {layer} | {agents} | {bare['p50_ms']} / {bare['p99_ms']} "
            f"| {floor['p50_ms']} / {floor['p99_ms']} | {real['p50_ms']} / {real['p99_ms']} "
            f"| {f50:.2f}x, {f99:.2f}x {ok} | {floor_answer['p50_ms']} / {answer['p50_ms']}, "
            f"{a50:.2f}x, {a99:.2f}x {answer_ok} |"
        )
    lines += [
        "",
        f"Target (issue 19): chatdesk within {TARGET}x of the floor at p50 and p99, 1 and 50 "
        f"agents, both layers; the webhook answered within {TARGET}x of the floor view's answer.",
    ]
    record("Webhook to browser (issue 4)", lines)


if __name__ == "__main__":
    main()
