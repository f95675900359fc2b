"""/ws/inbox/ for agents limited to some channels (issue 20): Bob works on "Soporte" only, so
his socket gets no frame about a conversation on another number, nor its thread, and its
unread total counts Soporte's conversations only; Alice (an admin) gets everything, except in
a list she filtered to one number. Over the real stack (chatdesk.asgi), as tests/inbox_live's
others.

Absence is shown without timing: a frame about a conversation Bob does see is published after
the one he must not get, and it is the first frame his socket receives."""

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from chatdesk.asgi import application
from inbox import consumers
from inbox.events import EventType, event_publish, messages_created_publish
from inbox.models import Channel
from tests.conftest import make_user
from tests.inbox_live.conftest import conversation_with, message_in

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]
WAIT = 10  # an upper bound for a frame that must come, not a timing


@database_sync_to_async
def setting():
    """Bob limited to Soporte; Alice an admin; one conversation on each number."""
    alice = make_user("alice", "admin", first_name="Alice")
    bob = make_user("bob", "agent", first_name="Bob")
    soporte = Channel.objects.create(
        key="soporte", name="Soporte", provider="cloudapi", account="1"
    )
    soporte.agents.add(bob)
    ventas = conversation_with("+593968196046", "Carlos de Ventas")
    apoyo = conversation_with("+593968196047", "Diana de Soporte", channel_id="soporte")
    return alice, bob, ventas, apoyo


@database_sync_to_async
def cookie(user) -> bytes:
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


async def connected(user) -> WebsocketCommunicator:
    headers = [(b"host", b"testserver"), (b"origin", b"http://testserver")]
    headers.append((b"cookie", await cookie(user)))
    communicator = WebsocketCommunicator(application, "/ws/inbox/", headers=headers)
    assert (await communicator.connect())[0]
    return communicator


async def watch(communicator, conversation=None):
    await communicator.send_json_to({"type": "watch", "conversation": conversation, "view": "all"})
    await communicator.receive_nothing(timeout=0.2)  # a round trip: the watch is applied


@database_sync_to_async
def new_message(conversation, text: str):
    message = message_in(conversation, text)
    event_publish(EventType.MESSAGE_CREATED, conversation_id=conversation.pk, message_id=message.pk)
    return message


async def test_a_limited_agent_gets_no_frame_of_another_channels_message(channel_layer):
    alice, bob, ventas, apoyo = await setting()
    admin, limited = await connected(alice), await connected(bob)
    await watch(admin)
    await watch(limited)

    await new_message(ventas, "Quiero el combo de Ventas")
    seen = await admin.receive_from(timeout=WAIT)
    assert f'id="conv-{ventas.pk}"' in seen and "Quiero el combo de Ventas" in seen

    await new_message(apoyo, "No me funciona la cuenta")
    first = await limited.receive_from(timeout=WAIT)
    assert f'id="conv-{apoyo.pk}"' in first and "No me funciona la cuenta" in first
    assert "Ventas" not in first
    assert f'id="conv-{apoyo.pk}"' in await admin.receive_from(timeout=WAIT)
    await admin.disconnect()
    await limited.disconnect()


async def test_a_limited_agent_cannot_watch_another_channels_thread(channel_layer):
    _alice, bob, ventas, apoyo = await setting()
    limited = await connected(bob)
    await watch(limited, conversation=ventas.pk)

    message = await new_message(ventas, "Hola de Ventas")
    await database_sync_to_async(event_publish)(
        EventType.MESSAGE_STATUS, conversation_id=ventas.pk, message_id=message.pk
    )
    await database_sync_to_async(event_publish)(
        EventType.CONVERSATION_UPDATED, conversation_id=ventas.pk
    )
    await new_message(apoyo, "Hola de Soporte")
    first = await limited.receive_from(timeout=WAIT)
    assert f'id="conv-{apoyo.pk}"' in first and "Hola de Ventas" not in first
    await limited.disconnect()


async def test_a_batch_of_another_channel_tells_a_limited_agent_nothing(channel_layer):
    alice, bob, ventas, apoyo = await setting()
    admin, limited = await connected(alice), await connected(bob)
    await watch(admin)
    await watch(limited)

    @database_sync_to_async
    def batch(conversation):
        rows = [(conversation.pk, message_in(conversation, f"n{i}").pk) for i in range(25)]
        messages_created_publish(rows)

    await batch(ventas)
    assert 'id="list-stale"' in await admin.receive_from(timeout=WAIT)
    await batch(apoyo)
    assert 'id="list-stale"' in await limited.receive_from(timeout=WAIT)
    assert 'id="list-stale"' in await admin.receive_from(timeout=WAIT)
    assert await limited.receive_nothing(timeout=0.3)
    await admin.disconnect()
    await limited.disconnect()


async def watch_number(communicator, channel: str, view: str = "all"):
    await communicator.send_json_to(
        {"type": "watch", "conversation": None, "view": view, "q": "", "channel": channel}
    )
    await communicator.receive_nothing(timeout=0.2)


