"""At most once on a Cloud API number: a send whose answer was lost (so we never learned its
wamid, and Meta echoes none of our sends) is settled by its status webhooks, when exactly one
send of ours to that customer on that number can be the one; otherwise the status waits, as
any status for a message we do not know yet."""

import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.urls import reverse

from customers.models import Customer
from inbox import channels
from inbox.models import DEFAULT_CHANNEL, Channel, Conversation, Message, WebhookEvent

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "cloudapi"
PHONE_NUMBER_ID = "106540352242922"  # the fixtures' metadata.phone_number_id
APP_SECRET = "app-secret-for-tests"
PHONE = "+593968196046"
WAMID = "wamid.HBgMNTkzOTY4MTk2MDQ2FQIAERgSQUFBQUFBQUFBQUFBQUFBQQA="
CLAIMED = datetime(2025, 11, 24, 16, 0, 0, tzinfo=UTC)


def at(seconds_after_claim: float) -> datetime:
    return CLAIMED + timedelta(seconds=seconds_after_claim)


@pytest.fixture
def soporte(db):
    channels.labels_forget()
    channel = Channel.objects.create(
        key="soporte", name="Soporte", provider=Channel.Provider.CLOUDAPI, account=PHONE_NUMBER_ID
    )
    channels.credentials_update(channel, {"access_token": "t", "app_secret": APP_SECRET})
    channel.save()
    yield channel
    channels.labels_forget()


def send_of_ours(
    *, status: str = "unconfirmed", phone: str = PHONE, channel: str = "soporte", claimed=CLAIMED
) -> Message:
    """An agent's reply the pipeline claimed at `claimed` and whose answer never came."""
    customer, _ = Customer.objects.get_or_create(phone=phone)
    conversation, _ = Conversation.objects.get_or_create(customer=customer, channel_id=channel)
    return Message.objects.create(
        conversation=conversation,
        direction="out",
        author_kind="agent",
        body="Ya te ayudo",
        status=status,
        created_at=claimed,
        sending_at=claimed,
    )


def status_body(status: str, *, when: datetime, wa_id: str = WAMID, recipient: str = PHONE):
    body = json.loads((FIXTURES / "statuses_sent.json").read_text())
    item = body["entry"][0]["changes"][0]["value"]["statuses"][0]
    item.update(
        id=wa_id,
        status=status,
        timestamp=str(int(when.timestamp())),
        recipient_id=recipient.lstrip("+"),
    )
    return body


def post(client, body: dict):
    raw = json.dumps(body).encode()
    digest = hmac.new(APP_SECRET.encode(), raw, hashlib.sha256).hexdigest()
    answer = client.post(
        reverse("meta_webhook"),
        data=raw,
        content_type="application/json",
        headers={"X-Hub-Signature-256": f"sha256={digest}"},
    )
    assert answer.status_code == 200
    return WebhookEvent.objects.order_by("-pk").first()


def test_a_sent_status_settles_the_one_unconfirmed_send_to_that_customer(client, soporte):
    lost = send_of_ours()
    event = post(client, status_body("sent", when=at(2)))
    lost.refresh_from_db()
    assert (lost.wa_id, lost.status, lost.sent_at) == (WAMID, "sent", at(2))
    assert event.state == "processed"
    assert f"envío {lost.pk}" in event.error
    # From then on it is a message like any other: its later statuses move it.
    post(client, status_body("delivered", when=at(3)))
    post(client, status_body("read", when=at(9)))
    lost.refresh_from_db()
    assert (lost.status, lost.delivered_at, lost.read_at) == ("read", at(3), at(9))


def test_a_read_status_settles_a_send_the_sweeper_already_called_unknown(client, soporte):
    lost = send_of_ours(status="unknown")
    post(client, status_body("read", when=at(700)))
    lost.refresh_from_db()
    assert (lost.wa_id, lost.status) == (WAMID, "read")
    assert lost.delivered_at == lost.read_at == at(700)


def test_a_duplicated_status_links_the_send_once(client, soporte):
    lost = send_of_ours()
    for _ in range(2):
        post(client, status_body("sent", when=at(2)))
    assert list(Message.objects.values_list("pk", "wa_id", "status")) == [(lost.pk, WAMID, "sent")]
    assert set(WebhookEvent.objects.values_list("state", flat=True)) == {"processed"}


