"""/ws/inbox/ through the same stack as chatdesk.asgi: origin check, session auth, the consumer."""

import json

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import transaction
from django.test import Client

from chatdesk.asgi import application
from inbox import conversations, rows
from inbox import gaps as gaps_module
from inbox.events import event_publish
from inbox.live import STATUS_RANK
from inbox.models import Message
from tests.conftest import make_user
from tests.inbox_live.conftest import HOSTILE, conversation_with, message_in

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]
ORIGIN = b"http://testserver"
# An upper bound for a frame that must come (a busy machine renders slowly), not a timing.
WAIT = 10


@database_sync_to_async
def session_cookie(username: str | None, role: str | None) -> bytes:
    if username is None:
        return b""
    client = Client()
    client.force_login(make_user(username, role, first_name=username.title()))
    return f"sessionid={client.cookies['sessionid'].value}".encode()


async def socket(username: str | None = "bob", role: str | None = "agent", origin=ORIGIN):
    headers = [(b"host", b"testserver"), (b"origin", origin)]
    cookie = await session_cookie(username, role)
    if cookie:
        headers.append((b"cookie", cookie))
    return WebsocketCommunicator(application, "/ws/inbox/", headers=headers)


async def watch(communicator, conversation=None, view="all", q=""):
    await communicator.send_json_to(
        {"type": "watch", "conversation": conversation, "view": view, "q": q}
    )
    # The page's watch has no answer; a round trip through the layer makes sure it is applied.
    await communicator.receive_nothing(timeout=0.2)


async def test_it_refuses_an_anonymous_socket(channel_layer):
    communicator = await socket(None)
    connected, _ = await communicator.connect()
    assert connected  # accepted only to be closed with a reason the page can read
    assert await communicator.receive_output() == {"type": "websocket.close", "code": 4401}
    await communicator.disconnect()


async def test_it_refuses_a_marketer_and_a_user_without_role(channel_layer):
    for username, role in [("carla", "marketer"), ("charlie", None)]:
        communicator = await socket(username, role)
        connected, _ = await communicator.connect()
        assert connected
        assert await communicator.receive_output() == {"type": "websocket.close", "code": 4403}
        await communicator.disconnect()


async def test_it_refuses_a_socket_from_a_foreign_origin(channel_layer):
    communicator = await socket(origin=b"https://evil.example")
    connected, _ = await communicator.connect()
    assert not connected
    await communicator.disconnect()


async def test_it_pushes_a_new_message_only_after_commit(channel_layer):
    conversation = await database_sync_to_async(conversation_with)("+593968196046", "Carlos")
    communicator = await socket()
    assert (await communicator.connect())[0]
    await watch(communicator)

    def write_and_look():
        with transaction.atomic():
            message = message_in(conversation, "¿Hay promo de Netflix?")
            event_publish("message.created", conversation_id=conversation.pk, message_id=message.pk)
            # Still inside the transaction: nothing may have left.
            assert async_to_sync(communicator.receive_nothing)(timeout=0.3)
        return message

    message = await database_sync_to_async(write_and_look)()
    html = await communicator.receive_from(timeout=WAIT)
    assert f'id="conv-{conversation.pk}"' in html
    assert "¿Hay promo de Netflix?" in html
    assert 'data-op="upsert"' in html
    assert f'data-id="{message.pk}"' in html  # the notification for an inbound message
    await communicator.disconnect()


async def test_every_list_update_carries_the_inbox_unread_total(channel_layer):
    """The row, the new message and the total come in one query (issue 19): the total must
    still be the inbox's, for a new message and for a conversation's change alike."""

    def two_unread():
        carlos = conversation_with("+593968196046", "Carlos", unread_count=1)
        conversation_with("+593968196047", "Ana", unread_count=3)
        conversation_with("+593968196048", "Luis")  # read
        return carlos, message_in(carlos, "¿Sigue la promo?")

    conversation, message = await database_sync_to_async(two_unread)()
    communicator = await socket()
    assert (await communicator.connect())[0]
    await watch(communicator)
    await database_sync_to_async(event_publish)(
        "message.created", conversation_id=conversation.pk, message_id=message.pk
    )
    html = await communicator.receive_from(timeout=WAIT)
    assert '<span id="unread-total" data-count="2" hidden>' in html
    assert f'data-id="{message.pk}"' in html
    await database_sync_to_async(event_publish)(
        "conversation.updated", conversation_id=conversation.pk
    )
    html = await communicator.receive_from(timeout=WAIT)
    assert '<span id="unread-total" data-count="2" hidden>' in html
    assert f'id="conv-{conversation.pk}"' in html
    await communicator.disconnect()


