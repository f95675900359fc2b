"""The send actor: claim, send, record; at most once: an ambiguous outcome is never sent again
(unconfirmed), and only errors that prove nothing was sent are retried, bounded."""

import time

import dramatiq
import httpx
import pytest
from django.test import override_settings
from django.utils import timezone

from customers.models import Customer
from inbox.models import Message
from outbound import pipeline
from outbound.pipeline import backoff_delay, deliver, message_claim
from outbound.services import message_send
from tests.outbound.helpers import NoWait, Script, client_for, enqueued, sent_ok

PHONE = "+593968196046"


@pytest.fixture(autouse=True)
def broker_empty():
    dramatiq.get_broker().flush_all()
    yield
    dramatiq.get_broker().flush_all()


@pytest.fixture
def events(monkeypatch):
    seen = []
    monkeypatch.setattr(pipeline, "message_status_publish", lambda **data: seen.append(data))
    return seen


@pytest.fixture
def queued(db):
    return message_send(phone=PHONE, text="Hola", author_kind=Message.Author.API)


def run(message, *responses, bucket=None):
    script = Script(*responses)
    outcome = deliver(message.id, client=client_for(script), bucket=bucket or NoWait())
    message.refresh_from_db()
    return outcome, script


def test_it_sends_and_records_the_provider_id(queued):
    outcome, script = run(queued, sent_ok(4242))
    assert outcome == "sent"
    assert queued.status == "sent"
    assert queued.provider_msg_id == 4242
    assert queued.sent_at is not None and queued.sending_at is not None
    assert queued.attempts == 1
    assert script.bodies() == [{"to": PHONE, "text": "Hola"}]


def test_it_sends_media_by_url_with_the_caption(db):
    message = message_send(
        phone=PHONE,
        text="Mira",
        media_url="https://cdn.example.com/a.jpg",
        author_kind=Message.Author.AGENT,
    )
    _, script = run(message, sent_ok())
    assert script.bodies() == [
        {"to": PHONE, "text": "Mira", "imageUrl": "https://cdn.example.com/a.jpg"}
    ]


def test_it_publishes_each_status(queued, events):
    run(queued, sent_ok())
    assert [e["status"] for e in events] == ["sending", "sent"]
    assert events[0]["message_id"] == queued.id
    assert events[0]["conversation_id"] == queued.conversation_id


def test_only_one_of_two_claimers_wins(queued):
    first = Message.objects.get(id=queued.id)
    second = Message.objects.get(id=queued.id)
    assert message_claim(first) is True
    assert message_claim(second) is False
    queued.refresh_from_db()
    assert queued.status == "sending"
    assert queued.attempts == 1


def test_it_leaves_a_row_someone_else_claimed(queued):
    Message.objects.filter(id=queued.id).update(status="sending")
    outcome, script = run(queued, sent_ok())
    assert outcome == "skipped"
    assert script.requests == []


def test_it_never_sends_a_row_already_sent(queued):
    run(queued, sent_ok())
    outcome, script = run(queued, sent_ok())
    assert outcome == "skipped"
    assert script.requests == []


def test_a_permanent_error_fails_with_the_providers_reason(queued, events):
    rejected = httpx.Response(
        422,
        json={
            "success": False,
            "message": "Validation failed",
            "errors": {"to": ["The to field is invalid."]},
        },
    )
    outcome, _ = run(queued, rejected)
    assert outcome == "failed"
    assert queued.status == "failed"
    assert queued.failed_at is not None
    assert "The to field is invalid." in queued.failure_reason
    assert enqueued() == [] and enqueued(delayed=True) == []
    assert events[-1]["status"] == "failed"


def test_it_fails_a_permanent_error_after_the_sweeper_marked_it_unknown(queued, events):
    def slow_then_rejected(request):
        # The sweeper gave up on the send while the provider was still answering.
        Message.objects.filter(id=queued.id).update(status="unknown")
        return httpx.Response(
            422, json={"success": False, "message": "The number is not registered on WhatsApp"}
        )

    outcome = deliver(queued.id, client=client_for(slow_then_rejected), bucket=NoWait())
    queued.refresh_from_db()
    assert outcome == "failed"
    assert queued.status == "failed" and queued.failed_at is not None
    assert queued.failure_reason == "El número no tiene WhatsApp"
    assert events[-1]["status"] == "failed"


def test_a_number_without_whatsapp_fails_in_spanish(queued):
    missing = httpx.Response(
        422, json={"success": False, "message": "The number is not registered on WhatsApp"}
    )
    run(queued, missing)
    assert queued.status == "failed"
    assert queued.failure_reason == "El número no tiene WhatsApp"


def test_a_connection_that_never_opened_requeues_with_a_delay(queued, events):
    outcome, _ = run(queued, httpx.ConnectError("refused"))
    assert outcome == "retry"
    assert queued.status == "queued"
    assert queued.attempts == 1
    assert queued.failure_reason == "No se pudo conectar con WaSender."
    [retry] = enqueued(delayed=True)
    assert retry.args == (queued.id,)
    assert retry.options["eta"] >= time.time() * 1000 + 4000
    assert events[-1]["status"] == "queued"


