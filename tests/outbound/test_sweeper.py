"""The outbox sweeper: never resends a send whose fate is uncertain (unconfirmed, then unknown
after the wait); re-enqueues lost queue entries."""

import json
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import dramatiq
import httpx
import pytest
from django.test import override_settings
from django.utils import timezone

from customers.models import Customer
from inbox import channels
from inbox.models import Channel, Message
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


# --- several numbers: each row asked through its own channel's client, Cloud API rows never --


class InfoServer:
    """A real HTTP server answering WaSender's message info ("read") and recording who asked."""

    def __init__(self):
        asked = self.asked = []

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                asked.append((self.path, self.headers.get("Authorization")))
                msg_id = int(self.path.split("/")[-2])
                data = {"msgId": msg_id, "key": {"id": f"3EB0{msg_id}"}, "status": 4}
                body = json.dumps({"success": True, "data": data}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/api"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def info_server(settings):
    server = InfoServer()
    settings.WASENDER_BASE_URL = server.url
    channels.labels_forget()
    yield server
    server.close()
    channels.labels_forget()


def channel_row(channel_key: str, phone: str, **fields):
    customer = Customer.objects.create(phone=phone)
    message = message_send(customer=customer, text="Hola", author_kind="api", channel=channel_key)
    Message.objects.filter(id=message.id).update(**fields)
    message.refresh_from_db()
    return message


@override_settings(SEND_UNCONFIRMED_SECONDS=600, SEND_STUCK_SENDING_SECONDS=120)
def test_it_asks_each_wasender_row_through_its_channels_client_and_never_a_cloud_api_one(
    db, info_server
):
    sucursal = Channel(key="sucursal", name="Sucursal", provider="wasender", account="s-2")
    channels.credentials_update(sucursal, {"api_key": "clave-sucursal"})
    sucursal.save()
    Channel.objects.create(key="soporte", name="Soporte", provider="cloudapi", account="1065")
    recent = NOW - timedelta(minutes=1)
    wasender_row = channel_row(
        "sucursal", "+593968196046", status="unconfirmed", sending_at=recent, provider_msg_id=71
    )
    meta_waiting = channel_row(
        "soporte", "+593968196047", status="unconfirmed", sending_at=recent, provider_msg_id=72
    )
    meta_stuck = channel_row(
        "soporte",
        "+593968196048",
        status="sending",
        sending_at=NOW - timedelta(minutes=3),
        provider_msg_id=73,
    )

    sweep(now=NOW)
    assert info_server.asked == [("/api/messages/71/info", "Bearer clave-sucursal")]
    for row in (wasender_row, meta_waiting, meta_stuck):
        row.refresh_from_db()
    assert (wasender_row.status, wasender_row.wa_id) == ("read", "3EB071")
    # Meta's rows wait for their status webhooks: never asked, never resent...
    assert (meta_waiting.status, meta_stuck.status) == ("unconfirmed", "unconfirmed")
    assert enqueued() == []
    # ...and become unknown after the wait without evidence.
    sweep(now=NOW + timedelta(minutes=11))
    meta_waiting.refresh_from_db()
    assert meta_waiting.status == "unknown"
    assert len(info_server.asked) == 1
