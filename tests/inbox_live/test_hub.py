"""inbox/hub.py: one member of the inbox group per process, handing each event to every local
socket, on the three layers chatdesk runs on (in memory, channels-redis core and pubsub)."""

import asyncio
import os

import pytest
import redis
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer

from inbox import consumers, events, hub
from inbox.consumers import InboxConsumer
from inbox.events import INBOX_GROUP, event_publish
from tests.inbox_live.conftest import conversation_with, message_in
from tests.inbox_live.test_consumers import WAIT, socket, watch

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


async def frames_of(communicator, expected: str) -> list[str]:
    """The frames that bring `expected`: a socket behind gets the events waiting for it in one
    frame, so a test of order reads the text, and how many frames carried it."""
    frames: list[str] = []
    while len("".join(frames)) < len(expected):
        frames.append(await communicator.receive_from(timeout=WAIT))
    assert "".join(frames) == expected
    return frames


def handed_count(monkeypatch) -> list:
    """The sequence numbers the hub has put in its sockets' queues, as it does."""
    handed = []
    fan_out = hub.Hub._fan_out

    def counted(self, message):
        fan_out(self, message)
        handed.append(message.get("seq"))

    monkeypatch.setattr(hub.Hub, "_fan_out", counted)
    return handed


async def until_handed(handed: list, count: int) -> None:
    async with asyncio.timeout(WAIT):
        while len(handed) < count:
            await asyncio.sleep(0.02)


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
    await frames_of(bob, consumers.RESYNC + consumers.LIST_STALE)
    await frames_of(ana, consumers.LIST_STALE * 2)
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
    await frames_of(ana, "stale 1stale 2stale 3")
    assert await bob.receive_nothing(timeout=0.2)
    gate.set()
    await frames_of(bob, "stale 1stale 2stale 3")
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
    handed = handed_count(monkeypatch)
    (bob,) = await sockets("bob")
    for seq in range(1, 7):
        await stale(seq)
    await until_handed(handed, 6)  # the hub has handed on what it could
    gate.set()
    # 2 queued, and perhaps 1 already in hand; the rest lost.
    frames = []
    while not await bob.receive_nothing(timeout=0.5):
        frames.append(await bob.receive_from())
    assert "".join(frames) in (consumers.LIST_STALE * 2, consumers.LIST_STALE * 3)
    await stale(7)
    frames = []
    while consumers.RESYNC not in "".join(frames):
        frames.append(await bob.receive_from(timeout=WAIT))
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


async def test_a_socket_behind_gets_the_events_waiting_for_it_in_one_frame(layer_kind, monkeypatch):
    """Bob's socket is held on the first event while four more arrive: they leave together,
    in order, in one frame; Ana, never held, gets the same text. No socket waits for events
    to come: what is queued is taken, up to BATCH_MAX."""
    gate = asyncio.Event()

    async def list_stale(self, event):
        if self.user.username == "bob" and event["seq"] == 1:
            await gate.wait()
        await self.send(f"stale {event['seq']}")

    monkeypatch.setattr(InboxConsumer, "list_stale", list_stale)
    monkeypatch.setattr(hub, "BATCH_MAX", 3)
    handed = handed_count(monkeypatch)
    bob, ana = await sockets("bob", "ana")
    for seq in range(1, 6):
        await stale(seq)
    await until_handed(handed, 5)
    expected = "".join(f"stale {seq}" for seq in range(1, 6))
    await frames_of(ana, expected)
    gate.set()
    frames = await frames_of(bob, expected)
    # Bob's task took 1, 2 or 3 events before it was held (as many as were queued), then
    # the rest as they waited: at most three at a time.
    assert frames in (
        ["stale 1", "stale 2stale 3stale 4", "stale 5"],
        ["stale 1stale 2", "stale 3stale 4stale 5"],
        ["stale 1stale 2stale 3", "stale 4stale 5"],
    )
    for communicator in (bob, ana):
        await communicator.disconnect()