async def test_a_new_message_row_is_the_list_page_row(channel_layer):
    """The socket reads a new message's row with one statement of its own (issue 19), not the
    ORM's: the row it sends is the one the list page renders (assignee, customer, counts),
    customer text escaped."""

    def assigned():
        agent = make_user("carla", "agent", first_name="Carla")
        conversation = conversation_with(
            "+593968196046", HOSTILE, text=HOSTILE, unread_count=2, assignee=agent
        )
        return conversation, message_in(conversation, HOSTILE)

    conversation, message = await database_sync_to_async(assigned)()
    communicator = await socket()
    assert (await communicator.connect())[0]
    await watch(communicator)
    await database_sync_to_async(event_publish)(
        "message.created", conversation_id=conversation.pk, message_id=message.pk
    )
    html = await communicator.receive_from(timeout=WAIT)
    assert HOSTILE not in html
    assert "→ Carla" in html

    @database_sync_to_async
    def page_row():
        from inbox.models import Conversation

        row = Conversation.objects.select_related("customer", "assignee").get(pk=conversation.pk)
        return rows.render("es", "conv_row", {"c": row})

    assert await page_row() in html
    await communicator.disconnect()


async def test_it_pushes_nothing_for_a_rolled_back_change(channel_layer):
    conversation = await database_sync_to_async(conversation_with)("+593968196046", "Carlos")
    communicator = await socket()
    assert (await communicator.connect())[0]
    await watch(communicator)

    def write_and_roll_back():
        try:
            with transaction.atomic():
                message = message_in(conversation, "no")
                event_publish(
                    "message.created", conversation_id=conversation.pk, message_id=message.pk
                )
                raise RuntimeError("rollback")
        except RuntimeError:
            pass

    await database_sync_to_async(write_and_roll_back)()
    assert await communicator.receive_nothing(timeout=0.5)
    await communicator.disconnect()


async def test_it_sends_thread_lines_ticks_and_state_to_the_open_thread(channel_layer):
    conversation = await database_sync_to_async(conversation_with)("+593968196046", "Carlos")
    communicator = await socket()
    assert (await communicator.connect())[0]
    await watch(communicator, conversation.pk)

    def reply():
        with transaction.atomic():
            message = Message.objects.create(
                conversation=conversation,
                direction="out",
                author_kind="agent",
                body="Hola",
                status="queued",
            )
            event_publish("message.created", conversation_id=conversation.pk, message_id=message.pk)
        return message

    message = await database_sync_to_async(reply)()
    frames = [
        await communicator.receive_from(timeout=WAIT),
        await communicator.receive_from(timeout=WAIT),
    ]
    line = next(frame for frame in frames if f'id="msg-{message.pk}"' in frame)
    assert "🕓" in line and f'data-rank="{STATUS_RANK["queued"]}"' in line

    def delivered():
        with transaction.atomic():
            Message.objects.filter(pk=message.pk).update(status="delivered")
            event_publish("message.status", conversation_id=conversation.pk, message_id=message.pk)

    await database_sync_to_async(delivered)()
    tick = await communicator.receive_from(timeout=WAIT)
    # Every copy of a line says where it stands; the page keeps the furthest (docs/live.md).
    assert 'data-op="upsert"' in tick and "✓✓" in tick
    assert f'data-rank="{STATUS_RANK["delivered"]}"' in tick

    await database_sync_to_async(conversations.conversation_resolve)(conversation=conversation)
    # The list's row and the thread's head: in one frame or two, as the socket's deliveries
    # fall (inbox/hub.py gathers what comes soon after a delivery).
    text = await received_until(communicator, 'id="thread-head"', f'id="conv-{conversation.pk}"')
    head = text[text.index('id="thread-head"') :]
    assert "Resuelto" in head and "Reabrir" in head
    await communicator.disconnect()


