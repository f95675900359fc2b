"""inbox/events.py's _Departures: in a server process, a request's thread hands its live events
to the server's loop and goes on; elsewhere, or when too many wait, it waits for them."""

import asyncio
import logging
import threading

import pytest

from inbox import events


@pytest.fixture
def server_loop(monkeypatch):
    """A running loop in a thread, noted as the server's (as chatdesk/asgi.py's wrapper does)."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    noted = events.server_loop_note(lambda scope, receive, send: asyncio.sleep(0))
    asyncio.run_coroutine_threadsafe(noted({}, None, None), loop).result(timeout=5)
    assert events._departures.loop is loop
    yield loop
    monkeypatch.setattr(events._departures, "loop", None)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout=5)
    loop.close()


def held(gate: threading.Event, done: list):
    async def send():
        while not gate.is_set():
            await asyncio.sleep(0.005)
        done.append(True)

    return send()


def test_a_thread_of_a_server_does_not_wait_for_its_sends(server_loop):
    gate, done = threading.Event(), []
    events._departures.send(held(gate, done))
    assert done == [] and events._departures.pending == 1  # on its way, the caller went on
    gate.set()
    for _ in range(500):
        if done and events._departures.pending == 0:
            break
        threading.Event().wait(0.01)
    assert done == [True] and events._departures.pending == 0


def test_sends_leave_in_the_order_they_were_handed_over(server_loop):
    order = []

    async def send(n):
        order.append(n)

    for n in range(50):
        events._departures.send(send(n))
    asyncio.run_coroutine_threadsafe(asyncio.sleep(0.05), server_loop).result(timeout=5)
    assert order == list(range(50))


def test_without_a_server_loop_the_caller_waits(monkeypatch):
    monkeypatch.setattr(events._departures, "loop", None)
    gate, done = threading.Event(), []
    gate.set()
    events._departures.send(held(gate, done))
    assert done == [True]


def test_when_too_many_wait_the_caller_waits(server_loop, monkeypatch):
    monkeypatch.setattr(events._departures, "pending", events._Departures.MAX_PENDING)
    gate, done = threading.Event(), []
    gate.set()
    events._departures.send(held(gate, done))
    assert done == [True]  # sent before send() returned: the backpressure of a stuck Redis


def test_a_send_that_fails_is_logged_and_not_counted_as_waiting(server_loop, caplog):
    async def fails():
        raise ConnectionError("Redis away")

    with caplog.at_level(logging.WARNING, logger="inbox.events"):
        events._departures.send(fails())
        for _ in range(500):
            if events._departures.pending == 0 and caplog.records:
                break
            threading.Event().wait(0.01)
    assert events._departures.pending == 0
    assert "a live event was not sent" in caplog.text


def test_the_server_application_notes_its_loop_inside_the_body_limits():
    """BodyLimitMiddleware stays outermost: daphne's guard and runembedded ask it for
    `body_rule`."""
    from chatdesk.asgi import application
    from chatdesk.bodylimit import BodyLimitMiddleware

    assert isinstance(application, BodyLimitMiddleware)
    assert application.app.__qualname__ == "server_loop_note.<locals>.noted"