async def one_delivered(monkeypatch, gap: float):
    """Bob's socket (its list.stale sends "stale <seq>") once it had event 1, with a FRAME_GAP
    of `gap`; and what the hub has handed over."""

    async def list_stale(self, event):
        await self.send(f"stale {event['seq']}")

    monkeypatch.setattr(InboxConsumer, "list_stale", list_stale)
    monkeypatch.setattr(hub, "FRAME_GAP", gap)
    handed = handed_count(monkeypatch)
    (bob,) = await sockets("bob")
    await stale(1)
    assert await bob.receive_from(timeout=WAIT) == "stale 1"
    return bob, handed


async def two_more(handed: list) -> None:
    """Events 2 and 3, the second once the socket's task could have taken the first."""
    await stale(2)
    await until_handed(handed, 2)
    await asyncio.sleep(0.05)
    await stale(3)
    await until_handed(handed, 3)


async def test_the_first_event_after_a_quiet_spell_goes_at_once(layer_kind, monkeypatch):
    """The gap between two deliveries (FRAME_GAP) only holds what comes soon after one: after
    a delivery and a quiet spell longer than the gap, the next event leaves alone, before the
    one handed to the socket after it."""
    bob, handed = await one_delivered(monkeypatch, 0.3)
    await asyncio.sleep(0.6)  # quiet, twice the gap
    await two_more(handed)
    assert await bob.receive_from(timeout=WAIT) == "stale 2"
    assert await bob.receive_from(timeout=WAIT) == "stale 3"
    await bob.disconnect()


async def test_events_soon_after_a_delivery_leave_together(layer_kind, monkeypatch):
    """Two events handed to the socket one after the other, shortly after a delivery: each
    waits for the gap, and they leave in one frame (a burst costs a socket a frame per gap,
    not one per event)."""
    bob, handed = await one_delivered(monkeypatch, 1.0)
    await two_more(handed)
    assert await bob.receive_from(timeout=WAIT) == "stale 2stale 3"
    await bob.disconnect()


async def test_a_full_batch_waiting_leaves_without_the_gap(layer_kind, monkeypatch):
    """Events that fill a batch while the socket is busy do not wait for the gap after it:
    the gap must not cap how many events a socket gets a second."""
    held, gate = asyncio.Event(), asyncio.Event()

    async def list_stale(self, event):
        if event["seq"] == 1:
            held.set()
            await gate.wait()
        await self.send(f"stale {event['seq']}")

    monkeypatch.setattr(InboxConsumer, "list_stale", list_stale)
    monkeypatch.setattr(hub, "FRAME_GAP", 30.0)
    monkeypatch.setattr(hub, "BATCH_MAX", 3)
    handed = handed_count(monkeypatch)
    (bob,) = await sockets("bob")
    await stale(1)
    async with asyncio.timeout(WAIT):
        await held.wait()
    for seq in range(2, 5):
        await stale(seq)
    await until_handed(handed, 4)
    gate.set()
    assert await bob.receive_from(timeout=WAIT) == "stale 1"
    assert await bob.receive_from(timeout=WAIT) == "stale 2stale 3stale 4"
    await bob.disconnect()


