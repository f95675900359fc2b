"""Webhook load on one daphne process (PostgreSQL + channels-redis) with agent sockets open.

1. A step search, on the same process in the same run, the steps taken in turn: the floor, a
   bare view that inserts one row from the pooled connection (bench/urls.py), and chatdesk's
   webhook (a shared machine slows both alike). Each rate doubles until p99 ack reaches
   250 ms (or a webhook is refused), then the gap between the last rate that held and the
   first that failed is halved down to --search-step. The figure is chatdesk's highest rate
   as a share of the floor's. CHANNEL_LAYER=pubsub measures the other Redis layer.
2. A steady run at chatdesk's highest rate (or --rate) for 60 s with 50 agent sockets on
   /ws/inbox/ and one Dramatiq worker process applying what daphne stores raw during bursts:
   every acknowledged webhook must be stored once (lost and duplicated are counted against
   the database once the worker has applied everything), whether the worker kept up (it has
   applied everything within DRAIN_SLACK of the last answer), ack latency p50/p99, and push
   latency: from the POST to the frame announcing that message on each socket.

The agents' sockets stand in for browsers on other machines: they read their frames in a
process of their own, at a lower priority (Agents), not in the load generator's loop, where
reading them delayed the timing of chatdesk's answers and not the bare view's. On a saturated
machine the push latency then includes the time that process waits for a core.

    DATABASE_URL=postgres://... REDIS_URL=redis://... .venv/bin/python bench/load_webhooks.py \\
        [--rate 200] [--seconds 60] [--sockets 50] [--step-seconds 10] [--no-search]
"""

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psycopg
from websockets.asyncio.client import connect

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import (
    ROOT,
    daphne,
    drain,
    free_port,
    last_event_id,
    manage,
    percentile,
    record,
    require_services,
    summary_ms,
    worker,
)

SECRET = "bench-secret"
P99_TARGET_MS = 250
RATIO_TARGET = 0.7  # chatdesk's sustained rate / the bare insert view's (issue 19)
# The worker keeps up when it has applied everything this soon after the last answer.
DRAIN_SLACK = 2.0
SESSION_CODE = """
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.auth.models import Group, User
from django.contrib.sessions.backends.db import SessionStore
user, _ = User.objects.get_or_create(username="bench-agent", defaults={"first_name": "Bench"})
user.groups.add(Group.objects.get_or_create(name="agent")[0])
session = SessionStore()
session[SESSION_KEY] = str(user.pk)
session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
session[HASH_SESSION_KEY] = user.get_session_auth_hash()
session.create()
print("SESSION", session.session_key)
"""
TOKEN = re.compile(r"(load-\d+-\d+)")