@database_sync_to_async
def unread(*conversations):
    for conversation in conversations:
        conversation.unread_count = 1
        conversation.save(update_fields=["unread_count"])


async def test_a_limited_agent_s_unread_total_counts_only_their_channels(channel_layer):
    """Two unread conversations, one on each number: a message on Soporte tells Bob (Soporte
    only) 1 and Alice (every number) 2, the counts their pages' first render shows too."""
    alice, bob, ventas, apoyo = await setting()
    await unread(ventas, apoyo)
    admin, limited = await connected(alice), await connected(bob)
    await watch(admin)
    await watch(limited)

    await new_message(apoyo, "¿Me ayudan?")
    frame = await limited.receive_from(WAIT)
    assert '<span id="unread-total" data-count="1" hidden>' in frame
    # The navigation's badge, in the same frame, with its words.
    assert '<span id="nav-unread" class="nav-badge" data-count="1" hx-swap-oob="true">' in frame
    assert '<span class="visually-hidden">1 conversación sin leer</span>' in frame
    frame = await admin.receive_from(WAIT)
    assert '<span id="unread-total" data-count="2" hidden>' in frame
    assert '<span class="visually-hidden">2 conversaciones sin leer</span>' in frame
    await database_sync_to_async(event_publish)(
        EventType.CONVERSATION_UPDATED, conversation_id=apoyo.pk
    )
    assert '<span id="unread-total" data-count="1" hidden>' in await limited.receive_from(WAIT)
    assert '<span id="unread-total" data-count="2" hidden>' in await admin.receive_from(WAIT)
    await admin.disconnect()
    await limited.disconnect()


async def test_agents_on_the_same_channels_share_one_render(channel_layer):
    """Bob and Beto both work on Soporte only: one render (one query) serves both sockets."""
    _alice, bob, _ventas, apoyo = await setting()

    @database_sync_to_async
    def beto_on_soporte():
        beto = make_user("beto", "agent", first_name="Beto")
        Channel.objects.get(key="soporte").agents.add(beto)
        return beto

    first, second = await connected(bob), await connected(await beto_on_soporte())
    await watch(first)
    await watch(second)
    consumers._renders.clear()
    await new_message(apoyo, "Hola a los dos")
    assert await first.receive_from(WAIT) == await second.receive_from(WAIT)
    assert len(consumers._renders) == 1  # the communicators run in this process
    await first.disconnect()
    await second.disconnect()


async def test_a_list_filtered_to_one_number_gets_no_row_of_another(channel_layer):
    """Alice's list shows Soporte only: a message on the other number removes (never inserts)
    its row there, while her other tab, unfiltered, gets the row. The unread total is still
    every number's: it says what waits for her, not what the list shows. A browser
    notification comes only for a number the list shows."""
    alice, _bob, ventas, apoyo = await setting()
    await unread(ventas, apoyo)
    filtered, everything = await connected(alice), await connected(alice)
    await watch_number(filtered, "soporte")
    await watch(everything)

    ventas_message = await new_message(ventas, "Quiero el combo de Ventas")
    frame = await filtered.receive_from(WAIT)
    assert 'data-op="upsert"' not in frame
    assert 'data-op="remove"' in frame and f'data-id="conv-{ventas.pk}"' in frame
    assert '<span id="unread-total" data-count="2" hidden>' in frame
    assert 'data-count="2" hx-swap-oob="true">' in frame  # the badge: every number too
    # No browser notification for a number she filtered away; her other tab gets one.
    assert 'id="notify"' not in frame
    frame = await everything.receive_from(WAIT)
    assert 'data-op="upsert"' in frame and f'id="conv-{ventas.pk}"' in frame
    assert f'<div id="notify" hidden data-id="{ventas_message.pk}"' in frame

    apoyo_message = await new_message(apoyo, "No me funciona la cuenta")
    frame = await filtered.receive_from(WAIT)
    assert 'data-op="upsert"' in frame and f'id="conv-{apoyo.pk}"' in frame
    assert f'<div id="notify" hidden data-id="{apoyo_message.pk}"' in frame
    assert f'id="conv-{apoyo.pk}"' in await everything.receive_from(WAIT)
    await filtered.disconnect()
    await everything.disconnect()


async def test_a_number_filter_combines_with_the_view(channel_layer):
    """The "Nuevas" view on Soporte: a new conversation on the other number stays out too
    (the filtered query decides, not the row in hand)."""
    alice, _bob, ventas, apoyo = await setting()
    communicator = await connected(alice)
    await watch_number(communicator, "soporte", view="new")
    await new_message(ventas, "Hola de Ventas")
    frame = await communicator.receive_from(WAIT)
    assert 'data-op="remove"' in frame and 'data-op="upsert"' not in frame
    await new_message(apoyo, "Hola de Soporte")
    frame = await communicator.receive_from(WAIT)
    assert 'data-op="upsert"' in frame and f'id="conv-{apoyo.pk}"' in frame
    await communicator.disconnect()
