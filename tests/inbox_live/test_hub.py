"""inbox/hub.py: one member of the inbox group per process, handing each event to every local
socket, on the three layers chatdesk runs on (in memory, channels-redis core and pubsub)."""

import asyncio
import os

import pytest
import redis
from channels.layers import get_channel_layer

from inbox import consumers, hub
from inbox.consumers import InboxConsumer
from inbox.events import INBOX_GROUP
from tests.inbox_live.test_consumers import WAIT, socket

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]
LAYERS = ["memory", "core", "pubsub"]


@pytest.fixture(params=LAYERS)
def layer_kind(request, settings):
    from chatdesk.config import channel_layers

    redis_url = ""
    if request.param != "memory":
        if not os.environ.get("REDIS_URL"):
            pytest.skip("needs Redis (REDIS_URL)")
        from tests.procs import redis_url_for_tests

        redis_url = redis_url_for_tests()
        redis.Redis.from_url(redis_url).flushdb()  # no member left by an earlier test
    settings.CHANNEL_LAYERS = channel_layers(redis_url, request.param)
    return request.param


async def members(kind: str) -> set[str]:
    """The layer channels in the inbox group, as the layer itself holds them."""
    layer = get_channel_layer()
    if kind == "memory":
        return set(layer.groups.get(INBOX_GROUP, {}))
    if kind == "core":
        connection = layer.connection(layer.consistent_hash(INBOX_GROUP))
        found = await connection.zrange(layer._group_key(INBOX_GROUP), 0, -1)
        return {name.decode() for name in found}
    loop_layer = layer._get_layer()
    return set(loop_layer.groups.get(loop_layer._get_group_channel_name(INBOX_GROUP), set()))


def the_hub() -> hub.Hub | None:
    return hub.hub_of(get_channel_layer(), INBOX_GROUP)


async def sockets(*names: str):
    connected = []
    for name in names:
        communicator = await socket(name)
        assert (await communicator.connect())[0]
        connected.append(communicator)
    return connected


async def stale(seq: int = 1) -> None:
    message = {"type": "list.stale", "event_id": f"e{seq}", "source": "test", "seq": seq}
    await get_channel_layer().group_send(INBOX_GROUP, message)


async def test_a_process_is_one_member_of_the_inbox_group_however_many_sockets(layer_kind):
    connected = await sockets("bob", "ana", "eva")
    assert len(await members(layer_kind)) == 1
    assert await members(layer_kind) == {the_hub().channel}
    assert len(the_hub().members) == 3
    for communicator in connected:
        await communicator.disconnect()


async def test_an_event_reaches_every_local_socket_once(layer_kind):
    connected = await sockets("bob", "ana", "eva")
    await stale()
    for communicator in connected:
        assert await communicator.receive_from(timeout=WAIT) == consumers.LIST_STALE
    for communicator in connected:
        assert await communicator.receive_nothing(timeout=0.3)
        await communicator.disconnect()


async def test_a_socket_that_closes_leaves_the_hub_and_the_last_one_the_group(layer_kind):
    bob, ana = await sockets("bob", "ana")
    await bob.disconnect()
    assert len(the_hub().members) == 1
    await stale()
    assert await ana.receive_from(timeout=WAIT) == consumers.LIST_STALE
    await ana.disconnect()
    assert the_hub() is None
    assert await members(layer_kind) == set()
    # A socket after that starts a hub afresh.
    (eva,) = await sockets("eva")
    await stale(2)
    assert await eva.receive_from(timeout=WAIT) == consumers.LIST_STALE
    await eva.disconnect()


async def test_a_failing_handler_costs_its_socket_that_event_only(layer_kind, monkeypatch):
    """Bob's socket fails on the first event: the page is told to re-fetch, the socket hears
    the next one, and the others hear both."""
    real = InboxConsumer.list_stale
    failed = []

    async def list_stale(self, event):
        if self.user.username == "bob" and not failed:
            failed.append(event["seq"])
            raise RuntimeError("a render that failed")
        await real(self, event)

    monkeypatch.setattr(InboxConsumer, "list_stale", list_stale)
    bob, ana = await sockets("bob", "ana")
    await stale(1)
    await stale(2)
    assert await bob.receive_from(timeout=WAIT) == consumers.RESYNC
    assert await bob.receive_from(timeout=WAIT) == consumers.LIST_STALE
    assert [await ana.receive_from(timeout=WAIT) for _ in range(2)] == [consumers.LIST_STALE] * 2
    assert failed == [1]
    for communicator in (bob, ana):
        await communicator.disconnect()