async def test_every_copy_of_an_agents_recent_reply_carries_the_composers_reference(
    channel_layer,
):
    """The sender's page shows its reply before the server has it; whichever copy of the
    line comes first (the answer or the socket's) must say which optimistic line it is."""
    conversation = await database_sync_to_async(conversation_with)("+593968196046", "Carlos")
    communicator = await socket()
    assert (await communicator.connect())[0]
    await watch(communicator, conversation.pk)
    ref = "0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d"

    def reply():
        client = Client()
        client.force_login(make_user("ana", "agent", first_name="Ana"))
        client.post(
            f"/inbox/c/{conversation.pk}/reply/",
            {"text": "Ya va", "client_ref": ref},
            HTTP_HX_REQUEST="true",
        )
        message = Message.objects.get(direction="out")
        with transaction.atomic():
            Message.objects.filter(pk=message.pk).update(status="sent")
            event_publish("message.status", conversation_id=conversation.pk, message_id=message.pk)
        return message

    message = await database_sync_to_async(reply)()
    lines = []
    while len(lines) < 2:
        frame = await communicator.receive_from(timeout=WAIT)
        if f'id="msg-{message.pk}"' in frame:
            lines.append(frame)
    assert all(f'data-ref="{ref}"' in line for line in lines)
    # Each copy is the line as it is when rendered: here both say "sent".
    assert all(f'data-rank="{STATUS_RANK["sent"]}"' in line for line in lines)
    await communicator.disconnect()


async def test_it_removes_a_row_that_leaves_the_agents_filter(channel_layer):
    conversation = await database_sync_to_async(conversation_with)("+593968196046", "Carlos")
    communicator = await socket()
    assert (await communicator.connect())[0]
    await watch(communicator, view="new")
    await database_sync_to_async(conversations.conversation_resolve)(conversation=conversation)
    html = await communicator.receive_from(timeout=WAIT)
    assert 'data-op="remove"' in html and f'data-id="conv-{conversation.pk}"' in html
    await communicator.disconnect()


async def test_it_escapes_customer_text_in_pushed_fragments(channel_layer):
    conversation = await database_sync_to_async(conversation_with)(
        "+593968196046", HOSTILE, text=HOSTILE
    )
    communicator = await socket()
    assert (await communicator.connect())[0]
    await watch(communicator, conversation.pk)

    def hostile():
        with transaction.atomic():
            message = message_in(conversation, HOSTILE)
            event_publish("message.created", conversation_id=conversation.pk, message_id=message.pk)

    await database_sync_to_async(hostile)()
    frames = [
        await communicator.receive_from(timeout=WAIT),
        await communicator.receive_from(timeout=WAIT),
    ]
    for frame in frames:
        assert HOSTILE not in frame
        assert "&lt;img src=x onerror=alert(1)&gt;" in frame
    await communicator.disconnect()


async def test_it_tells_agents_who_else_is_viewing_and_typing(channel_layer):
    conversation = await database_sync_to_async(conversation_with)("+593968196046", "Carlos")
    bob = await socket("bob", "agent")
    ana = await socket("ana", "agent")
    assert (await bob.connect())[0] and (await ana.connect())[0]
    await bob.send_json_to({"type": "watch", "conversation": conversation.pk})
    await bob.receive_nothing(timeout=0.2)
    await ana.send_json_to({"type": "watch", "conversation": conversation.pk})
    assert "Ana está viendo esta conversación" in await bob.receive_from(timeout=WAIT)
    assert "Bob está viendo esta conversación" in await ana.receive_from(timeout=WAIT)

    await ana.send_json_to({"type": "typing"})
    assert "Ana está escribiendo…" in await bob.receive_from(timeout=WAIT)
    assert await ana.receive_nothing(timeout=0.3)  # nobody is told about themselves

    await ana.send_json_to({"type": "watch", "conversation": None})
    left = await bob.receive_from(timeout=WAIT)
    assert 'id="presence"' in left and "Ana" not in left
    await bob.disconnect()
    await ana.disconnect()