def test_statuses_out_of_order_end_at_the_furthest_step(client, soporte):
    lost = send_of_ours()
    for status, seconds in (("delivered", 3), ("sent", 2), ("read", 9)):
        post(client, status_body(status, when=at(seconds)))
    lost.refresh_from_db()
    assert (lost.wa_id, lost.status) == (WAMID, "read")
    assert (lost.sent_at, lost.delivered_at, lost.read_at) == (at(2), at(3), at(9))


def test_two_unconfirmed_sends_to_one_customer_are_not_guessed_between(client, soporte):
    first = send_of_ours()
    second = send_of_ours(claimed=at(1))
    event = post(client, status_body("sent", when=at(2)))
    assert event.state == "pending"
    for row in (first, second):
        row.refresh_from_db()
        assert (row.wa_id, row.status) == (None, "unconfirmed")


def test_a_send_still_waiting_for_its_answer_keeps_the_status_pending(client, soporte):
    """The status may be the sending one's (its answer names the id later) or the lost one's."""
    lost = send_of_ours()
    in_flight = send_of_ours(status="sending", claimed=at(1))
    assert post(client, status_body("sent", when=at(2))).state == "pending"
    lost.refresh_from_db()
    assert lost.wa_id is None
    # Its answer came and named another id: now the status can only be the lost send's.
    Message.objects.filter(pk=in_flight.pk).update(status="sent", wa_id="wamid.other")
    from inbox.intake import webhook_event_handle

    event = WebhookEvent.objects.get()
    webhook_event_handle(event.pk)
    lost.refresh_from_db()
    assert (lost.wa_id, lost.status) == (WAMID, "sent")


@pytest.mark.parametrize(
    "elsewhere",
    [
        pytest.param({"phone": "+593968196099"}, id="another-customer"),
        pytest.param({"channel": DEFAULT_CHANNEL}, id="another-number"),
        pytest.param({"claimed": CLAIMED - timedelta(hours=2)}, id="claimed-long-before"),
        pytest.param({"claimed": at(600)}, id="claimed-after-the-status"),
        pytest.param({"status": "queued"}, id="never-claimed"),
        pytest.param({"status": "failed"}, id="already-failed"),
    ],
)
def test_a_status_is_never_pinned_on_a_send_that_cannot_be_its(client, soporte, elsewhere):
    row = send_of_ours(**elsewhere)
    before = row.status
    assert post(client, status_body("sent", when=at(2))).state == "pending"
    row.refresh_from_db()
    assert (row.wa_id, row.status) == (None, before)


def test_a_failed_status_for_an_unknown_id_links_nothing(client, soporte):
    lost = send_of_ours()
    body = json.loads((FIXTURES / "statuses_failed_window_closed.json").read_text())
    body["entry"][0]["changes"][0]["value"]["statuses"][0].update(
        id=WAMID, recipient_id=PHONE.lstrip("+"), timestamp=str(int(at(2).timestamp()))
    )
    assert post(client, body).state == "pending"
    lost.refresh_from_db()
    assert (lost.wa_id, lost.status) == (None, "unconfirmed")


def test_a_status_for_a_known_id_moves_that_send_and_leaves_the_lost_one_alone(client, soporte):
    known = send_of_ours(status="sent")
    Message.objects.filter(pk=known.pk).update(wa_id=WAMID)
    lost = send_of_ours(claimed=at(1))
    post(client, status_body("read", when=at(5)))
    known.refresh_from_db()
    lost.refresh_from_db()
    assert (known.status, lost.status, lost.wa_id) == ("read", "unconfirmed", None)


def test_wasender_statuses_for_an_unknown_id_still_wait(client, soporte):
    """WaSender echoes our sends (outbound_echo_link settles them): its statuses link nothing."""
    lost = send_of_ours(channel=DEFAULT_CHANNEL)
    body = {
        "event": "messages.update",
        "timestamp": int(at(2).timestamp()),
        "data": {
            "update": {"status": 2},
            "key": {"id": "3EB0AAAA", "fromMe": True, "remoteJid": "593968196046@s.whatsapp.net"},
        },
    }
    from tests.inbox.conftest import webhook_post

    assert webhook_post(client, body).status_code == 200
    assert WebhookEvent.objects.get().state == "pending"
    lost.refresh_from_db()
    assert lost.wa_id is None
