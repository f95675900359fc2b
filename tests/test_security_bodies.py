"""Request bodies are capped before they are buffered (chatdesk/bodylimit.py): by path, on the
headers when they already tell (a declared length over the cap, a webhook without its secret),
else as the bytes arrive; a body too slow to arrive is refused too. Proven on the ASGI layer in
process, and on a real daphne, where 4 clients streaming 200 MB each leave its memory where it
was and an agent's socket connected."""

import asyncio
import contextlib
import json
import os
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import psutil
import pytest
import websockets
from django.conf import settings
from django.test import Client

from chatdesk.bodylimit import BodyLimitMiddleware
from tests.conftest import make_user
from tests.procs import ROOT, daphne_args, free_port, process_env, redis_url_for_tests, running

MB = 1024 * 1024
WEBHOOK = "/webhooks/wasender/"
SECRET = "dev-webhook-secret"  # the DEBUG default the test processes run with
FLOOD = 200 * MB
LOGS = ROOT / "var" / "test-logs"


# --- the ASGI layer, in process ------------------------------------------------------------------


async def asgi_call(path: str, headers: dict, chunks: list[bytes], *, gap: float = 0.0):
    """Runs BodyLimitMiddleware around an app that reads the whole body and says how much it
    got; returns (status, body of the answer, bytes the app was handed)."""
    handed = []

    async def app(scope, receive, send):
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            size += len(message.get("body", b""))
            if not message.get("more_body"):
                break
        handed.append(size)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    pending = [
        {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
        for i, c in enumerate(chunks)
    ]

    async def receive():
        if not pending:
            await asyncio.sleep(3600)
        if gap:
            await asyncio.sleep(gap)
        return pending.pop(0)

    sent = []

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": path,
        "query_string": b"",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
    }
    await BodyLimitMiddleware(app)(scope, receive, send)
    status = sent[0]["status"]
    body = b"".join(m.get("body", b"") for m in sent[1:])
    return status, body, sum(handed)


