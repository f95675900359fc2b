"""Operations: /healthz and /readyz, the request id through logs and Dramatiq, queue depths on
the stub and on Redis, and what /ops/ and `manage.py ops_status` show."""

import io
import json
import logging
import os
import uuid
from datetime import timedelta

import dramatiq
import pytest
from django.core.management import call_command
from django.utils import timezone
from dramatiq import Worker
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker

from chatdesk.logging import (
    ContextFilter,
    JsonFormatter,
    RequestIdDramatiq,
    log_context,
    request_id_get,
    request_id_var,
)
from chatdesk.models import ApiToken
from chatdesk.ops import queue_depths
from customers.models import Customer
from inbox.models import Conversation, Message, SessionState, WebhookEvent
from tests.conftest import require

# --- probes ---------------------------------------------------------------------------------------


def test_it_answers_healthz_without_login(client, db):
    assert client.get("/healthz").json() == {"status": "ok"}


def test_it_answers_readyz_when_everything_answers(client, db):
    response = client.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"]["database"] == "ok" and body["checks"]["broker"] == "ok"


def test_it_pings_the_real_redis_when_configured(client, db, settings):
    require(bool(os.environ.get("REDIS_URL")), "REDIS_URL is not set")
    settings.REDIS_URL = os.environ["REDIS_URL"]
    assert client.get("/readyz").json()["checks"]["redis"] == "ok"


def test_it_answers_503_naming_redis_and_no_secret_when_redis_is_down(client, db, settings):
    # A port nothing listens on, with a password that must not leak into the answer.
    settings.REDIS_URL = "redis://:hunter2-secret@127.0.0.1:1/0"
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {
        "status": "unavailable",
        "checks": {"database": "ok", "broker": "ok", "redis": "error"},
    }
    assert b"hunter2" not in response.content and b"127.0.0.1" not in response.content


# --- request id and structured logs ---------------------------------------------------------------


