"""The worker's batches: raw events a busy web process stored, claimed many at a time (SKIP
LOCKED) and applied in one transaction, with the rows the one-by-one path gives."""

import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from customers.services import customer_get_or_create
from inbox import intake, services
from inbox.models import Conversation, Message, WebhookEvent
from inbox.services import conversation_get_or_create
from outbound.models import InboundReaction
from tests.inbox.conftest import outbound_row

# PostgreSQL's alone (tests/conftest.py: skipped on SQLite, failed in CI).
pytestmark = pytest.mark.usefixtures("postgres")

T0 = int(datetime(2026, 3, 2, 15, 0, tzinfo=UTC).timestamp())
PHONES = [f"5939911100{i:02d}" for i in range(6)]


def message_body(wa_id: str, phone: str, text: str = "Hola", at: int = T0) -> dict:
    return {
        "event": "messages.received",
        "timestamp": at,
        "data": {
            "messages": {
                "key": {
                    "id": wa_id,
                    "fromMe": False,
                    "remoteJid": f"{phone}@s.whatsapp.net",
                    "cleanedSenderPn": phone,
                },
                "pushName": "Alice",
                "messageTimestamp": at,
                "messageBody": text,
            }
        },
    }


def status_body(wa_id: str, status, at: int = T0, phone: str = PHONES[0]) -> dict:
    return {
        "event": "messages.update",
        "timestamp": at,
        "data": {
            "update": {"status": status},
            "key": {"remoteJid": f"{phone}@s.whatsapp.net", "id": wa_id, "fromMe": True},
        },
    }


def known_customers(count: int = len(PHONES)) -> list[Conversation]:
    conversations = []
    for phone in PHONES[:count]:
        customer, _ = customer_get_or_create(phone=phone, name="Alice")
        conversations.append(conversation_get_or_create(customer=customer))
    return conversations


def stored(*bodies: dict) -> list[WebhookEvent]:
    """Raw events as webhook_event_accept leaves them during a burst."""
    return [intake.webhook_event_store(payload=body) for body in bodies]


def mixed_backlog(failure: bool) -> list[WebhookEvent]:
    """Known customers' messages (one delivered twice), a new customer's, statuses of our sends
    out of order and repeated, a status of a send not stored yet, and perhaps a failure (the
    general path: the batch keeps the events' order)."""
    known_customers(4)
    for n, phone in enumerate(PHONES[:3]):
        outbound_row(phone=phone, wa_id=f"OUT{n}", at=datetime(2026, 3, 2, 14, tzinfo=UTC))
    bodies = [
        message_body("IN1", PHONES[0], "uno", T0),
        status_body("OUT0", "read", T0 + 20),
        message_body("IN2", PHONES[1], "dos", T0 + 1),
        status_body("OUT0", "delivered", T0 + 10),
        message_body("IN1", PHONES[0], "uno", T0),  # delivered twice
        status_body("OUT1", "delivered", T0 + 11),
        message_body("IN3", "593991119999", "soy nuevo", T0 + 2),  # a new customer
        status_body("OUT1", "delivered", T0 + 12),
        status_body("OUT2", "error" if failure else "read", T0 + 5),
        status_body("OUT2", "delivered", T0 + 6),
        status_body("LATER", "delivered", T0 + 7),  # its send is not stored yet
        message_body("IN4", PHONES[0], "cuatro", T0 + 3),
        message_body("IN5", PHONES[3], "cinco", T0 + 4),
    ]
    return stored(*bodies)


def snapshot() -> dict:
    """Everything the events changed, by natural keys (no ids: two runs give other ids)."""
    messages = {
        m["wa_id"]: m
        for m in Message.objects.values(
            "wa_id",
            "conversation__customer__phone",
            "direction",
            "status",
            "body",
            "created_at",
            "sent_at",
            "delivered_at",
            "read_at",
            "failed_at",
        )
    }
    conversations = {
        c["customer__phone"]: c
        for c in Conversation.objects.values(
            "customer__phone", "status", "unread_count", "last_message_at", "last_message_preview"
        )
    }
    events = [
        (e.payload.get("data", {}), e.state, e.error, e.attempts, e.retry_at is not None)
        for e in WebhookEvent.objects.order_by("pk")
    ]
    reactions = sorted(InboundReaction.objects.values_list("message__wa_id", flat=True))
    return {"messages": messages, "conversations": conversations, "events": events, "r": reactions}