@pytest.mark.parametrize(
    "answer",
    [
        httpx.ReadTimeout("slow"),
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
        httpx.ReadError("Connection reset by peer"),
        httpx.WriteError("Broken pipe"),
        httpx.Response(503, json={"success": False, "message": "down"}),
        httpx.Response(502, text="<html>Bad Gateway</html>"),
        httpx.Response(200, text="OK"),
        httpx.Response(200, json={"success": True, "data": {"status": "in_progress"}}),
    ],
    ids=["read timeout", "dropped", "reset", "write error", "503", "502 html", "not json", "no id"],
)
def test_an_ambiguous_answer_leaves_it_unconfirmed_and_never_resends(queued, events, answer):
    outcome, script = run(queued, answer)
    assert outcome == "unconfirmed"
    assert queued.status == "unconfirmed"
    assert queued.failure_reason.startswith("Sin confirmar (")
    assert "no se reenvía" in queued.failure_reason
    assert enqueued() == [] and enqueued(delayed=True) == []
    assert events[-1]["status"] == "unconfirmed"
    again, script = run(queued, sent_ok())
    assert again == "skipped" and script.requests == []


def test_a_failed_upload_of_our_attachment_is_retried(db, tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path
    (tmp_path / "a.pdf").write_bytes(b"%PDF-1.4")
    message = message_send(phone=PHONE, text="Factura", author_kind=Message.Author.AGENT)
    Message.objects.filter(pk=message.pk).update(kind="document", media_file="a.pdf")
    outcome, script = run(message, httpx.Response(503, json={"success": False}))
    assert outcome == "retry" and message.status == "queued"
    assert [r.url.path for r in script.requests] == ["/api/upload"]


def test_a_retry_succeeds_later(queued):
    run(queued, httpx.ConnectTimeout("no route"))
    outcome, _ = run(queued, sent_ok(77))
    assert outcome == "sent"
    assert queued.attempts == 2
    assert queued.failure_reason == ""


def test_429_honours_retry_after_for_every_worker(queued):
    limited = httpx.Response(
        429, json={"message": "You can only send 1 message every 1 minute.", "retry_after": 60}
    )
    bucket = NoWait()
    run(queued, limited, bucket=bucket)
    assert bucket.holds == [("default", 60.0)]
    [retry] = enqueued(delayed=True)
    assert retry.options["eta"] >= time.time() * 1000 + 59_000


@override_settings(SEND_MAX_ATTEMPTS=3)
def test_it_gives_up_after_max_attempts_with_a_reason(queued):
    Message.objects.filter(id=queued.id).update(attempts=2)
    outcome, _ = run(queued, httpx.ConnectError("refused"))
    assert outcome == "failed"
    assert queued.status == "failed"
    assert queued.attempts == 3
    assert queued.failure_reason.startswith("No se pudo enviar tras 3 intentos: ")
    assert "conectar" in queued.failure_reason
    assert enqueued(delayed=True) == []


def test_a_marketing_message_of_a_customer_who_opted_out_is_cancelled_not_sent(db, events):
    message = message_send(phone=PHONE, text="Promo", author_kind="campaign", marketing=True)
    Customer.objects.filter(phone=PHONE).update(marketing_opt_out_at=timezone.now())
    outcome, script = run(message, sent_ok())
    assert outcome == "cancelled" and script.requests == []
    assert message.status == "cancelled"
    assert message.failure_reason == "Cancelado: el cliente se dio de baja de la publicidad."
    assert events[-1]["status"] == "cancelled"


def test_a_notification_still_reaches_a_customer_who_opted_out_of_marketing(db):
    message = message_send(phone=PHONE, text="Tu Netflix vence mañana", author_kind="reminder")
    Customer.objects.filter(phone=PHONE).update(marketing_opt_out_at=timezone.now())
    outcome, _ = run(message, sent_ok())
    assert outcome == "sent"


def test_a_missing_token_puts_the_message_back_unclaimed(queued, monkeypatch):
    class Closed(NoWait):
        def try_acquire(self, key):
            return 30.0

    monkeypatch.setattr(pipeline, "TOKEN_MAX_WAIT", 0.0)
    outcome = deliver(queued.id, client=None, bucket=Closed(), sleep=lambda s: None)
    assert outcome == "deferred"
    queued.refresh_from_db()
    assert queued.status == "queued" and queued.attempts == 0
    assert [m.args for m in enqueued()] == [(queued.id,)]


@override_settings(SEND_RETRY_BASE_SECONDS=5, SEND_RETRY_MAX_SECONDS=300)
def test_backoff_doubles_up_to_the_cap():
    no_jitter = lambda: 0.0  # noqa: E731
    assert [backoff_delay(n, rand=no_jitter) for n in (1, 2, 3, 7, 20)] == [5, 10, 20, 300, 300]
    assert backoff_delay(1, rand=lambda: 1.0) == 6.0


@override_settings(SEND_RETRY_BASE_SECONDS=5, SEND_RETRY_MAX_SECONDS=300)
def test_backoff_is_never_sooner_than_retry_after():
    assert backoff_delay(1, 60, rand=lambda: 0.0) == 60
    assert backoff_delay(6, 60, rand=lambda: 0.0) == 160