@pytest.fixture
def json_log():
    """The root logger's lines as the production handler writes them (JSON formatter, context
    filter), collected for the test."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    root.addHandler(handler)
    old_level = root.level
    root.setLevel(logging.INFO)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    root.removeHandler(handler)
    root.setLevel(old_level)


def test_it_returns_the_callers_request_id_or_a_new_one(client, db):
    assert client.get("/healthz", HTTP_X_REQUEST_ID="lb-7f3a.1")["X-Request-ID"] == "lb-7f3a.1"
    generated = client.get("/healthz", HTTP_X_REQUEST_ID="bad id\nwith newline")["X-Request-ID"]
    assert len(generated) == 32 and int(generated, 16) >= 0
    assert client.get("/healthz")["X-Request-ID"] != client.get("/healthz")["X-Request-ID"]


def test_it_writes_one_json_object_per_line_with_the_request_id(client, db, json_log):
    response = client.post(
        "/webhooks/wasender/",
        data=b"{}",
        content_type="application/json",
        headers={"X-Webhook-Signature": "wrong", "X-Request-ID": "wh-123"},
    )
    assert response.status_code == 401
    lines = json_log()
    assert lines
    unauthorized = next(line for line in lines if line["logger"] == "django.request")
    assert unauthorized["request_id"] == "wh-123"
    assert unauthorized["level"] == "WARNING"
    assert set(unauthorized) >= {"time", "level", "logger", "message", "request_id"}


def test_it_adds_message_and_webhook_ids_from_extra_or_the_context(json_log):
    log = logging.getLogger("chatdesk.test")
    token = request_id_var.set("req-9")
    try:
        with log_context(webhook_event_id=41):
            log.info("stored", extra={"message_id": 7})
        log.info("outside")
    finally:
        request_id_var.reset(token)
    inside, outside = json_log()
    assert inside == {
        "time": inside["time"],
        "level": "INFO",
        "logger": "chatdesk.test",
        "message": "stored",
        "request_id": "req-9",
        "message_id": 7,
        "webhook_event_id": 41,
    }
    assert "webhook_event_id" not in outside and "message_id" not in outside


def test_it_carries_the_request_id_into_the_worker(json_log):
    broker = StubBroker()
    broker.emit_after("process_boot")
    broker.add_middleware(RequestIdDramatiq())
    seen = []

    @dramatiq.actor(broker=broker, queue_name="rid-test")
    def remember():
        seen.append(request_id_get())
        logging.getLogger("chatdesk.test.worker").info("provider called")

    token = request_id_var.set("wh-abc")
    try:
        remember.send()
    finally:
        request_id_var.reset(token)
    remember.send()  # enqueued outside any request: the worker makes an id of its own
    worker = Worker(broker, worker_threads=1)
    worker.start()
    try:
        broker.join("rid-test")
        worker.join()
    finally:
        worker.stop()
    assert seen[0] == "wh-abc"
    assert seen[1] and seen[1] != "wh-abc"
    worker_lines = [line for line in json_log() if line["logger"] == "chatdesk.test.worker"]
    assert worker_lines[0]["request_id"] == "wh-abc"
    assert worker_lines[0]["actor"] == "remember"


def test_it_puts_the_request_id_on_the_send_a_request_enqueued(
    client, bob, django_capture_on_commit_callbacks
):
    broker = dramatiq.get_broker()
    broker.flush_all()
    raw = ApiToken.issue(user=bob, name="t")[1]
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/api/v1/messages",
            {"phone": "+593968196046", "text": "Hola"},
            content_type="application/json",
            headers={"Authorization": f"Bearer {raw}", "X-Request-ID": "api-42"},
        )
    assert response.status_code == 201
    queued = [dramatiq.Message.decode(body) for body in list(broker.queues["outbound"].queue)]
    broker.flush_all()
    assert [m.options.get("request_id") for m in queued] == ["api-42"]


# --- queue depths ---------------------------------------------------------------------------------


def _message(queue: str) -> dramatiq.Message:
    return dramatiq.Message(queue_name=queue, actor_name="noop", args=(), kwargs={}, options={})


def test_it_counts_the_stub_brokers_queues():
    broker = StubBroker()
    broker.declare_queue("q")
    broker.enqueue(_message("q"))
    broker.enqueue(_message("q"))
    broker.enqueue(_message("q"), delay=60_000)
    depth = {q.name: q for q in queue_depths(broker)}["q"]
    assert (depth.ready, depth.delayed, depth.dead) == (2, 1, 0)


def test_it_counts_the_redis_queues_their_delay_and_dead_letter_queues():
    require(bool(os.environ.get("REDIS_URL")), "REDIS_URL is not set")
    from tests.procs import redis_url_for_tests

    namespace = f"chatdesk-ops-test-{uuid.uuid4().hex[:8]}"
    broker = RedisBroker(url=redis_url_for_tests(), namespace=namespace)
    try:
        broker.declare_queue("q")
        for _ in range(4):
            broker.enqueue(_message("q"))
        broker.enqueue(_message("q"), delay=60_000)
        consumer = broker.consume("q", prefetch=2, timeout=1000)
        taken = [next(consumer), next(consumer)]
        consumer.nack(taken[0])  # to the dead-letter queue
        depth = {q.name: q for q in queue_depths(broker)}["q"]
        assert (depth.ready, depth.delayed, depth.in_progress, depth.dead) == (2, 1, 1, 1)
        consumer.close()
    finally:
        keys = list(broker.client.scan_iter(match=namespace + ":*"))
        if keys:
            broker.client.delete(*keys)
        broker.close()


# --- /ops/ and ops_status -------------------------------------------------------------------------


@pytest.fixture
def trouble(db):
    """A send queued 30 minutes ago, one stuck in sending, a failed webhook, the session."""
    now = timezone.now()
    customer = Customer.objects.create(phone="+593968196046", name="Carlos")
    conversation = Conversation.objects.create(customer=customer)
    common = {"conversation": conversation, "direction": "out", "author_kind": "agent"}
    Message.objects.create(**common, status="queued", created_at=now - timedelta(minutes=30))
    Message.objects.create(
        **common,
        status="sending",
        created_at=now - timedelta(minutes=40),
        sending_at=now - timedelta(minutes=39),
    )
    Message.objects.create(**common, status="queued", created_at=now - timedelta(minutes=1))
    WebhookEvent.objects.create(
        event="messages.received",
        payload={},
        state="failed",
        received_at=now - timedelta(minutes=5),
    )
    WebhookEvent.objects.create(event="session.status", payload={}, state="processed")
    SessionState.objects.create(session="default", status="connected")


def test_it_shows_admins_the_state_of_the_queues_and_the_webhook(client_for, alice, trouble):
    response = client_for(alice).get("/ops/")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-figure="stuck_queued">1<' in html
    assert 'data-figure="stuck_sending">1<' in html
    assert 'data-figure="webhooks_failed">1<' in html
    assert 'data-figure="dead_letters">0<' in html
    assert 'data-queue="outbound"' in html
    assert "session.status" in html and "connected" in html


def test_it_lists_unconfirmed_sends_with_their_age_and_ignored_events(client_for, alice, db):
    now = timezone.now()
    customer = Customer.objects.create(phone="+593968196046", name="Carlos")
    Message.objects.create(
        conversation=Conversation.objects.create(customer=customer),
        direction="out",
        author_kind="campaign",
        status="unconfirmed",
        sending_at=now - timedelta(minutes=3),
        failure_reason="Sin confirmar (WaSender no respondió a tiempo)",
    )
    WebhookEvent.objects.create(
        event="messages.received", payload={}, state="ignored", error="mensaje sin remitente"
    )
    html = client_for(alice).get("/ops/").content.decode()
    assert 'data-figure="unconfirmed">1<' in html
    unconfirmed = html[html.index('id="ops-unconfirmed"') :]
    unconfirmed = unconfirmed[: unconfirmed.index("</table>")]
    assert "+593968196046" in unconfirmed and "3\xa0minutos" in unconfirmed
    assert "Sin confirmar (WaSender no respondió a tiempo)" in unconfirmed
    ignored = html[html.index('id="ops-ignored"') :]
    assert "mensaje sin remitente" in ignored[: ignored.index("</table>")]


def test_it_takes_the_stuck_threshold_from_the_query(client_for, alice, trouble):
    html = client_for(alice).get("/ops/?minutes=35").content.decode()
    assert 'data-figure="stuck_queued">0<' in html
    assert 'data-figure="stuck_sending">1<' in html


def test_it_prints_the_same_status_as_json_and_fails_when_something_is_stuck(trouble):
    out = io.StringIO()
    with pytest.raises(SystemExit) as exit_:
        call_command("ops_status", "--json", stdout=out)
    assert exit_.value.code == 1
    data = json.loads(out.getvalue())
    assert (data["stuck_queued"], data["stuck_sending"]) == (1, 1)
    assert data["last_webhook"]["event"] == "session.status"
    assert data["webhook_counts"] == {"failed": 1, "processed": 1}
    assert data["sessions"][0]["status"] == "connected"
    assert "outbound" in {q["name"] for q in data["queues"]}


def test_it_exits_zero_when_all_is_well(db):
    out = io.StringIO()
    call_command("ops_status", stdout=out)
    assert "dead letters: 0" in out.getvalue()
