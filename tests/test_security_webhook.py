"""The webhook's guards, from the outside: the secret (compared in constant time, so a wrong
secret of the right length fares no better than a short one), the optional source-address
allowlist, and no secret in any log line."""

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from chatdesk.logging import ContextFilter, JsonFormatter
from inbox.models import WebhookEvent

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "fixtures" / "wasender" / "messages_received_text.json"
URL = "/webhooks/wasender/"
SECRET = "wh-secret-7f3a9c1e-do-not-log"


@pytest.fixture
def secret(settings):
    settings.WASENDER_WEBHOOK_SECRET = SECRET
    return SECRET


def send(client, signature: str | None, *, ip: str = "127.0.0.1"):
    headers = {} if signature is None else {"X-Webhook-Signature": signature}
    return client.post(
        URL,
        data=FIXTURE.read_bytes(),
        content_type="application/json",
        headers=headers,
        REMOTE_ADDR=ip,
    )


@pytest.mark.parametrize(
    "signature",
    [
        "x" * len(SECRET),  # same length, every byte wrong
        SECRET[:-1] + "X",  # same length, only the last byte wrong
        SECRET[:-1],  # a prefix
        SECRET + "0",  # longer
        "",
        None,
    ],
)
def test_it_refuses_a_wrong_secret_of_any_length_and_stores_nothing(client, db, secret, signature):
    response = send(client, signature)
    assert response.status_code == 401
    assert response.json() == {"ok": False, "error": "unauthorized"}
    assert not WebhookEvent.objects.exists()


def test_it_accepts_the_right_secret(client, db, secret):
    assert send(client, SECRET).status_code == 200
    assert WebhookEvent.objects.count() == 1


def test_it_accepts_any_address_without_an_allowlist(client, db, secret, settings):
    settings.WASENDER_WEBHOOK_ALLOWED_IPS = []
    assert send(client, SECRET, ip="198.51.100.7").status_code == 200


def test_it_refuses_an_address_outside_the_allowlist_before_reading_anything(
    client, db, secret, settings
):
    settings.WASENDER_WEBHOOK_ALLOWED_IPS = ["203.0.113.0/24", "2001:db8::/32"]
    response = send(client, SECRET, ip="198.51.100.7")
    assert response.status_code == 403
    assert not WebhookEvent.objects.exists()
    assert send(client, SECRET, ip="203.0.113.9").status_code == 200
    assert send(client, SECRET, ip="::ffff:203.0.113.10").status_code == 200
    assert send(client, SECRET, ip="2001:db8::5").status_code == 200
    assert WebhookEvent.objects.count() == 3


def test_it_applies_the_allowlist_to_the_webhook_only(client, db, settings):
    settings.WASENDER_WEBHOOK_ALLOWED_IPS = ["203.0.113.0/24"]
    assert client.get("/healthz", REMOTE_ADDR="198.51.100.7").status_code == 200


def test_it_refuses_to_start_with_a_malformed_allowlist():
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_VERSION"}
    env["WASENDER_WEBHOOK_ALLOWED_IPS"] = "203.0.113.0/24,not-an-address"
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "WASENDER_WEBHOOK_ALLOWED_IPS" in result.stderr


def test_it_never_writes_the_secret_to_the_logs(client, db, secret, caplog):
    caplog.set_level(logging.DEBUG)
    wrong = "wrong-secret-5b2e-also-never-logged"
    assert send(client, wrong).status_code == 401
    assert send(client, SECRET).status_code == 200
    assert caplog.records  # the requests did log something (a 401 at least)
    json_format, plain = JsonFormatter(), logging.Formatter("%(message)s %(args)s")
    context = ContextFilter()
    for record in caplog.records:
        context.filter(record)
        lines = [json_format.format(record), plain.format(record), repr(vars(record))]
        for line in lines:
            assert SECRET not in line, line
            assert wrong not in line, line
    assert json.loads(json_format.format(caplog.records[0]))["request_id"]
