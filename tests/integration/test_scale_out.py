"""Two daphne processes sharing Redis (channels-redis) and the test database: the webhook goes
to one, and an agent whose socket is connected to the other receives the push."""

import asyncio
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import redis
import websockets
from django.conf import settings
from django.test import Client

from tests.conftest import make_user, require
from tests.procs import ROOT, daphne_args, free_port, process_env, redis_url_for_tests, running

pytestmark = pytest.mark.services
LOGS = ROOT / "var" / "test-logs"
PHONE = "593968196046"


def webhook_body(text: str) -> dict:
    return {
        "event": "messages.received",
        "timestamp": int(time.time()),
        "data": {
            "messages": {
                "key": {
                    "id": "3EB0SCALEOUT000001",
                    "fromMe": False,
                    "remoteJid": f"{PHONE}@s.whatsapp.net",
                    "cleanedSenderPn": PHONE,
                },
                "pushName": "María",
                "messageTimestamp": int(time.time()),
                "messageBody": text,
                "message": {"conversation": text},
            }
        },
    }


@pytest.fixture
def two_daphnes(transactional_db):
    require("REDIS_URL" in os.environ, "needs Redis (REDIS_URL) for a shared channel layer")
    redis_url = redis_url_for_tests()
    redis.Redis.from_url(redis_url).flushdb()
    LOGS.mkdir(parents=True, exist_ok=True)
    env = process_env(DEBUG="1", DRAMATIQ_BROKER="stub", REDIS_URL=redis_url)
    ports = free_port(), free_port()
    with (
        running(
            daphne_args(ports[0]),
            env=env,
            ready_url=f"http://127.0.0.1:{ports[0]}/healthz",
            log=LOGS / "scale-out-a.log",
        ),
        running(
            daphne_args(ports[1]),
            env=env,
            ready_url=f"http://127.0.0.1:{ports[1]}/healthz",
            log=LOGS / "scale-out-b.log",
        ),
    ):
        yield [f"127.0.0.1:{port}" for port in ports]


def run(coroutine):
    """asyncio.run in a thread of its own: Playwright's sync API (browser tests in the same
    session) may keep an event loop running in this one."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def session_cookie(user) -> str:
    client = Client()
    client.force_login(user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


async def push_reaches_the_other_process(
    a: str, b: str, cookie: str, text: str, *, idle: float = 0.0
) -> str:
    headers = {"Cookie": cookie}
    async with websockets.connect(
        f"ws://{b}/ws/inbox/", origin=f"http://{b}", additional_headers=headers
    ) as socket:
        await socket.send(json.dumps({"type": "watch", "conversation": None, "view": "all"}))
        await asyncio.sleep(idle)
        async with httpx.AsyncClient() as client:
            response = await client.post(
                f"http://{a}/webhooks/wasender/",
                json=webhook_body(text),
                headers={"X-Webhook-Signature": settings.WASENDER_WEBHOOK_SECRET},
            )
            assert response.status_code == 200, response.text
        # An upper bound for a frame that must come, not a timing.
        async with asyncio.timeout(30):
            while True:
                frame = await socket.recv()
                if text in frame:
                    return frame


def test_it_pushes_from_one_process_to_a_socket_on_the_other(two_daphnes):
    a, b = two_daphnes
    bob = make_user("bob", "agent", first_name="Bob")
    frame = run(
        push_reaches_the_other_process(a, b, session_cookie(bob), "Hola desde el proceso A")
    )
    assert 'id="live-staging"' in frame and "conv-row" in frame


async def every_socket_hears(a: str, b: str, cookie: str, text: str) -> list[int]:
    """Three sockets on each process (each process's hub is one member of the inbox group,
    inbox/hub.py); the webhook goes to A. How many frames with `text` each socket got."""
    sockets = [
        await websockets.connect(
            f"ws://{host}/ws/inbox/", origin=f"http://{host}", additional_headers={"Cookie": cookie}
        )
        for host in (a, a, a, b, b, b)
    ]
    for socket in sockets:
        await socket.send(json.dumps({"type": "watch", "conversation": None, "view": "all"}))
    await asyncio.sleep(0.5)  # the watches applied
    async with httpx.AsyncClient() as client:
        response = await client.post(
            f"http://{a}/webhooks/wasender/",
            json=webhook_body(text),
            headers={"X-Webhook-Signature": settings.WASENDER_WEBHOOK_SECRET},
        )
        assert response.status_code == 200, response.text

    async def count(socket) -> int:
        heard = 0
        # An upper bound for the frame that must come, then a quiet second for a second copy.
        async with asyncio.timeout(30):
            while not heard:
                heard += text in await socket.recv()
        try:
            async with asyncio.timeout(1):
                while True:
                    heard += text in await socket.recv()
        except TimeoutError:
            return heard

    try:
        return list(await asyncio.gather(*(count(socket) for socket in sockets)))
    finally:
        for socket in sockets:
            await socket.close()


def test_every_socket_on_both_processes_hears_an_event_once(two_daphnes):
    a, b = two_daphnes
    bob = make_user("bob", "agent", first_name="Bob")
    assert run(every_socket_hears(a, b, session_cookie(bob), "Hola a los seis")) == [1] * 6


def test_it_keeps_an_idle_socket_past_the_redis_read_timeout(two_daphnes):
    """redis-py reads with a 5 s timeout by default; the layer's blocking pop waits 5 s."""
    a, b = two_daphnes
    bob = make_user("bob", "agent", first_name="Bob")
    frame = run(push_reaches_the_other_process(a, b, session_cookie(bob), "Tras un rato", idle=7))
    assert "Tras un rato" in frame


def test_it_refuses_a_socket_without_a_session_on_either_process(two_daphnes):
    async def attempt(host: str):
        async with websockets.connect(f"ws://{host}/ws/inbox/", origin=f"http://{host}") as ws:
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await ws.recv()
            return closed.value.rcvd.code

    for host in two_daphnes:
        assert run(attempt(host)) == 4401
