"""The endpoint itself: the secret, the size cap, the JSON check, storing before processing."""

import json
from pathlib import Path

import pytest
from django.db import OperationalError

from inbox.models import Message, WebhookEvent
from tests.inbox.conftest import FIXTURES, URL, fixture_load

SHARED = Path(__file__).parents[2] / ".." / "shared" / "fixtures" / "wasender"


def test_it_answers_ok_and_stores_the_raw_event(post):
    response = post("messages_received_text")
    assert response.status_code == 200
    assert response.json() == {"ok": True}
    event = WebhookEvent.objects.get()
    assert event.payload == fixture_load("messages_received_text")
    assert event.event == "messages.received"
    assert event.state == "processed"


@pytest.mark.parametrize("secret", [None, "", "wrong-secret", "dev-webhook-secret "])
def test_it_requires_the_secret(client, db, secret):
    headers = {} if secret is None else {"X-Webhook-Signature": secret}
    body = json.dumps(fixture_load("messages_received_text"))
    response = client.post(URL, data=body, content_type="application/json", headers=headers)
    assert response.status_code == 401
    assert not WebhookEvent.objects.exists()
    assert not Message.objects.exists()


def test_it_rejects_a_non_ascii_secret_without_crashing(post):
    assert post("messages_received_text", secret="sécret").status_code == 401


def test_it_refuses_when_no_secret_is_configured(post, settings):
    settings.WASENDER_WEBHOOK_SECRET = ""
    assert post("messages_received_text", secret="").status_code == 401


def test_it_does_not_need_a_login_or_csrf(client, db):
    client.handler.enforce_csrf_checks = True
    response = client.post(
        URL,
        data="{}",
        content_type="application/json",
        headers={"X-Webhook-Signature": "dev-webhook-secret"},
    )
    assert response.status_code == 200


def test_it_allows_only_post(client, db):
    assert client.get(URL).status_code == 405


@pytest.mark.parametrize(
    "body", ["{not json", "[1, 2]", '"text"', "", "NaN", '{"a": NaN}', '{"a": 1e400}', "\xff\xfe"]
)
def test_it_rejects_invalid_json(post, body):
    response = post(body, raw=True)
    assert response.status_code == 400
    assert response.json() == {"ok": False, "error": "invalid_json"}
    assert not WebhookEvent.objects.exists()


def test_it_rejects_deeply_nested_json(post):
    response = post("[" * 100_000 + "]" * 100_000, raw=True)
    assert response.status_code in (400, 413)
    assert not WebhookEvent.objects.exists()


def test_it_caps_the_body_size(post, settings):
    settings.WASENDER_WEBHOOK_MAX_BYTES = 1000
    body = fixture_load("messages_received_text")
    body["data"]["messages"]["messageBody"] = "x" * 2000
    response = post(body)
    assert response.status_code == 413
    assert not WebhookEvent.objects.exists()


def test_it_accepts_a_body_at_the_cap(post, settings):
    body = json.dumps(fixture_load("messages_received_text"))
    settings.WASENDER_WEBHOOK_MAX_BYTES = len(body.encode())
    assert post(body, raw=True).status_code == 200


def test_it_answers_503_when_the_database_is_down(post, monkeypatch):
    def down(*args, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(WebhookEvent, "save", down)
    response = post("messages_received_text")
    assert response.status_code == 503
    assert not Message.objects.exists()
    assert not WebhookEvent.objects.exists()


def test_a_failure_to_apply_rolls_back_and_keeps_the_raw_event_for_a_retry(post, monkeypatch):
    from inbox import services

    def broken(**kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(services, "conversation_inbound_note", broken)
    assert post("messages_received_text").status_code == 200
    event = WebhookEvent.objects.get()
    assert (event.state, event.attempts) == ("failed", 1)
    assert event.error == "RuntimeError: boom"
    assert event.payload["event"] == "messages.received"
    assert not Message.objects.exists()  # the half-applied message went with the rollback


def test_it_stores_text_the_database_cannot_hold_as_replacement_characters(post):
    body = fixture_load("messages_received_text")
    body["data"]["messages"]["messageBody"] = "nul\x00 and lone \ud800 surrogate"
    raw = json.dumps(body)  # keeps \u0000 and \ud800 escaped, as a sender would
    assert post(raw, raw=True).status_code == 200
    assert Message.objects.get().body == "nul\ufffd and lone ? surrogate"


def test_it_never_logs_the_secret(post, caplog, monkeypatch):
    from inbox import intake

    monkeypatch.setattr(intake, "_outcome", lambda event: 1 / 0)
    with caplog.at_level("DEBUG"):
        post("messages_received_text")
        post("messages_received_text", secret="almost-dev-webhook-secret")
    assert "dev-webhook-secret" not in caplog.text


@pytest.mark.parametrize(
    "name",
    [
        "send_message_ok",
        "send_message_rate_limited",
        "send_message_validation_error",
        "message_info",
    ],
)
def test_it_records_and_ignores_bodies_that_are_not_events(post, name):
    """The API-response fixtures are not webhooks: posted by mistake they are kept, ignored."""
    assert post(name).status_code == 200
    event = WebhookEvent.objects.get()
    assert event.state == "ignored"
    assert event.error == "evento sin nombre"


def test_the_fixture_copies_match_the_shared_samples():
    if not SHARED.is_dir():
        pytest.skip("the shared fixtures folder is not beside this checkout")
    for shared in SHARED.glob("*.json"):
        assert (FIXTURES / shared.name).read_bytes() == shared.read_bytes(), shared.name


@pytest.mark.parametrize("where", ["timestamp", "messageTimestamp"])
@pytest.mark.parametrize("number", [10**400, -(10**400), 2**64])
def test_it_ignores_a_timestamp_out_of_any_range_with_a_reason(post, where, number):
    """Not an OverflowError stored as failed and retried: kept, ignored, and why."""
    body = fixture_load("messages_received_text")
    target = body if where == "timestamp" else body["data"]["messages"]
    target[where] = number
    assert post(json.dumps(body), raw=True).status_code == 200
    event = WebhookEvent.objects.get()
    assert event.state == "ignored"
    assert "fecha fuera de rango" in event.error
    assert not Message.objects.exists()