def run(coroutine):
    """asyncio.run in a thread of its own (a browser test may keep a loop in this one)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def test_it_refuses_an_unsigned_webhook_on_its_headers():
    status, body, handed = run(asgi_call(WEBHOOK, {"content-length": "10"}, [b"x" * 10]))
    assert (status, handed) == (401, 0)
    assert json.loads(body)["error"] == "unauthorized"
    assert "firma" in json.loads(body)["message"]


def test_it_refuses_a_declared_length_over_the_cap_without_reading(settings):
    length = str(settings.WASENDER_WEBHOOK_MAX_BYTES + 1)
    headers = {"content-length": length, "x-webhook-signature": SECRET}
    status, body, handed = run(asgi_call(WEBHOOK, headers, [b"x"]))
    assert (status, handed) == (413, 0)
    assert json.loads(body)["error"] == "too_large"


def test_it_stops_a_streamed_body_at_the_cap_by_path(settings):
    settings.REQUEST_MAX_BYTES = 1000
    chunks = [b"x" * 600] * 10
    status, _, handed = run(asgi_call("/accounts/login/", {}, chunks))
    assert (status, handed) == (413, 0)
    # The webhook has a cap of its own, larger than the default one.
    status, _, handed = run(asgi_call(WEBHOOK, {"x-webhook-signature": SECRET}, chunks))
    assert (status, handed) == (200, 6000)


def test_it_gives_an_anonymous_upload_the_small_cap(settings):
    settings.REQUEST_MAX_BYTES = 1000
    status, _, _ = run(asgi_call("/inbox/c/1/reply/", {"content-length": "5000"}, [b"x" * 5000]))
    assert status == 413


def test_it_refuses_a_body_that_arrives_too_slowly(settings):
    settings.REQUEST_BODY_TIMEOUT = 0.3
    status, body, handed = run(asgi_call("/accounts/login/", {}, [b"x"] * 10, gap=0.1))
    assert (status, handed) == (408, 0)
    assert json.loads(body)["error"] == "timeout"


# --- a real daphne -----------------------------------------------------------------------------


@pytest.fixture
def daphne(transactional_db):
    """chatdesk under daphne with a short body timeout; (port, process)."""
    LOGS.mkdir(parents=True, exist_ok=True)
    extra = {"REDIS_URL": redis_url_for_tests()} if os.environ.get("REDIS_URL") else {}
    env = process_env(DRAMATIQ_BROKER="stub", REQUEST_BODY_TIMEOUT="3", **extra)
    port = free_port()
    with running(
        daphne_args(port),
        env=env,
        ready_url=f"http://127.0.0.1:{port}/healthz",
        log=LOGS / "bodies-daphne.log",
    ) as proc:
        yield port, proc


def head(path: str, *, length: int | None = None, **headers: str) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    framing = "Transfer-Encoding: chunked" if length is None else f"Content-Length: {length}"
    lines.append(framing)
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def answer(sock: socket.socket) -> tuple[int, bytes]:
    """The status and body of the response, read until the server closes."""
    data = b""
    sock.settimeout(15)
    try:
        while part := sock.recv(65536):
            data += part
    except ConnectionResetError:
        pass
    status_line, _, rest = data.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2]


def test_it_answers_on_the_headers_before_any_body(daphne):
    port, _ = daphne
    for request, status in [
        (head(WEBHOOK, length=FLOOD), 401),  # no secret
        (head(WEBHOOK, length=FLOOD, X_Webhook_Signature="wrong"), 401),
        (head(WEBHOOK, length=FLOOD, X_Webhook_Signature=SECRET), 413),
        (head("/api/v1/messages", length=FLOOD), 413),
        (head("/inbox/c/1/reply/", length=60 * MB), 413),  # anonymous: the small cap
    ]:
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(request)  # and not one byte of the body
            got, body = answer(sock)
        assert got == status, request
        assert json.loads(body)["ok"] is False


def test_it_stops_reading_a_streamed_body_at_the_cap(daphne):
    port, _ = daphne
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(head("/accounts/login/") + chunk(b"x" * (settings.REQUEST_MAX_BYTES + 1)))
        status, body = answer(sock)
    assert status == 413
    assert json.loads(body)["error"] == "too_large"


def test_it_refuses_a_body_that_trickles_in(daphne):
    port, _ = daphne
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(head(WEBHOOK, length=1000, X_Webhook_Signature=SECRET) + b"{")
        status, body = answer(sock)  # nothing more is sent: the server gives up (3 s here)
    assert status == 408
    assert json.loads(body)["error"] == "timeout"


def test_it_lets_a_logged_in_agent_send_past_the_small_cap(daphne):
    """Reading pauses while the session is looked up, then goes on: 3 MB reach Django (which
    answers 403 here: the raw request carries no CSRF token), where anonymous gets 413."""
    port, _ = daphne
    cookie = session_cookie(make_user("bob", "agent"))
    body = b"x" * (3 * MB)
    for extra, status in [({"Cookie": cookie}, 403), ({}, 413)]:
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(head("/inbox/c/1/reply/", length=len(body), **extra))
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                sock.sendall(body)
            assert answer(sock)[0] == status


def session_cookie(user) -> str:
    client = Client()
    client.force_login(user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


def stream(port: int, request: bytes, *, chunked: bool) -> int:
    """Sends the request line and headers, then up to FLOOD bytes of body as fast as the server
    takes them; returns how many bytes of body went out before the server closed."""
    piece = b"x" * (256 * 1024)
    sent = 0
    with socket.create_connection(("127.0.0.1", port)) as sock:
        try:
            sock.sendall(request)
            while sent < FLOOD:
                sock.sendall(chunk(piece) if chunked else piece)
                sent += len(piece)
        except (BrokenPipeError, ConnectionResetError):
            pass
    return sent


def rss_watch(pid: int, stop: threading.Event, peak: list[int]) -> None:
    process = psutil.Process(pid)
    while not stop.is_set():
        peak[0] = max(peak[0], process.memory_info().rss)
        time.sleep(0.02)


async def agent_socket_survives(port: int, cookie: str, flood) -> str:
    """Connects an agent's socket, runs the flood beside it, then has a customer write: the
    same socket must receive the new conversation row."""
    host = f"127.0.0.1:{port}"
    async with websockets.connect(
        f"ws://{host}/ws/inbox/", origin=f"http://{host}", additional_headers={"Cookie": cookie}
    ) as ws:
        await ws.send(json.dumps({"type": "watch", "conversation": None, "view": "all"}))
        await asyncio.to_thread(flood)
        body = (ROOT / "tests/fixtures/wasender/messages_received_text.json").read_bytes()
        with socket.create_connection(("127.0.0.1", port)) as sock:
            request = head(
                WEBHOOK,
                length=len(body),
                X_Webhook_Signature=SECRET,
                Content_Type="application/json",
            )
            sock.sendall(request + body)
            assert answer(sock)[0] == 200
        async with asyncio.timeout(30):  # an upper bound for a frame that must come
            while True:
                frame = await ws.recv()
                if "conv-row" in frame:
                    return frame


def test_it_keeps_memory_and_sockets_while_four_clients_stream_200_mb_each(daphne):
    port, proc = daphne
    bob = make_user("bob", "agent", first_name="Bob")
    cookie = session_cookie(bob)
    # Warm up what a first request loads, then take the idle figure.
    for request in (head("/accounts/login/", length=0), head(WEBHOOK, length=0)):
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(request)
            answer(sock)
    idle = psutil.Process(proc.pid).memory_info().rss
    attacks = [
        # Anonymous: a webhook without the secret, declared and chunked, and an upload.
        (head(WEBHOOK, length=FLOOD), False),
        (head(WEBHOOK), True),
        (head("/inbox/c/1/reply/"), True),
        # A logged-in agent's upload: up to the attachment cap, spooled to disk by daphne.
        (head("/inbox/c/1/reply/", Cookie=cookie), True),
    ]
    sent: list[int] = []

    def flood():
        with ThreadPoolExecutor(len(attacks)) as pool:
            sent.extend(pool.map(lambda a: stream(port, a[0], chunked=a[1]), attacks))

    stop, peak = threading.Event(), [idle]
    watcher = threading.Thread(target=rss_watch, args=(proc.pid, stop, peak))
    watcher.start()
    try:
        frame = run(agent_socket_survives(port, cookie, flood))
    finally:
        stop.set()
        watcher.join()
    grown = (peak[0] - idle) / MB
    print(
        f"daphne RSS idle {idle / MB:.0f} MB, peak {peak[0] / MB:.0f} MB (+{grown:.1f} MB); "
        f"body bytes sent before the cut: {[round(n / MB, 1) for n in sent]} MB"
    )
    assert grown < 50, f"daphne grew {grown:.0f} MB"
    assert "conv-row" in frame
    # Every client was cut off near its cap (what the kernel buffers aside), none got through.
    upload_cap = max(settings.ATTACHMENT_MAX_BYTES.values()) + MB
    assert max(sent[:3]) < 32 * MB, sent
    assert sent[3] < upload_cap + 32 * MB, sent