async def test_a_slow_socket_delays_only_itself_and_keeps_its_order(layer_kind, monkeypatch):
    gate = asyncio.Event()

    async def list_stale(self, event):
        if self.user.username == "bob":
            await gate.wait()
        await self.send(f"stale {event['seq']}")

    monkeypatch.setattr(InboxConsumer, "list_stale", list_stale)
    bob, ana = await sockets("bob", "ana")
    for seq in (1, 2, 3):
        await stale(seq)
    assert [await ana.receive_from(timeout=WAIT) for _ in range(3)] == [
        "stale 1",
        "stale 2",
        "stale 3",
    ]
    assert await bob.receive_nothing(timeout=0.2)
    gate.set()
    assert [await bob.receive_from(timeout=WAIT) for _ in range(3)] == [
        "stale 1",
        "stale 2",
        "stale 3",
    ]
    for communicator in (bob, ana):
        await communicator.disconnect()


async def test_a_socket_that_falls_behind_loses_events_and_resyncs(layer_kind, monkeypatch):
    """Its queue holds what its layer channel held; beyond that it loses the newest, and the
    numbers tell the page."""
    from inbox import gaps

    monkeypatch.setattr(gaps, "GAP_GRACE", 0.2)
    monkeypatch.setattr(hub, "_capacity", lambda layer: 2)
    gate = asyncio.Event()
    real = InboxConsumer.list_stale

    async def list_stale(self, event):
        await gate.wait()
        await real(self, event)

    monkeypatch.setattr(InboxConsumer, "list_stale", list_stale)
    handed = []
    fan_out = hub.Hub._fan_out

    def counted(self, message):
        fan_out(self, message)
        handed.append(message["seq"])

    monkeypatch.setattr(hub.Hub, "_fan_out", counted)
    (bob,) = await sockets("bob")
    for seq in range(1, 7):
        await stale(seq)
    async with asyncio.timeout(WAIT):  # the hub has handed on what it could
        while len(handed) < 6:
            await asyncio.sleep(0.02)
    gate.set()
    # 2 queued, and perhaps 1 already in hand; the rest lost.
    frames = []
    while not await bob.receive_nothing(timeout=0.5):
        frames.append(await bob.receive_from())
    assert frames in ([consumers.LIST_STALE] * 2, [consumers.LIST_STALE] * 3)
    await stale(7)
    frames = [await bob.receive_from(timeout=WAIT) for _ in range(2)]
    assert consumers.RESYNC in frames
    await bob.disconnect()


async def test_the_hub_joins_its_group_again(layer_kind, monkeypatch):
    """The layer forgot the membership (channels-redis's group expiry, a restarted Redis)."""
    monkeypatch.setattr(hub, "REJOIN_SECONDS", 0.1)
    (bob,) = await sockets("bob")
    layer = get_channel_layer()
    if layer_kind == "core":  # as channels-redis expires it, the channel stays subscribed
        connection = layer.connection(layer.consistent_hash(INBOX_GROUP))
        await connection.delete(layer._group_key(INBOX_GROUP))
    else:
        await layer.group_discard(INBOX_GROUP, the_hub().channel)
    assert await members(layer_kind) == set()
    async with asyncio.timeout(WAIT):
        while not await members(layer_kind):
            await asyncio.sleep(0.05)
    await stale()
    assert await bob.receive_from(timeout=WAIT) == consumers.LIST_STALE
    await bob.disconnect()


async def test_a_socket_that_loses_access_leaves_the_hub(layer_kind):
    bob, ana = await sockets("bob", "ana")
    bob_consumer = next(c for c in the_hub().members if c.user.username == "bob")
    await bob_consumer.access_lost(consumers.CLOSE_UNAUTHENTICATED)
    assert await bob.receive_output(timeout=WAIT) == {"type": "websocket.close", "code": 4401}
    assert len(the_hub().members) == 1
    await stale()
    assert await ana.receive_from(timeout=WAIT) == consumers.LIST_STALE
    assert await bob.receive_nothing(timeout=0.3)
    for communicator in (bob, ana):
        await communicator.disconnect()