async def test_a_burst_of_list_updates_is_one_frame_with_the_totals_once(
    channel_layer, monkeypatch
):
    """Three customers write while Bob's socket is held: one frame brings the three rows and
    the three notifications, in order, and the list's totals once (they are absolute: the
    last is what three frames would have left on the page)."""
    held, gate = asyncio.Event(), asyncio.Event()
    real = InboxConsumer.list_stale

    async def list_stale(self, event):
        held.set()
        await gate.wait()
        await real(self, event)

    monkeypatch.setattr(InboxConsumer, "list_stale", list_stale)
    handed = handed_count(monkeypatch)

    def three_write():
        found = []
        for n in range(3):
            conversation = conversation_with(f"+59399123450{n}", f"Cliente {n}", unread_count=1)
            found.append((conversation, message_in(conversation, f"Mensaje {n}")))
        return found

    written = await database_sync_to_async(three_write)()
    (bob,) = await sockets("bob")
    await watch(bob)
    await stale()
    async with asyncio.timeout(WAIT):
        await held.wait()
    for conversation, message in written:
        await database_sync_to_async(event_publish)(
            "message.created", conversation_id=conversation.pk, message_id=message.pk
        )
    await until_handed(handed, 4)
    gate.set()
    frames = []
    while f'data-id="{written[-1][1].pk}"' not in "".join(frames):
        frames.append(await bob.receive_from(timeout=WAIT))
    # The held event alone, then the three that waited behind it.
    assert frames[0] == consumers.LIST_STALE
    assert len(frames) == 2
    burst = frames[1]
    rows = [burst.index(f'id="conv-{conversation.pk}"') for conversation, _ in written]
    notes = [burst.index(f'id="notify" hidden data-id="{message.pk}"') for _, message in written]
    assert rows == sorted(rows) and notes == sorted(notes)
    assert burst.count('id="live-staging"') == 3
    assert burst.count('id="unread-total"') == 1
    assert '<span id="unread-total" data-count="3" hidden>' in burst
    assert burst.count('id="nav-unread"') == 1
    # Where the last update had them: after its row, before its notification.
    assert rows[-1] < burst.index('id="unread-total"') < notes[-1]
    await bob.disconnect()


async def test_an_event_this_process_sends_reaches_its_sockets_at_once_and_once(layer_kind):
    """hub_local: the process's own sockets get what it sends before the layer brings it
    back, and the layer's copy is skipped."""
    bob, ana = await sockets("bob", "ana")
    await events._inbox_send(get_channel_layer(), {"type": "list.stale", "event_id": "own1"})
    for communicator in (bob, ana):
        assert await communicator.receive_from(timeout=WAIT) == consumers.LIST_STALE
    async with asyncio.timeout(WAIT):  # the layer's copy came back, and was dropped
        while the_hub().sent_here:
            await asyncio.sleep(0.02)
    for communicator in (bob, ana):
        assert await communicator.receive_nothing(timeout=0.3)
        await communicator.disconnect()


async def test_the_own_sockets_do_not_wait_for_the_layer(layer_kind, monkeypatch):
    (bob,) = await sockets("bob")

    async def lost(group, message):  # a layer that never delivers
        return None

    monkeypatch.setattr(get_channel_layer(), "group_send", lost)
    monkeypatch.setattr(hub, "SENT_HERE_MAX", 3)
    for n in range(5):
        await events._inbox_send(get_channel_layer(), {"type": "list.stale", "event_id": f"n{n}"})
    await frames_of(bob, consumers.LIST_STALE * 5)
    # Copies that never come back are forgotten past SENT_HERE_MAX, the oldest first.
    assert list(the_hub().sent_here) == ["n2", "n3", "n4"]
    await bob.disconnect()


async def test_a_socket_handles_the_hub_s_events_and_its_page_s_messages_one_at_a_time(
    layer_kind, monkeypatch
):
    """The consumer's serial lock: a watch from the page waits for the event being handled
    (the hub's events come on a task of their own, not through Channels' one loop)."""
    (bob,) = await sockets("bob")
    steps = []
    list_stale = InboxConsumer.list_stale
    receive_json = InboxConsumer.receive_json

    async def slow(self, event):
        steps.append("event starts")
        await asyncio.sleep(0.3)
        steps.append("event ends")
        await list_stale(self, event)

    async def page(self, content, **kwargs):
        steps.append(f"page: {content.get('type')}")
        await receive_json(self, content, **kwargs)

    monkeypatch.setattr(InboxConsumer, "list_stale", slow)
    monkeypatch.setattr(InboxConsumer, "receive_json", page)
    await stale()
    async with asyncio.timeout(WAIT):
        while not steps:
            await asyncio.sleep(0.01)
    await bob.send_json_to({"type": "watch", "conversation": None, "view": "all", "q": ""})
    assert await bob.receive_from(timeout=WAIT) == consumers.LIST_STALE
    async with asyncio.timeout(WAIT):
        while len(steps) < 3:
            await asyncio.sleep(0.01)
    assert steps == ["event starts", "event ends", "page: watch"]
    await bob.disconnect()