async def test_it_ignores_junk_from_the_page(channel_layer):
    communicator = await socket()
    assert (await communicator.connect())[0]
    await communicator.send_to(text_data=json.dumps(["not", "an", "object"]))
    await communicator.send_json_to({"type": "watch", "conversation": "1; drop"})
    await communicator.send_json_to({"type": "typing"})
    assert await communicator.receive_nothing(timeout=0.3)
    await communicator.disconnect()


async def test_it_shares_one_render_per_audience_between_sockets(channel_layer):
    """Two agents on "all" get the same fragment; an agent on "mine" gets their own answer."""
    conversation = await database_sync_to_async(conversation_with)("+593968196046", "Carlos")
    bob, ana, eva = await socket("bob"), await socket("ana"), await socket("eva")
    for communicator in (bob, ana, eva):
        assert (await communicator.connect())[0]
    await watch(bob)
    await watch(ana)
    await watch(eva, view="mine")

    def write():
        with transaction.atomic():
            message = message_in(conversation, "Hola a todos")
            event_publish("message.created", conversation_id=conversation.pk, message_id=message.pk)

    await database_sync_to_async(write)()
    bob_frame, ana_frame, eva_frame = [await c.receive_from(timeout=WAIT) for c in (bob, ana, eva)]
    assert bob_frame == ana_frame
    assert 'data-op="upsert"' in bob_frame and "Hola a todos" in bob_frame
    assert 'data-op="remove"' in eva_frame  # not assigned to Eva
    for communicator in (bob, ana, eva):
        await communicator.disconnect()


async def test_a_campaign_batch_tells_the_list_once_and_each_open_thread_its_line(channel_layer):
    from inbox.events import LIST_BATCH, events_publish

    conversation = await database_sync_to_async(conversation_with)("+593968196046", "Carlos")
    communicator = await socket()
    assert (await communicator.connect())[0]
    await watch(communicator, conversation.pk)

    def batch():
        with transaction.atomic():
            fields = {"direction": "out", "author_kind": "campaign", "status": "queued"}
            messages = [
                Message.objects.create(conversation=conversation, body=f"Oferta {n}", **fields)
                for n in range(LIST_BATCH + 1)
            ]
            events_publish(
                "message.created",
                [{"conversation_id": conversation.pk, "message_id": m.pk} for m in messages],
            )
        return messages

    messages = await database_sync_to_async(batch)()
    frames = [await communicator.receive_from(timeout=WAIT) for _ in range(len(messages) + 1)]
    await communicator.receive_nothing(timeout=0.5)
    assert sum('id="list-stale"' in frame for frame in frames) == 1
    assert not any('data-id="conv-' in frame or "conv-row" in frame for frame in frames)
    for message in messages:
        assert sum(f'id="msg-{message.pk}"' in frame for frame in frames) == 1
    await communicator.disconnect()


async def test_in_a_flood_the_list_is_told_to_refetch_and_the_open_thread_still_gets_lines(
    channel_layer, monkeypatch
):
    from inbox import events

    monkeypatch.setattr(events, "_budget", events._ListBudget(clock=lambda: 1000.5))  # one second
    monkeypatch.setattr(events, "FLOOD_PER_SECOND", 2)
    conversation = await database_sync_to_async(conversation_with)("+593968196046", "Carlos")
    communicator = await socket()
    assert (await communicator.connect())[0]
    await watch(communicator, conversation.pk)

    def storm():
        messages = []
        for n in range(5):
            with transaction.atomic():
                message = message_in(conversation, f"Hola {n}")
                event_publish(
                    "message.created", conversation_id=conversation.pk, message_id=message.pk
                )
            messages.append(message)
        return messages

    messages = await database_sync_to_async(storm)()
    # 2 within the budget (list row + thread line each), 3 beyond (thread line), 1 list.stale;
    # the list's events may share a frame (a socket behind gets those waiting at once).
    text = ""
    while not (
        all(f'id="msg-{message.pk}"' in text for message in messages)
        and 'id="list-stale"' in text
        and text.count('class="conv-row') >= 2
    ):
        text += await communicator.receive_from(timeout=WAIT)
    assert await communicator.receive_nothing(timeout=0.5)
    for message in messages:  # every line reached the open thread
        assert text.count(f'id="msg-{message.pk}"') == 1
    assert text.count('id="list-stale"') == 1  # once for the second
    assert text.count('class="conv-row') == 2  # the list copies within the budget
    await communicator.disconnect()