def agent_session(env: dict) -> str:
    # Signed with the SECRET_KEY bench.common.daphne gives the server, or it is not a login.
    env = {**env, "SECRET_KEY": "bench" * 10}
    out = subprocess.run(
        [sys.executable, "manage.py", "shell", "--no-imports", "-c", SESSION_CODE],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return re.search(r"SESSION (\w+)", out)[1]


def webhook_body(run: str, n: int) -> bytes:
    phone = f"59399{n % 5000:07d}"
    return json.dumps(
        {
            "event": "messages.received",
            "timestamp": int(time.time()),
            "data": {
                "messages": {
                    "key": {
                        "id": f"LOAD{run}X{n:09d}",
                        "fromMe": False,
                        "remoteJid": f"{phone}@s.whatsapp.net",
                        "cleanedSenderPn": phone,
                    },
                    "pushName": f"Cliente {n % 5000}",
                    "messageTimestamp": int(time.time()),
                    "messageBody": f"Hola load-{run}-{n}",
                }
            },
        }
    ).encode()


class Sockets:
    """Agent sockets that note when each message's frame reached them."""

    def __init__(self):
        self.seen: dict[str, list[float]] = {}
        self.stale = 0  # "re-fetch your list" notices (a flood coalesces the list's frames)
        self.resync = 0  # "you missed events, re-fetch list and thread" (a socket fell behind)
        self.frames = 0  # websocket frames received (all sockets)
        self.tasks: list[asyncio.Task] = []
        self.connections = []

    async def open(self, base: str, session: str, count: int) -> None:
        url = base.replace("http://", "ws://") + "/ws/inbox/"
        for _ in range(count):
            socket = await connect(
                url,
                additional_headers={"Cookie": f"sessionid={session}"},
                origin=base,
                max_size=None,
                open_timeout=30,
            )
            self.connections.append(socket)
            self.tasks.append(asyncio.create_task(self._read(socket)))

    async def _read(self, socket) -> None:
        async for frame in socket:
            now = time.perf_counter()
            self.frames += 1
            # A socket behind in a burst gets the events waiting for it in one frame: each
            # message's token once (its row and its notification both carry it).
            if 'id="notify"' in frame:
                for token in set(TOKEN.findall(frame)):
                    self.seen.setdefault(token, []).append(now)
            self.stale += frame.count('id="list-stale"')
            self.resync += frame.count('id="live-resync"')

    async def close(self) -> None:
        for socket in self.connections:
            await socket.close()
        for task in self.tasks:
            task.cancel()


def _agents_main(conn, base: str, session: str, count: int) -> None:
    """The agents' browsers: their sockets in a process of their own, at a lower priority.
    In production they are on other machines; here they share two cores with the server, and
    reading their frames in the load generator's own loop delayed its timing of the webhooks'
    answers (only chatdesk's steps have frames to read). Commands on `conn`: "reset" (count
    frames from now), "stop" (close, and send back what was seen)."""
    os.nice(10)

    async def run():
        sockets = Sockets()
        await sockets.open(base, session, count)
        conn.send("open")
        loop, command = asyncio.get_running_loop(), asyncio.Queue()

        def readable():
            try:
                command.put_nowait(conn.recv())
            except EOFError:  # the load generator is gone
                loop.remove_reader(conn.fileno())
                command.put_nowait("stop")

        loop.add_reader(conn.fileno(), readable)
        while (what := await command.get()) != "stop":
            if what == "reset":
                sockets.frames = 0
            conn.send(what)
        loop.remove_reader(conn.fileno())
        await sockets.close()
        with contextlib.suppress(OSError):
            conn.send((sockets.seen, sockets.stale, sockets.resync, sockets.frames))

    asyncio.run(run())


class Agents:
    """Sockets (above) in a process of their own; their figures once stopped. If that process
    dies, the next question to it raises instead of waiting forever."""

    def __init__(self, base: str, session: str, count: int):
        self.conn, self.child = multiprocessing.Pipe()
        self.process = multiprocessing.get_context("spawn").Process(
            target=_agents_main, args=(self.child, base, session, count), daemon=True
        )
        self.seen, self.stale, self.resync, self.frames = {}, 0, 0, 0

    def _answer(self):
        while not self.conn.poll(0.5):
            if not self.process.is_alive():
                raise RuntimeError("the agents' process died")
        return self.conn.recv()

    async def _ask(self, what=None):
        if what is not None:
            self.conn.send(what)
        return await asyncio.to_thread(self._answer)

    async def open(self) -> None:
        self.process.start()
        self.child.close()  # the child's end lives in the child now
        assert await self._ask() == "open"

    async def reset(self) -> None:
        await self._ask("reset")

    async def close(self) -> None:
        try:
            if self.process.is_alive():
                self.seen, self.stale, self.resync, self.frames = await self._ask("stop")
        finally:
            self.process.join(10)
            if self.process.is_alive():
                self.process.terminate()


async def open_loop(client, url: str, *, run: str, start: int, rate: float, seconds: float):
    """POST at a fixed rate; answers (n, status, sent_at, latency)."""
    headers = {"X-Webhook-Signature": SECRET, "Content-Type": "application/json"}
    results = []

    async def one(n: int):
        began = time.perf_counter()
        try:
            response = await client.post(url, content=webhook_body(run, n), headers=headers)
            code = response.status_code
        except httpx.HTTPError:
            code = 0
        results.append((n, code, began, time.perf_counter() - began))

    tasks = []
    t0 = time.monotonic()
    for i in range(int(rate * seconds)):
        await asyncio.sleep(max(0.0, t0 + i / rate - time.monotonic()))
        tasks.append(asyncio.create_task(one(start + i)))
    await asyncio.gather(*tasks)
    return results


def cpu_seconds(pid: int) -> float:
    """A process's CPU time so far (user + system), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stored(database_url: str, run: str) -> tuple[dict[str, int], int]:
    with psycopg.connect(database_url) as conn:
        messages = dict(
            conn.execute(
                "SELECT wa_id, count(*) FROM inbox_message WHERE wa_id LIKE %s GROUP BY wa_id",
                (f"LOAD{run}X%",),
            ).fetchall()
        )
        events = conn.execute(
            "SELECT count(*) FROM inbox_webhookevent WHERE payload #>> '{data,messages,key,id}' "
            "LIKE %s",
            (f"LOAD{run}X%",),
        ).fetchone()[0]
    return messages, events


def push_latencies(results, sockets: Agents, run: str, count: int) -> tuple[list[float], int]:
    latencies, missing = [], 0
    for n, code, began, _ in results:
        times = sockets.seen.get(f"load-{run}-{n}", [])
        if code == 200:
            latencies += [t - began for t in times]
            missing += count - len(times)
    return latencies, missing


async def step(client, url: str, *, run: str, start: int, rate: int, seconds: float):
    """One step of the search: (p99 ack ms, refused)."""
    results = await open_loop(client, url, run=run, start=start, rate=rate, seconds=seconds)
    p99 = percentile([r[3] for r in results], 99) * 1000
    return p99, sum(1 for r in results if r[1] != 200)


class Search:
    """Double the rate until a step fails (p99 ack over target, or a refusal), then halve the
    gap between the last rate that held and the first that failed, down to `resolution`."""

    def __init__(self, url: str, *, first: int, top: int, resolution: int, start: int):
        self.url, self.top, self.resolution, self.start = url, top, resolution, start
        self.steps, self.held, self.failed, self.rate = [], 0, None, first

    @property
    def done(self) -> bool:
        return not self.rate or self.rate > self.top

    def record(self, p99: float, refused: int) -> None:
        self.steps.append((self.rate, p99, refused))
        self.start += 1_000_000
        if p99 < P99_TARGET_MS and not refused:
            self.held = max(self.held, self.rate)
        else:
            self.failed = self.rate if self.failed is None else min(self.failed, self.rate)
        if self.failed is None:
            self.rate *= 2
            return
        gap = self.failed - self.held
        half = gap // 2 // self.resolution * self.resolution
        self.rate = self.held + half if gap > self.resolution and half else 0


async def search(client, urls: list[str], args, *, run: str, settle) -> list[list[tuple]]:
    """One search per URL, their steps taken in turn (floor, chatdesk, floor...) so that both
    meet the same moments of a shared machine. Between steps, `settle` waits until the worker
    has applied everything."""
    searches = [
        Search(
            url,
            first=args.search_from,
            top=args.search_to,
            resolution=args.search_step,
            start=10_000_000 * (i + 1),
        )
        for i, url in enumerate(urls)
    ]
    while not all(one.done for one in searches):
        for one in searches:
            if one.done:
                continue
            p99, refused = await step(
                client, one.url, run=run, start=one.start, rate=one.rate, seconds=args.step_seconds
            )
            print(
                f"  {one.url.rsplit('/', 2)[-2]} {one.rate}/s: p99 ack {p99:.0f} ms, "
                f"{refused} refused",
                flush=True,
            )
            one.record(p99, refused)
            await settle()
            await asyncio.sleep(2)
    return [one.steps for one in searches]


def sustained(steps) -> int | None:
    return max((r for r, p99, bad in steps if p99 < P99_TARGET_MS and not bad), default=None)


async def measure(base, session, args, run, database_url, first, server_pid):
    sockets = Agents(base, session, args.sockets)
    await sockets.open()
    try:
        return await _measure(sockets, base, args, run, database_url, first, server_pid)
    finally:
        await sockets.close()


async def _measure(sockets, base, args, run, database_url, first, server_pid):
    url = f"{base}/webhooks/wasender/"
    limits = httpx.Limits(max_connections=400, max_keepalive_connections=400)

    async def settle():
        await asyncio.to_thread(drain, database_url, after_id=first)

    async with httpx.AsyncClient(limits=limits, timeout=60) as client:
        await open_loop(client, url, run=run, start=0, rate=20, seconds=1)  # warm-up
        await open_loop(client, f"{base}/bench/bare-insert/", run=run, start=0, rate=20, seconds=1)
        await settle()  # the worker is up: it has applied the warm-up's deferred webhooks
        floor_steps, steps = [], []
        if not args.no_search:
            floor_steps, steps = await search(
                client, [f"{base}/bench/bare-insert/", url], args, run=run, settle=settle
            )
        rate = args.rate or sustained(steps) or args.search_from
        await sockets.reset()
        cpu_before = cpu_seconds(server_pid)
        began = time.perf_counter()
        main = await open_loop(client, url, run=run, start=100_000, rate=rate, seconds=args.seconds)
        answered = time.perf_counter() - began
        drained, _ = await asyncio.to_thread(drain, database_url, after_id=first)
        await asyncio.sleep(3)  # frames still on their way
        cpu = cpu_seconds(server_pid) - cpu_before
    await sockets.close()  # their figures, before they are read below
    return main, sockets, floor_steps, steps, rate, answered, drained, cpu


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--rate",
        type=float,
        default=0,
        help="the steady run's rate (default: the highest chatdesk sustained in the search)",
    )
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--sockets", type=int, default=50)
    parser.add_argument("--step-seconds", type=float, default=10)
    parser.add_argument("--search-from", type=int, default=20)
    parser.add_argument("--search-to", type=int, default=2000)
    parser.add_argument("--search-step", type=int, default=10)
    parser.add_argument("--no-search", action="store_true")
    args = parser.parse_args()
    database_url, redis_url = require_services()
    if not redis_url:
        sys.exit("The load test pushes to agent sockets through channels-redis: set REDIS_URL.")
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "bench.settings"}
    manage("migrate", "--noinput", "-v", "0", env=env)
    session = agent_session(env)
    run = str(int(time.time()))
    port = free_port()
    first = last_event_id(database_url)
    with daphne(port, env=env) as server, worker(env=env):
        main_results, sockets, floor_steps, steps, rate, answered, drained, cpu = asyncio.run(
            measure(f"http://127.0.0.1:{port}", session, args, run, database_url, first, server.pid)
        )
    acked = {f"LOAD{run}X{n:09d}" for n, code, _, _ in main_results if code == 200}
    messages, events = stored(database_url, run)
    lost = len(acked - set(messages))
    duplicated = sum(1 for wa_id in acked if messages.get(wa_id, 0) > 1)
    refused = sum(1 for r in main_results if r[1] != 200)
    codes = {}
    for r in main_results:
        codes[r[1]] = codes.get(r[1], 0) + 1
    ack = summary_ms([r[3] for r in main_results])
    pushes, missing = push_latencies(main_results, sockets, run, args.sockets)
    push = summary_ms(pushes)
    main_acked = sum(1 for n, code, _, _ in main_results if code == 200 and n >= 100_000)
    ack_rate, applied_rate = main_acked / answered, main_acked / (answered + drained)
    keeps_up = "ok" if drained <= DRAIN_SLACK else "MISSED"
    lines = [
        f"One daphne process (PostgreSQL, channels-redis {os.environ.get('CHANNEL_LAYER', 'core')} "
        f"layer), {args.sockets} agent sockets on "
        f"/ws/inbox/, one Dramatiq worker process. Steady run: open loop at {rate:.0f} "
        f"webhooks/s for {args.seconds:.0f} s (plus warm-ups, counted too).",
        "",
        "| figure | value |",
        "|---|---|",
        f"| webhooks sent / acknowledged (200) / refused | {len(main_results)} / {len(acked)} / "
        f"{refused} |",
        f"| lost (acknowledged, not stored) / stored twice | {lost} / {duplicated} |",
        f"| answers by HTTP status | {codes} |",
        f"| raw webhook events stored (run, warm-up and steps) | {events} |",
        f"| acknowledged rate / applied rate (until the worker had applied all) | "
        f"{ack_rate:.0f}/s / {applied_rate:.0f}/s |",
        f"| all applied by the worker, after the last answer | {drained:.1f} s "
        f"(worker keeps up: {keeps_up}) |",
        f"| ack latency p50 / p99 | {ack['p50_ms']} ms / {ack['p99_ms']} ms |",
        f"| push latency p50 / p99 (POST -> frame, {len(pushes)} frames) | "
        f"{push['p50_ms']} ms / {push['p99_ms']} ms |",
        f"| per-message list frames not received (coalesced in a flood, or dropped by the "
        f"at-most-once layer) | {missing} of {len(acked) * args.sockets} |",
        f"| list re-fetch notices received instead (all sockets) | {sockets.stale} |",
        f"| resync notices: a socket saw it had missed events (all sockets) | {sockets.resync} |",
        f"| websocket frames received (all sockets, steady run) | {sockets.frames} |",
        f"| daphne CPU, steady run until its frames were out | {cpu:.1f} s "
        f"({cpu / max(len(main_results), 1) * 1000:.1f} ms per webhook) |",
    ]
    if steps:
        floor, real = sustained(floor_steps), sustained(steps)
        ratio = real / floor if real and floor else 0.0
        lines += [
            "",
            f"Step search, in the same process and run, the steps taken in turn: the bare "
            f"pooled insert view (bench/urls.py, the floor) and chatdesk's webhook; "
            f"{args.step_seconds:.0f} s "
            f"per rate, doubling from {args.search_from}/s until p99 ack >= {P99_TARGET_MS} ms "
            f"or a refused webhook, then halving the gap down to {args.search_step}/s.",
            "",
            "| rate /s | bare insert p99 ack ms (refused) | chatdesk p99 ack ms (refused) |",
            "|---|---|---|",
            *search_rows(floor_steps, steps),
            "",
            f"**Highest rate with p99 ack under {P99_TARGET_MS} ms: bare insert {floor}/s, "
            f"chatdesk {real}/s: {ratio:.0%} of the floor** (target at least "
            f"{RATIO_TARGET:.0%}: {'ok' if ratio >= RATIO_TARGET else 'MISSED'}).",
        ]
    record("Webhook load with agent sockets (issues 7, 19)", lines)
    if lost or duplicated:
        sys.exit(f"{lost} lost, {duplicated} duplicated")


def search_rows(floor_steps, steps) -> list[str]:
    floor, real = {r: (p, b) for r, p, b in floor_steps}, {r: (p, b) for r, p, b in steps}

    def cell(found):
        return f"{found[0]:.0f} ({found[1]})" if found else ""

    return [
        f"| {r} | {cell(floor.get(r))} | {cell(real.get(r))} |" for r in sorted({*floor, *real})
    ]


if __name__ == "__main__":
    main()
