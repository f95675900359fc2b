"""The outbox sweeper: never resends a send whose fate is uncertain (unconfirmed, then unknown
after the wait); re-enqueues lost queue entries."""

from datetime import timedelta

import dramatiq
import httpx
import pytest
from django.test import override_settings
from django.utils import timezone

from inbox.models import Message
from outbound.services import message_send
from outbound.sweeper import sweep
from tests.outbound.helpers import Script, client_for, enqueued

NOW = timezone.now()


@pytest.fixture(autouse=True)
def broker_empty():
    dramatiq.get_broker().flush_all()
    yield
    dramatiq.get_broker().flush_all()


def outbox_row(status, *, age=timedelta(0), **fields):
    message = message_send(phone="+593968196046", text="Hola", author_kind="api")
    created = NOW - age
    Message.objects.filter(id=message.id).update(status=status, created_at=created, **fields)
    message.refresh_from_db()
    return message


def run(script=None):
    script = script or Script(httpx.Response(500))
    counts = sweep(client=client_for(script), now=NOW)
    return counts, script


@override_settings(SEND_STUCK_SENDING_SECONDS=120)
def test_a_stuck_send_without_provider_id_becomes_unconfirmed(db):
    stuck = outbox_row("sending", age=timedelta(minutes=5), sending_at=NOW - timedelta(minutes=3))
    counts, script = run()
    stuck.refresh_from_db()
    assert stuck.status == "unconfirmed"
    assert stuck.failure_reason.startswith("Sin confirmar (el envío se interrumpió)")
    assert counts["unconfirmed_or_resolved"] == 1
    assert script.requests == []
    assert enqueued() == [] and enqueued(delayed=True) == []


@override_settings(SEND_UNCONFIRMED_SECONDS=600)
def test_an_unconfirmed_send_without_evidence_becomes_unknown_after_the_wait(db):
    old = outbox_row("unconfirmed", sending_at=NOW - timedelta(minutes=11))
    recent = outbox_row("unconfirmed", sending_at=NOW - timedelta(minutes=9))
    counts, script = run()
    old.refresh_from_db()
    recent.refresh_from_db()
    assert (old.status, recent.status) == ("unknown", "unconfirmed")
    assert old.failure_reason == (
        "Estado desconocido: WhatsApp no confirmó el envío en 10 min; no se reenvió para "
        "evitar duplicados (el cliente pudo recibirlo)."
    )
    assert counts["unknown_or_resolved"] == 1
    assert script.requests == [] and enqueued() == []


def test_an_unconfirmed_send_with_provider_id_is_settled_by_message_info(db):
    waiting = outbox_row("unconfirmed", sending_at=NOW - timedelta(seconds=5), provider_msg_id=9)
    info = httpx.Response(
        200, json={"success": True, "data": {"msgId": 9, "key": {"id": "3EB0NINE"}, "status": 4}}
    )
    run(Script(info))
    waiting.refresh_from_db()
    assert (waiting.status, waiting.wa_id) == ("read", "3EB0NINE")


@override_settings(SEND_STUCK_SENDING_SECONDS=120)
def test_a_recent_send_is_left_alone(db):
    busy = outbox_row("sending", sending_at=NOW - timedelta(seconds=30))
    run()
    busy.refresh_from_db()
    assert busy.status == "sending"


@override_settings(SEND_STUCK_SENDING_SECONDS=120)
def test_a_stuck_send_with_provider_id_asks_message_info(db):
    stuck = outbox_row("sending", sending_at=NOW - timedelta(minutes=3), provider_msg_id=555)
    info = httpx.Response(
        200, json={"success": True, "data": {"msgId": 555, "key": {"id": "3EB0ABC"}, "status": 3}}
    )
    _, script = run(Script(info))
    stuck.refresh_from_db()
    assert stuck.status == "delivered" and stuck.delivered_at is not None
    assert stuck.wa_id == "3EB0ABC"
    assert script.requests[0].url.path == "/api/messages/555/info"


