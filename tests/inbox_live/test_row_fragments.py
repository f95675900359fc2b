"""A customer's message stored by the one-statement path carries its list row and notification,
rendered once by the process that stored it (inbox/rows.py): the sockets of the audience most
agents are send them at once, the totals after; every other audience renders its own."""

import asyncio

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.db import connection
from django.utils import timezone

from chatdesk.asgi import application
from inbox import consumers, live, rows, services
from inbox.models import Conversation, Message
from tests.conftest import make_user
from tests.inbox_live.conftest import HOSTILE, conversation_with, message_in
from tests.inbox_live.test_consumers import ORIGIN, WAIT, session_cookie, watch
from tests.inbox_live.test_hub import handed_count, until_handed

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


def needs_postgresql():
    if connection.vendor != "postgresql":
        pytest.skip("the one-statement path is PostgreSQL's")


def store_known(conversation: Conversation, text: str, wa_id: str) -> Message:
    message, created, _ = services.message_inbound_create_known(
        phone=conversation.customer.phone,
        channel=conversation.channel_id,
        wa_id=wa_id,
        kind="text",
        body=text,
        created_at=timezone.now(),
    )
    assert created
    return message


def assigned_and_hostile() -> Conversation:
    conversation = conversation_with("+593968196046", HOSTILE, text="Hola")
    conversation.assignee = make_user("carla", "agent", first_name="Carla")
    conversation.urgent = True
    conversation.save()
    message_in(conversation, "antes")
    return conversation


def as_the_list_reads_it(message_id: int) -> tuple[str, str]:
    message = Message.objects.select_related(
        "conversation__customer", "conversation__assignee"
    ).get(pk=message_id)
    conversation = message.conversation
    language = settings.LANGUAGE_CODE  # Spanish (Ecuador)
    placed = live.staging([rows.row_op(language, conversation)])
    return placed, rows.notify_html(language, message, conversation)


async def test_the_row_it_carries_is_the_one_the_list_would_read(monkeypatch):
    needs_postgresql()
    published = []
    monkeypatch.setattr(services, "message_created_publish", lambda **e: published.append(e))
    conversation = await database_sync_to_async(assigned_and_hostile)()
    message = await database_sync_to_async(store_known)(conversation, "<b>renovar</b>", "W1")
    (event,) = published
    fragments = event["fragments"]
    row, notify = await database_sync_to_async(as_the_list_reads_it)(message.pk)
    assert (fragments["placed"], fragments["notify"]) == (row, notify)
    assert (fragments["language"], fragments["channel"]) == ("es-ec", conversation.channel_id)
    assert "→ Carla" in row and "unread" in row and "urgent" in row
    assert HOSTILE not in row + notify and "<b>renovar" not in row + notify


async def socket_as(username: str, *, language: str = ""):
    cookie = await session_cookie(username, "agent")
    if language:
        cookie += f"; django_language={language}".encode()
    headers = [(b"host", b"testserver"), (b"origin", ORIGIN), (b"cookie", cookie)]
    communicator = WebsocketCommunicator(application, "/ws/inbox/", headers=headers)
    assert (await communicator.connect())[0]
    return communicator


async def test_the_whole_list_in_spanish_gets_the_row_at_once_and_the_totals_after(
    channel_layer,
):
    needs_postgresql()
    conversation = await database_sync_to_async(assigned_and_hostile)()
    bob = await socket_as("bob")
    await watch(bob)
    message = await database_sync_to_async(store_known)(conversation, "Quiero renovar", "W2")
    row, notify = await database_sync_to_async(as_the_list_reads_it)(message.pk)
    first = await bob.receive_from(timeout=WAIT)
    assert row in first and notify in first and "unread-total" not in first
    totals = await bob.receive_from(timeout=WAIT)
    assert totals.startswith('<span id="unread-total" data-count="1" hidden></span>')
    await bob.disconnect()


async def test_other_audiences_render_their_own(channel_layer):
    needs_postgresql()
    conversation = await database_sync_to_async(assigned_and_hostile)()
    english = await socket_as("ann", language="en")
    await watch(english)
    new_only = await socket_as("eva")
    await watch(new_only, view="new")
    other_number = await socket_as("ivo")
    await other_number.send_json_to(
        {"type": "watch", "conversation": None, "view": "all", "q": "", "channel": "otro"}
    )
    await other_number.receive_nothing(timeout=0.2)
    await database_sync_to_async(store_known)(conversation, "Quiero renovar", "W3")
    frames = {}
    for name, communicator in (("english", english), ("new only", new_only)):
        # One frame: the row, the totals and the notification, rendered by the socket.
        html = frames[name] = await communicator.receive_from(timeout=WAIT)
        assert 'id="unread-total"' in html and 'id="notify"' in html
        assert f'id="conv-{conversation.pk}"' in html
    assert 'title="New"' in frames["english"] and 'title="Nuevo"' in frames["new only"]
    # A list showing another number: the row leaves it, and no notification.
    html = await other_number.receive_from(timeout=WAIT)
    assert f'data-id="conv-{conversation.pk}"' in html and 'id="notify"' not in html
    for communicator in (english, new_only, other_number):
        await communicator.disconnect()