def everything_deleted() -> None:
    for model in (InboundReaction, WebhookEvent, Message, Conversation):
        model.objects.all().delete()
    from customers.models import Customer

    Customer.objects.all().delete()


@pytest.mark.parametrize("failure", [True, False])
def test_a_mixed_backlog_applied_in_batches_gives_the_rows_one_by_one_gives(db, failure):
    for event in mixed_backlog(failure):
        intake.webhook_event_handle(event.pk)
    one_by_one = snapshot()
    everything_deleted()

    mixed_backlog(failure)
    assert intake.webhook_events_apply() == 13
    assert snapshot() == one_by_one
    assert one_by_one["messages"]["OUT0"]["status"] == "read"
    assert one_by_one["messages"]["OUT2"]["status"] == ("failed" if failure else "read")
    assert one_by_one["conversations"]["+" + PHONES[0]]["unread_count"] == 2


def test_a_backlog_of_messages_and_statuses_is_applied_in_few_statements(db):
    known_customers()
    sends = [outbound_row(phone=phone, wa_id=f"OUT{n}") for n, phone in enumerate(PHONES)]
    bodies = []
    for n, (phone, send) in enumerate(zip(PHONES, sends, strict=True)):
        bodies += [message_body(f"IN{n}", phone), status_body(send.wa_id, "delivered", T0)]
        bodies += [message_body(f"IN{n}b", phone), status_body(send.wa_id, "read", T0 + 1)]
    stored(*bodies)
    with CaptureQueriesContext(connection) as queries:
        assert intake.webhook_events_apply() == 24
    # One per message, two for all the statuses, the claim and the events' update (and the
    # transaction's own): where one by one took seven or more per event.
    assert len(queries) <= 12 + 2 + 2 + 3
    assert set(WebhookEvent.objects.values_list("state", flat=True)) == {"processed"}
    assert set(Message.objects.filter(direction="out").values_list("status", flat=True)) == {"read"}
    assert Message.objects.filter(direction="in").count() == 12


def test_statuses_out_of_order_in_one_batch_end_at_the_furthest(db, monkeypatch):
    known_customers(1)
    send = outbound_row(phone=PHONES[0], wa_id="OUT0", status="sent")
    failed = outbound_row(phone=PHONES[0], wa_id="OUT1", status="failed")
    published = []
    monkeypatch.setattr(services, "events_publish", lambda kind, events: published.append(events))
    stored(
        status_body("OUT0", "read", T0 + 30),
        status_body("OUT0", "delivered", T0 + 20),
        status_body("OUT0", 3, T0 + 10),  # delivered again, reported earlier
        status_body("OUT0", "sent", T0 + 40),
        status_body("OUT1", "delivered", T0 + 5),
    )
    intake.webhook_events_apply()
    send.refresh_from_db()
    failed.refresh_from_db()
    assert send.status == "read"
    assert send.delivered_at == datetime.fromtimestamp(T0 + 10, UTC)
    assert send.read_at == datetime.fromtimestamp(T0 + 30, UTC)
    assert failed.status == "failed"  # an error is final
    assert published == [[{"conversation_id": send.conversation_id, "message_id": send.pk}]]
    # A late delivered, in a later batch, moves nothing back.
    stored(status_body("OUT0", "delivered", T0 + 50))
    intake.webhook_events_apply()
    send.refresh_from_db()
    assert (send.status, len(published)) == ("read", 1)


def test_a_status_of_a_send_not_stored_yet_waits_for_its_retry(db, monkeypatch):
    retries = []
    monkeypatch.setattr(intake, "_retry_enqueue", lambda pk, delay: retries.append(pk))
    (event,) = stored(status_body("LATER", "delivered"))
    intake.webhook_events_apply()
    event.refresh_from_db()
    assert (event.state, event.attempts, retries) == ("pending", 1, [event.pk])
    assert intake.webhook_events_apply() == 0  # tried once: the retry's, not a batch's
    outbound_row(phone=PHONES[0], wa_id="LATER")
    intake.webhook_event_retry(event.pk, now=event.retry_at)
    assert Message.objects.get(wa_id="LATER").status == "delivered"