@override_settings(SEND_STUCK_SENDING_SECONDS=120)
def test_a_resolved_send_absorbs_the_echo_the_webhook_stored_first(db):
    stuck = outbox_row("sending", sending_at=NOW - timedelta(minutes=3), provider_msg_id=556)
    echo = Message.objects.create(
        conversation=stuck.conversation,
        direction="out",
        author_kind="phone",
        body="Hola",
        status="delivered",
        wa_id="3EB0ECHO",
        sent_at=NOW,
        delivered_at=NOW,
    )
    info = httpx.Response(
        200, json={"success": True, "data": {"msgId": 556, "key": {"id": "3EB0ECHO"}, "status": 2}}
    )
    run(Script(info))
    stuck.refresh_from_db()
    assert stuck.wa_id == "3EB0ECHO"
    assert not Message.objects.filter(pk=echo.pk).exists()
    assert Message.objects.filter(conversation=stuck.conversation, direction="out").count() == 1


@override_settings(SEND_STUCK_SENDING_SECONDS=120)
def test_when_message_info_fails_it_is_unconfirmed_not_resent(db):
    stuck = outbox_row("sending", sending_at=NOW - timedelta(minutes=3), provider_msg_id=555)
    run(Script(httpx.Response(503)))
    stuck.refresh_from_db()
    assert stuck.status == "unconfirmed"
    assert enqueued() == []


@override_settings(SEND_STUCK_QUEUED_SECONDS=600)
def test_a_lost_queued_message_is_enqueued_again(db):
    lost = outbox_row("queued", age=timedelta(minutes=11))
    outbox_row("queued", age=timedelta(minutes=2))
    outbox_row("queued", age=timedelta(hours=1), sending_at=NOW - timedelta(minutes=1))
    counts, _ = run()
    assert counts["requeued"] == 1
    assert [m.args for m in enqueued()] == [(lost.id,)]


@override_settings(SEND_STUCK_QUEUED_SECONDS=600)
def test_a_requeued_duplicate_is_harmless(db):
    from outbound.pipeline import deliver
    from tests.outbound.helpers import NoWait, sent_ok

    lost = outbox_row("queued", age=timedelta(minutes=11))
    run()
    script = Script(sent_ok())
    assert deliver(lost.id, client=client_for(script), bucket=NoWait()) == "sent"
    assert deliver(lost.id, client=client_for(script), bucket=NoWait()) == "skipped"
    assert len(script.requests) == 1


def test_a_due_scheduled_message_is_queued_and_enqueued(db):
    due = outbox_row("scheduled", scheduled_for=NOW - timedelta(seconds=1))
    later = outbox_row("scheduled", scheduled_for=NOW + timedelta(hours=1))
    counts, _ = run()
    due.refresh_from_db()
    later.refresh_from_db()
    assert (due.status, later.status) == ("queued", "scheduled")
    assert counts["promoted"] == 1
    assert [m.args for m in enqueued()] == [(due.id,)]


@override_settings(SEND_STUCK_QUEUED_SECONDS=600)
def test_a_promoted_message_is_not_mistaken_for_a_lost_one(db):
    outbox_row("scheduled", age=timedelta(days=2), scheduled_for=NOW - timedelta(seconds=1))
    run()
    assert len(enqueued()) == 1
    run()
    assert len(enqueued()) == 1


def test_finished_rows_are_never_touched(db):
    rows = [
        outbox_row(status, age=timedelta(days=1), sending_at=NOW - timedelta(days=1))
        for status in ("sent", "failed", "unknown", "delivered", "cancelled")
    ]
    run()
    assert [Message.objects.get(id=r.id).status for r in rows] == [
        "sent",
        "failed",
        "unknown",
        "delivered",
        "cancelled",
    ]
    assert enqueued() == []
