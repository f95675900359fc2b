"""message_send: validation, the outbox row, and the enqueue after commit."""

from datetime import timedelta

import dramatiq
import pytest
from django.utils import timezone

from inbox.models import Conversation, Message
from outbound import services
from outbound.services import SendRejected, message_send
from tests.outbound.helpers import enqueued


@pytest.fixture(autouse=True)
def broker_empty():
    dramatiq.get_broker().flush_all()
    yield
    dramatiq.get_broker().flush_all()


def test_it_queues_a_message_in_the_customers_conversation(db, bob):
    message = message_send(phone="0968196046", text=" Hola ", author_kind="agent", agent=bob)
    assert message.status == "queued"
    assert message.direction == "out" and message.kind == "text" and message.body == "Hola"
    assert message.conversation.customer.phone == "+593968196046"
    assert message.agent == bob
    conversation = Conversation.objects.get()
    assert conversation.last_message_preview == "Hola"


def test_it_enqueues_only_after_commit(db, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        message = message_send(phone="+593968196046", text="Hola", author_kind="api")
        assert enqueued() == []
    for callback in callbacks:
        callback()
    assert [m.args for m in enqueued()] == [(message.id,)]


def test_it_publishes_message_created(db, monkeypatch):
    seen = []
    monkeypatch.setattr(services, "message_created_publish", lambda **data: seen.append(data))
    message = message_send(phone="+593968196046", text="Hola", author_kind="api")
    assert seen == [{"conversation_id": message.conversation_id, "message_id": message.id}]


def test_it_never_moves_the_last_message_time_backward(db):
    first = message_send(phone="+593968196046", text="Primero", author_kind="api")
    # A newer message got there first (an inbound one stamped by a clock a little ahead).
    ahead = timezone.now() + timedelta(minutes=1)
    Conversation.objects.update(last_message_at=ahead, last_message_preview="Más nuevo")
    message_send(phone="+593968196046", text="Después", author_kind="api")
    assert Conversation.objects.values_list("last_message_at", "last_message_preview").get() == (
        ahead,
        "Más nuevo",
    )
    services.messages_send_bulk(
        sends=[(first.conversation.customer_id, "Campaña")], author_kind="campaign"
    )
    assert Conversation.objects.values_list("last_message_at", "last_message_preview").get() == (
        ahead,
        "Más nuevo",
    )


def test_it_moves_the_last_message_time_forward_in_bulk(db):
    first = message_send(phone="+593968196046", text="Primero", author_kind="api")
    (sent,) = services.messages_send_bulk(
        sends=[(first.conversation.customer_id, "Campaña")], author_kind="campaign"
    )
    conversation = Conversation.objects.get()
    assert conversation.last_message_at == sent.created_at
    assert conversation.last_message_preview == "Campaña"


def test_a_future_message_waits_as_scheduled(db, django_capture_on_commit_callbacks):
    later = timezone.now() + timedelta(hours=2)
    with django_capture_on_commit_callbacks(execute=True):
        message = message_send(
            phone="+593968196046", text="Más tarde", author_kind="agent", scheduled_for=later
        )
    assert message.status == "scheduled"
    assert enqueued() == []


def test_a_past_schedule_sends_now(db):
    earlier = timezone.now() - timedelta(minutes=1)
    message = message_send(
        phone="+593968196046", text="Ya", author_kind="agent", scheduled_for=earlier
    )
    assert message.status == "queued"


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("https://cdn.example.com/foto.JPG", "image"),
        ("https://cdn.example.com/v.mp4?x=1", "video"),
        ("https://cdn.example.com/nota.ogg", "audio"),
        ("https://cdn.example.com/factura.pdf", "document"),
    ],
)
def test_it_guesses_the_media_kind(db, url, kind):
    message = message_send(phone="+593968196046", media_url=url, author_kind="api")
    assert message.kind == kind and message.media_url == url


def test_it_takes_an_http_media_url_only_from_the_simulator(db, settings):
    settings.USE_SIMULATOR = True
    settings.WASENDER_BASE_URL = "http://127.0.0.1:8001/api"
    url = "http://127.0.0.1:8001/media/a.jpg"
    assert message_send(phone="+593968196046", media_url=url, author_kind="api").media_url == url
    for other in ("http://127.0.0.1:8002/media/a.jpg", "http://cdn.example.com/a.jpg"):
        with pytest.raises(SendRejected):
            message_send(phone="+593968196046", media_url=other, author_kind="api")
    settings.USE_SIMULATOR = False
    with pytest.raises(SendRejected):
        message_send(phone="+593968196046", media_url=url, author_kind="api")


@pytest.mark.parametrize(
    ("kwargs", "field", "words"),
    [
        ({"phone": "12", "text": "Hola"}, "phone", "número de teléfono no es válido"),
        ({"phone": "", "text": "Hola"}, "phone", "número de teléfono no es válido"),
        ({"phone": "+593968196046", "text": "   "}, "text", "Escribe un mensaje"),
        ({"phone": "+593968196046", "text": "x" * 4097}, "text", "4096"),
        ({"phone": "+593968196046", "media_url": "ftp://x.com/a.jpg"}, "media_url", "no es válida"),
        ({"phone": "+593968196046", "media_url": "no es url"}, "media_url", "no es válida"),
        (
            {"phone": "+593968196046", "media_url": "https://x.com/a", "media_kind": "gif"},
            "media_kind",
            "desconocido",
        ),
    ],
)
def test_it_rejects_bad_input_with_a_clear_reason(db, kwargs, field, words):
    with pytest.raises(SendRejected) as caught:
        message_send(author_kind="api", **kwargs)
    assert caught.value.field == field
    assert words in caught.value.message
    assert not Message.objects.exists()