async def test_a_row_from_another_process_arrives_as_plain_text_and_is_sent_as_html(
    channel_layer,
):
    """Through Redis the rendered row comes as plain text (msgpack keeps no "safe" mark): the
    socket still sends it as the HTML it is, not escaped. CI's first run of this path showed a
    second daphne's page an escaped row."""
    from channels.layers import get_channel_layer

    conversation = await database_sync_to_async(assigned_and_hostile)()
    message = await database_sync_to_async(
        lambda: Message.objects.select_related(
            "conversation__customer", "conversation__assignee"
        ).get(body="antes")
    )()
    fragments = await database_sync_to_async(rows.list_fragments)(message)
    plain = {key: value[:] for key, value in fragments.items()}  # plain str, as msgpack gives
    assert all(type(value) is str for value in plain.values())
    bob = await socket_as("bob")
    await watch(bob)
    await get_channel_layer().group_send(
        "inbox",
        {
            "type": "message.created",
            "group": "inbox",
            "conversation_id": conversation.pk,
            "message_id": message.pk,
            "event_id": "from-elsewhere",
            "fragments": plain,
        },
    )
    first = await bob.receive_from(timeout=WAIT)
    assert f'<a id="conv-{conversation.pk}"' in first and "&lt;a id=" not in first
    assert f'<div id="notify" hidden data-id="{message.pk}"' in first
    assert HOSTILE not in first  # the customer's name stays escaped inside it
    await bob.disconnect()


async def rows_held_then_released(bob, written, after: tuple = ()) -> str:
    """`written`'s rows (then the events `after`) sent while Bob's socket is held on a
    list.stale (held_socket): the frame they leave in once it is let go."""
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    handed = handed_count(bob.monkeypatch)
    await layer.group_send("inbox", {"type": "list.stale", "event_id": "held"})
    async with asyncio.timeout(WAIT):
        await bob.held.wait()
    for n, (conversation_id, message_id, fragments) in enumerate(written):
        await layer.group_send(
            "inbox",
            {
                "type": "message.created",
                "group": "inbox",
                "conversation_id": conversation_id,
                "message_id": message_id,
                "event_id": f"burst-{n}",
                "fragments": fragments,
            },
        )
    for event in after:
        await layer.group_send("inbox", event)
    await until_handed(handed, 1 + len(written) + len(after))  # the held one too
    bob.gate.set()
    assert await bob.receive_from(timeout=WAIT) == consumers.LIST_STALE
    return await bob.receive_from(timeout=WAIT)


async def held_socket(monkeypatch):
    held, gate = asyncio.Event(), asyncio.Event()

    async def list_stale(self, event):
        held.set()
        await gate.wait()
        await self.send(consumers.LIST_STALE)

    monkeypatch.setattr(consumers.InboxConsumer, "list_stale", list_stale)
    bob = await socket_as("bob")
    await watch(bob)
    bob.held, bob.gate, bob.monkeypatch = held, gate, monkeypatch
    return bob


def written_rows(count: int) -> list:
    found = []
    for n in range(count):
        conversation = conversation_with(f"+59399765430{n}", f"Cliente {n}", unread_count=1)
        message = message_in(conversation, f"Mensaje {n}")
        found.append((conversation.pk, message.pk, rows.list_fragments(message)))
    return found


async def test_a_frame_of_several_rows_reads_the_totals_once(channel_layer, monkeypatch):
    """Rows that waited for a socket leave in one frame (inbox/hub.py): in order, each with its
    notification, and the totals read once, after them all, not once per row."""
    needs_postgresql()
    reads = []
    counters = consumers._counters

    async def counted(language, keys):
        reads.append(keys)
        return await counters(language, keys)

    monkeypatch.setattr(consumers, "_counters", counted)
    written = await database_sync_to_async(written_rows)(3)
    bob = await held_socket(monkeypatch)
    burst = await rows_held_then_released(bob, written)
    places = [burst.index(f'id="conv-{conversation_id}"') for conversation_id, _, _ in written]
    notes = [burst.index(f'id="notify" hidden data-id="{m}"') for _, m, _ in written]
    assert places == sorted(places) and notes == sorted(notes)
    assert len(reads) == 1 and burst.count('id="unread-total"') == 1
    assert '<span id="unread-total" data-count="3" hidden>' in burst
    assert burst.index('id="unread-total"') > notes[-1]
    await bob.disconnect()


async def test_a_frame_whose_totals_cannot_be_read_keeps_its_rows_and_resyncs(
    channel_layer, monkeypatch
):
    needs_postgresql()

    async def failing(language, keys):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(consumers, "_counters", failing)
    written = await database_sync_to_async(written_rows)(2)
    bob = await held_socket(monkeypatch)
    burst = await rows_held_then_released(bob, written)
    assert all(f'id="conv-{conversation_id}"' in burst for conversation_id, _, _ in written)
    assert burst.endswith(consumers.RESYNC) and 'id="unread-total"' not in burst
    await bob.disconnect()


async def test_totals_read_with_a_later_update_in_the_frame_are_the_ones_it_keeps(
    channel_layer, monkeypatch
):
    """A row from its fragments, then another conversation's update (rendered by the socket,
    its totals read with it): the frame keeps that update's totals, and reads none more."""
    needs_postgresql()
    reads = []
    monkeypatch.setattr(consumers, "_counters", lambda *a: reads.append(a))
    written = await database_sync_to_async(written_rows)(2)
    bob = await held_socket(monkeypatch)
    update = {
        "type": "conversation.updated",
        "group": "inbox",
        "conversation_id": written[1][0],
        "event_id": "later",
    }
    burst = await rows_held_then_released(bob, written[:1], after=(update,))
    assert reads == [] and burst.count('id="unread-total"') == 1
    assert '<span id="unread-total" data-count="2" hidden>' in burst
    assert burst.index(f'id="conv-{written[0][0]}"') < burst.index('id="unread-total"')
    await bob.disconnect()