async def received_until(communicator, *needles: str) -> str:
    """The text of the frames received until every needle has come."""
    text = ""
    while not all(needle in text for needle in needles):
        text += await communicator.receive_from(timeout=WAIT)
    return text


def numbered(seq: int, source: str = "publisher-a") -> dict:
    return {"type": "list.stale", "event_id": f"e{seq}", "source": source, "seq": seq}


async def socket_hearing(messages: list[dict], monkeypatch, grace: float):
    """A connected agent socket, then `messages` sent to the inbox group as they are."""
    from channels.layers import get_channel_layer

    monkeypatch.setattr(gaps_module, "GAP_GRACE", grace)
    communicator = await socket()
    assert (await communicator.connect())[0]
    for message in messages:
        await get_channel_layer().group_send("inbox", message)
    return communicator


async def test_a_socket_that_misses_a_numbered_event_has_the_page_resync(
    channel_layer, monkeypatch
):
    from inbox import consumers

    # 2 never comes.
    communicator = await socket_hearing([numbered(1), numbered(3)], monkeypatch, 0.2)
    frames = [await communicator.receive_from(timeout=WAIT) for _ in range(3)]
    assert frames[:2] == [consumers.LIST_STALE] * 2
    assert frames[2] == consumers.RESYNC
    assert await communicator.receive_nothing(timeout=0.5)  # once, not once per check
    await communicator.disconnect()


async def test_numbers_that_arrive_late_or_from_another_publisher_are_not_a_gap(
    channel_layer, monkeypatch
):
    from inbox import consumers

    # Joined mid-count (first seen: 7); 9 before 8, as two threads of one process may send;
    # another publisher counts on its own.
    messages = [numbered(7), numbered(9), numbered(8), numbered(1, "publisher-b")]
    communicator = await socket_hearing(messages, monkeypatch, 0.3)
    text = ""
    while text.count(consumers.LIST_STALE) < 4:
        text += await communicator.receive_from(timeout=WAIT)
    assert consumers.RESYNC not in text
    assert await communicator.receive_nothing(timeout=0.8)
    await communicator.disconnect()


async def test_a_socket_that_fell_behind_and_lost_events_resyncs_at_the_next_one(
    channel_layer, settings, monkeypatch
):
    """A real loss: the socket's channel holds 2 events, a burst of 12 arrives at once."""
    from inbox import consumers

    monkeypatch.setattr(gaps_module, "GAP_GRACE", 0.2)
    settings.CHANNEL_LAYERS["default"].setdefault("CONFIG", {})["capacity"] = 2
    conversation = await database_sync_to_async(conversation_with)("+593968196046", "Carlos")
    communicator = await socket()
    assert (await communicator.connect())[0]
    await watch(communicator)

    def publish(count: int):
        with transaction.atomic():
            for n in range(count):
                message = message_in(conversation, f"Hola {n}")
                event_publish(
                    "message.created", conversation_id=conversation.pk, message_id=message.pk
                )

    await database_sync_to_async(publish)(12)
    frames = [await communicator.receive_from(timeout=WAIT)]
    while not await communicator.receive_nothing(timeout=0.5):
        frames.append(await communicator.receive_from())
    assert 0 < len([f for f in frames if f != consumers.RESYNC]) < 12  # the layer dropped some
    # The process's hub takes events off the layer as they come, so the lost ones may be in
    # the middle of the burst (noticed at once) or its end (noticed at the next number).
    if consumers.RESYNC not in frames:
        await database_sync_to_async(publish)(1)
        frames = [await communicator.receive_from(timeout=WAIT) for _ in range(2)]
    assert consumers.RESYNC in frames
    await communicator.disconnect()
