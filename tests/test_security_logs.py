"""No phone number and no message text in the logs. chatdesk runs with production settings
and JSON logs at DEBUG, the most an operator would turn on (embedded: the web server, the
worker and the simulator in one process, so one stream holds every line) while the main flows
go through it over HTTP: a customer writes, an agent answers and the send reaches the
simulator and comes back as statuses, the API sends and records a renewal for an unknown phone
(in the path), a webhook with a wrong secret, a search by phone. Then every line is read for
the phones, in any spelling, and the texts."""

import json
import re
import time

import httpx
import pytest

from chatdesk.models import ApiToken
from inbox.models import Message
from tests.conftest import make_user
from tests.procs import PYTHON, ROOT, free_port_run, process_env, running
from tests.waiting import wait_until

pytestmark = pytest.mark.integration
LOGS = ROOT / "var" / "test-logs"
SECRET = "logs-webhook-secret"
PHONES = ["593968196046", "593991112233", "593987654321"]
TEXTS = ["Mi clave del banco es 1234", "Le confirmo su renovación, Rosa", "Promo privada 77"]
NAME = "Rosa Privada"


def spellings(phone: str) -> list[str]:
    """+593968196046, 593968196046, 0968196046, 968196046, and with spaces."""
    local = phone[3:]
    return [phone, f"0{local}", local, f"{local[:2]} {local[2:5]} {local[5:]}"]


def webhook(phone: str, text: str, n: int) -> dict:
    return {
        "event": "messages.received",
        "timestamp": int(time.time()),
        "data": {
            "messages": {
                "key": {
                    "id": f"3EB0LOGS{n:012d}",
                    "fromMe": False,
                    "remoteJid": f"{phone}@s.whatsapp.net",
                    "cleanedSenderPn": phone,
                },
                "pushName": NAME,
                "messageTimestamp": int(time.time()),
                "messageBody": text,
                "message": {"conversation": text},
            }
        },
    }


@pytest.fixture
def app_url(transactional_db, tmp_path):
    """Production settings (DEBUG=0, JSON logs at DEBUG), embedded mode on the test database."""
    LOGS.mkdir(parents=True, exist_ok=True)
    port = free_port_run()
    log = LOGS / "logs-run.jsonl"
    env = process_env(
        DEBUG="0",
        SECRET_KEY="x" * 50,
        ALLOWED_HOSTS="127.0.0.1",
        WASENDER_WEBHOOK_SECRET=SECRET,
        SECURE_SSL_REDIRECT="0",
        SECURE_COOKIES="0",
        SECURE_HSTS_SECONDS="0",
        LOG_FORMAT="json",
        LOG_LEVEL="DEBUG",
        REDIS_URL="",
        MEDIA_ROOT=tmp_path / "media",
        WASENDER_SIM_DEMO_INTERVAL="1",
    )
    args = [PYTHON, "manage.py", "runembedded", "--port", str(port)]
    with running(args, env=env, ready_url=f"http://127.0.0.1:{port}/healthz", log=log):
        yield f"http://127.0.0.1:{port}", log


def login(client: httpx.Client, base: str, username: str) -> str:
    client.get(f"{base}/accounts/login/")
    csrf = client.cookies["csrftoken"]
    response = client.post(
        f"{base}/accounts/login/",
        data={"username": username, "password": f"pass-{username}", "csrfmiddlewaretoken": csrf},
        headers={"Referer": f"{base}/accounts/login/"},
    )
    assert response.status_code == 302, response.text[:300]
    return client.cookies["csrftoken"]


def test_it_logs_no_phone_and_no_message_text(app_url):
    base, log = app_url
    make_user("bob", "agent", first_name="Bob")
    token = ApiToken.issue(user=make_user("api", "admin"), name="logs")[1]
    bearer = {"Authorization": f"Bearer {token}"}
    with httpx.Client(timeout=20) as client:
        # A customer writes; an agent answers; the simulator reports the statuses.
        signed = {"X-Webhook-Signature": SECRET}
        assert (
            client.post(
                f"{base}/webhooks/wasender/", json=webhook(PHONES[0], TEXTS[0], 1), headers=signed
            ).status_code
            == 200
        )
        wait_until(
            lambda: Message.objects.filter(body=TEXTS[0]).exists(),
            timeout=60,
            what="the message stored",
        )
        conversation_id = Message.objects.get(body=TEXTS[0]).conversation_id
        csrf = login(client, base, "bob")
        response = client.post(
            f"{base}/inbox/c/{conversation_id}/reply/",
            data={"text": TEXTS[1]},
            headers={"X-CSRFToken": csrf, "Referer": f"{base}/inbox/"},
        )
        assert response.status_code in (200, 302), response.text[:300]
        # The API sends to another phone, and records a renewal for a phone nobody has.
        response = client.post(
            f"{base}/api/v1/messages",
            headers=bearer,
            json={"phone": f"+{PHONES[1]}", "text": TEXTS[2]},
        )
        assert response.status_code == 201, response.text
        response = client.post(
            f"{base}/api/v1/customers/%2B{PHONES[2]}/renewals",
            headers=bearer,
            json={"service": "Netflix", "months": 1, "amount": "12.99"},
        )
        assert response.status_code in (404, 422), response.text
        # A forged webhook, a search by phone, a page that does not exist under a phone.
        client.post(
            f"{base}/webhooks/wasender/",
            json=webhook(PHONES[2], TEXTS[0], 2),
            headers={"X-Webhook-Signature": "wrong"},
        )
        client.get(f"{base}/customers/", params={"q": PHONES[0]})
        client.get(f"{base}/inbox/c/{PHONES[0]}/")
        sent = Message.objects.filter(body__in=TEXTS[1:], sent_at__isnull=False)
        wait_until(lambda: sent.count() == 2, timeout=60, what="both sends reached the simulator")
        time.sleep(2)  # the statuses the simulator sends back, and their log lines
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    assert len(lines) > 5, log.read_text()[:2000]  # the run did log (requests, sends)
    text = "\n".join(json.dumps(line, ensure_ascii=False) for line in lines)
    leaks = [s for phone in PHONES for s in spellings(phone) if s in text]
    leaks += [t for t in [*TEXTS, NAME] if t in text]
    assert not leaks, [line for line in text.splitlines() if any(s in line for s in leaks)][:5]
    # Nothing that even looks like a phone number (what a new log line would leak first).
    assert not re.search(r"\+?\d{9,15}", "\n".join(line["message"] for line in lines))