def test_duplicates_in_a_batch_and_across_batches_store_and_count_once(db):
    (conversation,) = known_customers(1)
    stored(message_body("IN1", PHONES[0]), message_body("IN1", PHONES[0]))
    intake.webhook_events_apply()
    stored(message_body("IN1", PHONES[0]))
    intake.webhook_events_apply()
    conversation.refresh_from_db()
    assert Message.objects.filter(wa_id="IN1").count() == 1
    assert conversation.unread_count == 1
    assert InboundReaction.objects.count() == 1
    errors = list(WebhookEvent.objects.order_by("pk").values_list("state", "error"))
    assert errors == [("processed", ""), *[("processed", intake.DUPLICATE)] * 2]


def test_a_bad_event_in_a_batch_is_marked_failed_alone(db, monkeypatch):
    known_customers(1)
    outbound_row(phone=PHONES[0], wa_id="OUT0")
    events = stored(
        message_body("IN1", PHONES[0]),
        message_body("NEW1", "593991119999"),  # the general path: made to fail
        status_body("OUT0", "read"),
        message_body("IN2", PHONES[0]),
    )
    real = intake._outcome

    def broken(event):
        if event.pk == events[1].pk:
            raise RuntimeError("la base de datos se fue a almorzar")
        return real(event)

    monkeypatch.setattr(intake, "_outcome", broken)
    assert intake.webhook_events_apply() == 4
    states = dict(WebhookEvent.objects.values_list("pk", "state"))
    assert [states[e.pk] for e in events] == ["processed", "failed", "processed", "processed"]
    assert WebhookEvent.objects.get(pk=events[1].pk).attempts == 1
    assert sorted(Message.objects.values_list("wa_id", flat=True)) == ["IN1", "IN2", "OUT0"]
    assert Message.objects.get(wa_id="OUT0").status == "read"
    assert Conversation.objects.get(customer__phone="+" + PHONES[0]).unread_count == 2


def test_a_batch_that_fails_at_its_end_is_applied_again_without_counting_twice(db, monkeypatch):
    (conversation,) = known_customers(1)
    stored(message_body("IN1", PHONES[0]), message_body("IN2", PHONES[0]))
    real = intake._batch_apply

    def crash_after(events, now):
        real(events, now)
        raise ConnectionError("the worker's connection dropped before the commit")

    monkeypatch.setattr(intake, "_batch_apply", crash_after)
    intake.webhook_events_apply()
    conversation.refresh_from_db()
    assert conversation.unread_count == 2
    assert InboundReaction.objects.count() == 2
    assert set(WebhookEvent.objects.values_list("state", flat=True)) == {"processed"}


@pytest.mark.django_db(transaction=True)
def test_two_workers_claiming_at_once_never_take_the_same_event(monkeypatch):
    known_customers(1)
    stored(*(message_body(f"IN{n}", PHONES[0]) for n in range(10)))
    both_claimed = threading.Barrier(2, timeout=20)
    claims: list[list[int]] = []

    def holding(events, now):
        claims.append([event.pk for event in events])
        both_claimed.wait()  # each holds its claim until the other has claimed too

    monkeypatch.setattr(intake, "_batch_apply", holding)

    def worker():
        try:
            intake.webhook_events_apply(limit=4)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    first, second = claims
    assert len(first) == len(second) == 4
    assert not set(first) & set(second)


def test_the_process_actor_applies_the_waiting_batch(db):
    known_customers(1)
    events = stored(*(message_body(f"IN{n}", PHONES[0]) for n in range(3)))
    intake.webhook_event_process.fn(events[-1].pk)
    assert set(WebhookEvent.objects.values_list("state", flat=True)) == {"processed"}
    assert Message.objects.count() == 3


def test_a_failed_event_is_left_to_its_retry(db):
    """Only fresh events are batched: a failed or waiting one is its retry's (with backoff)."""
    (event,) = stored(message_body("IN1", PHONES[0]))
    WebhookEvent.objects.filter(pk=event.pk).update(state="failed", attempts=1)
    assert intake.webhook_events_apply() == 0
    later = datetime.now(UTC) + timedelta(hours=1)
    assert intake.webhook_events_retry_due(now=later) == 1
