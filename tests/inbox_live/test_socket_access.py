"""An open inbox socket loses access with its user (inbox/socket_access.py), on a real daphne:
a logout, a deactivation, a role taken away and a deleted session each close that user's socket
within seconds, with the reason; a socket whose user keeps access stays and gets the next
customer message."""

import asyncio
import json
import os
import socket
from concurrent.futures import ThreadPoolExecutor

import pytest
import websockets
from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.sessions.models import Session
from django.db import connection
from django.test import Client

from tests.conftest import make_user
from tests.procs import ROOT, daphne_args, free_port, process_env, redis_url_for_tests, running

pytestmark = pytest.mark.integration
LOGS = ROOT / "var" / "test-logs"
WEBHOOK = (ROOT / "tests/fixtures/wasender/messages_received_text.json").read_bytes()


@pytest.fixture
def daphne_url(transactional_db):
    LOGS.mkdir(parents=True, exist_ok=True)
    extra = {"REDIS_URL": redis_url_for_tests()} if os.environ.get("REDIS_URL") else {}
    env = process_env(DRAMATIQ_BROKER="stub", SOCKET_RECHECK_SECONDS="1", **extra)
    port = free_port()
    with running(
        daphne_args(port),
        env=env,
        ready_url=f"http://127.0.0.1:{port}/healthz",
        log=LOGS / "socket-access-daphne.log",
    ):
        yield f"127.0.0.1:{port}"


def logged_in(username: str) -> tuple:
    """An agent and the test client holding their session."""
    user = make_user(username, "agent", first_name=username.title())
    client = Client()
    client.force_login(user)
    return user, client


def cookie(client: Client) -> str:
    name = settings.SESSION_COOKIE_NAME
    return f"{name}={client.cookies[name].value}"


def customer_writes(host: str) -> None:
    address, port = host.split(":")
    with socket.create_connection((address, int(port))) as sock:
        sock.sendall(
            b"POST /webhooks/wasender/ HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
            b"Content-Type: application/json\r\nX-Webhook-Signature: dev-webhook-secret\r\n"
            + f"Content-Length: {len(WEBHOOK)}\r\n\r\n".encode()
            + WEBHOOK
        )
        assert sock.recv(100).startswith(b"HTTP/1.1 200")


async def closes(ws) -> int:
    """The close code of a socket that must close, nothing else received before it (an upper
    bound, not a timing)."""
    async with asyncio.timeout(30):
        with pytest.raises(websockets.ConnectionClosed) as closed:
            frame = await ws.recv()
            pytest.fail(f"received {frame[:80]!r} instead of the close")
    return closed.value.rcvd.code


async def scenario(host: str, users: dict) -> tuple[dict, str]:
    sockets = {}
    for name, (_user, client) in users.items():
        sockets[name] = await websockets.connect(
            f"ws://{host}/ws/inbox/",
            origin=f"http://{host}",
            additional_headers={"Cookie": cookie(client)},
        )
        await sockets[name].send(json.dumps({"type": "watch", "conversation": None}))
    await asyncio.sleep(1.5)  # a sweep with everyone still allowed: nobody is closed

    def lose_access():
        try:
            users["logged_out"][1].logout()
            deactivated = users["deactivated"][0]
            deactivated.is_active = False
            deactivated.save()
            users["demoted"][0].groups.clear()
            key = users["session_deleted"][1].session.session_key
            Session.objects.filter(session_key=key).delete()
        finally:
            connection.close()  # this thread's, or the test database cannot be dropped

    await sync_to_async(lose_access)()
    codes = {}
    for name in ("logged_out", "deactivated", "demoted", "session_deleted"):
        codes[name] = await closes(sockets[name])
    await asyncio.to_thread(customer_writes, host)
    async with asyncio.timeout(30):
        while "conv-row" not in (frame := await sockets["kept"].recv()):
            pass
    await sockets["kept"].close()
    return codes, frame


def test_it_closes_a_socket_whose_user_loses_access_within_seconds(daphne_url):
    users = {
        name: logged_in(name.replace("_", ""))
        for name in ("logged_out", "deactivated", "demoted", "session_deleted", "kept")
    }
    with ThreadPoolExecutor(1) as pool:
        codes, frame = pool.submit(asyncio.run, scenario(daphne_url, users)).result()
    assert codes == {
        "logged_out": 4401,
        "deactivated": 4401,
        "demoted": 4403,
        "session_deleted": 4401,
    }
    assert "conv-row" in frame  # the one who kept access still gets the live inbox
