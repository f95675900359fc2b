"""Channels from the outside: Meta's webhook (handshake, signature, routing by
phone_number_id), agents limited to a number, secrets never shown back, replies on their
conversation's number and Meta's 24-hour window."""

import hashlib
import hmac
import json
from datetime import timedelta
from pathlib import Path

import pytest
from django.urls import reverse
from django.utils import timezone

from customers.models import Customer
from inbox import channels
from inbox.models import DEFAULT_CHANNEL, Channel, Conversation, Message

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "cloudapi"
PHONE_NUMBER_ID = "106540352242922"  # the fixtures' metadata.phone_number_id
APP_SECRET = "app-secret-for-tests"
VERIFY = "verify-token-for-tests"


@pytest.fixture
def soporte(db):
    channels.labels_forget()
    channel = Channel.objects.create(
        key="soporte",
        name="Soporte",
        provider=Channel.Provider.CLOUDAPI,
        account=PHONE_NUMBER_ID,
        colour="blue",
    )
    channels.credentials_update(
        channel, {"access_token": "token-x", "app_secret": APP_SECRET, "verify_token": VERIFY}
    )
    channel.save()
    yield channel
    channels.labels_forget()


def _signed_post(client, body: bytes, secret: str = APP_SECRET):
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return client.post(
        reverse("meta_webhook"),
        data=body,
        content_type="application/json",
        headers={"X-Hub-Signature-256": f"sha256={digest}"},
    )


def test_existing_conversations_are_on_the_default_wasender_channel(db):
    channel = Channel.objects.get(key=DEFAULT_CHANNEL)
    assert (channel.provider, channel.from_env) == (Channel.Provider.WASENDER, True)
    customer = Customer.objects.create(phone="+593968196046")
    assert Conversation.objects.create(customer=customer).channel_id == DEFAULT_CHANNEL


def test_meta_handshake_answers_the_challenge_only_with_the_verify_token(client, soporte):
    url = reverse("meta_webhook")
    ok = client.get(
        url, {"hub.mode": "subscribe", "hub.verify_token": VERIFY, "hub.challenge": "42"}
    )
    assert (ok.status_code, ok.content) == (200, b"42")
    wrong = client.get(
        url, {"hub.mode": "subscribe", "hub.verify_token": "no", "hub.challenge": "1"}
    )
    assert wrong.status_code == 403


def test_meta_events_need_the_app_secret_signature(client, soporte):
    body = (FIXTURES / "messages_text.json").read_bytes()
    assert _signed_post(client, body, secret="another-secret").status_code == 401
    unsigned = client.post(reverse("meta_webhook"), data=body, content_type="application/json")
    assert unsigned.status_code == 401
    assert not Message.objects.exists()


def test_a_signed_meta_message_lands_on_its_channel_once(client, soporte):
    body = (FIXTURES / "messages_text.json").read_bytes()
    assert _signed_post(client, body).status_code == 200
    assert _signed_post(client, body).status_code == 200  # Meta redelivers: one row
    [message] = Message.objects.all()
    assert message.conversation.channel_id == "soporte"
    assert message.conversation.customer.phone == "+593968196046"
    assert message.body.startswith("Hola, ¿cuánto cuesta Netflix")


def test_a_meta_event_for_an_unknown_number_is_kept_and_ignored_with_a_reason(client, soporte):
    payload = json.loads((FIXTURES / "messages_text.json").read_text())
    payload["entry"][0]["changes"][0]["value"]["metadata"]["phone_number_id"] = "999"
    assert _signed_post(client, json.dumps(payload).encode()).status_code == 200
    assert not Message.objects.exists()
    from inbox.models import WebhookEvent

    [event] = WebhookEvent.objects.all()
    assert (event.state, event.provider) == ("ignored", "cloudapi")
    assert "sin canal configurado" in event.error


def test_the_channel_page_never_shows_a_secret(admin_client, soporte):
    page = admin_client.get(reverse("inbox:channels"))
    assert page.status_code == 200
    assert APP_SECRET not in page.text and "token-x" not in page.text
    form = admin_client.get(reverse("inbox:channel_edit", args=["soporte"]))
    assert APP_SECRET not in form.text and VERIFY not in form.text
    assert "token-x" not in Channel.objects.get(key="soporte").credentials


def test_an_admin_adds_a_cloud_api_number_and_a_blank_secret_keeps_the_stored_one(admin_client, db):
    data = {
        "name": "Sucursal",
        "key": "sucursal",
        "colour": "purple",
        "provider": "cloudapi",
        "account": "123456",
        "access_token": "t1",
        "app_secret": "s1",
        "verify_token": "v1",
        "active": "on",
    }
    assert admin_client.post(reverse("inbox:channel_new"), data).status_code == 302
    edit = {"name": "Sucursal Norte", "colour": "purple", "account": "123456", "active": "on"}
    assert (
        admin_client.post(reverse("inbox:channel_edit", args=["sucursal"]), edit).status_code == 302
    )
    channel = Channel.objects.get(key="sucursal")
    assert channel.name == "Sucursal Norte"
    assert channels.credentials(channel) == {
        "access_token": "t1",
        "app_secret": "s1",
        "verify_token": "v1",
    }


def test_a_cloud_api_number_without_its_secrets_is_refused_in_spanish(admin_client, db):
    data = {"name": "X", "key": "x", "colour": "green", "provider": "cloudapi", "account": "abc"}
    page = admin_client.post(reverse("inbox:channel_new"), data)
    assert page.status_code == 400
    assert "Phone number ID" in page.text and "Falta este dato" in page.text


def test_an_agent_limited_to_one_number_sees_only_its_conversations(client, bob, soporte):
    ventas = Customer.objects.create(phone="+593968196001", name="Ventas Cliente")
    apoyo = Customer.objects.create(phone="+593968196002", name="Soporte Cliente")
    now = timezone.now()
    hidden = Conversation.objects.create(customer=ventas, last_message_at=now)
    shown = Conversation.objects.create(customer=apoyo, channel=soporte, last_message_at=now)
    soporte.agents.add(bob)
    client.force_login(bob)
    listing = client.get(reverse("inbox:list"), headers={"HX-Request": "true"})
    assert "Soporte Cliente" in listing.text and "Ventas Cliente" not in listing.text
    assert client.get(reverse("inbox:conversation", args=[hidden.pk])).status_code == 404
    assert client.get(reverse("inbox:conversation", args=[shown.pk])).status_code == 200


def test_the_tab_s_unread_count_counts_only_the_numbers_an_agent_works_on(
    client, alice, bob, soporte
):
    """The page's first render and its list re-fetches: Bob (Soporte only) has one unread
    conversation waiting, Alice (an admin) two, whatever number the list is filtered to."""
    now = timezone.now()
    for phone, channel in [("+593968196001", DEFAULT_CHANNEL), ("+593968196002", "soporte")]:
        customer = Customer.objects.create(phone=phone)
        Conversation.objects.create(
            customer=customer, channel_id=channel, last_message_at=now, unread_count=2
        )
    soporte.agents.add(bob)
    for user, count in [(bob, 1), (alice, 2)]:
        client.force_login(user)
        page = client.get(reverse("inbox:index"))
        assert f'<span id="unread-total" data-count="{count}" hidden>' in page.text
        listing = client.get(
            reverse("inbox:list"), {"channel": "soporte"}, headers={"HX-Request": "true"}
        )
        assert f'data-count="{count}" hx-swap-oob="true"' in listing.text


def test_a_reply_outside_meta_s_window_is_refused_and_inside_goes_on_its_number(
    client, bob, soporte
):
    customer = Customer.objects.create(phone="+593968196003", name="Ana")
    conversation = Conversation.objects.create(customer=customer, channel=soporte)
    Message.objects.create(
        conversation=conversation,
        direction="in",
        author_kind="customer",
        body="hola",
        status="received",
        created_at=timezone.now() - timedelta(hours=25),
    )
    client.force_login(bob)
    url = reverse("inbox:reply", args=[conversation.pk])
    closed = client.post(url, {"text": "¿Sigues ahí?"}, headers={"HX-Request": "true"})
    assert closed.status_code == 422
    assert "ventana de 24 horas" in closed.text.lower()
    assert not Message.objects.filter(direction="out").exists()
    Message.objects.create(
        conversation=conversation,
        direction="in",
        author_kind="customer",
        body="sí",
        status="received",
        created_at=timezone.now(),
    )
    client.post(url, {"text": "¡Listo!"}, headers={"HX-Request": "true"})
    [reply] = Message.objects.filter(direction="out")
    assert reply.conversation_id == conversation.pk


@pytest.mark.parametrize(
    ("fixture", "shown"),
    [("messages_unsupported", "Tipo no soportado"), ("messages_reaction", "Reacción")],
)
def test_a_reaction_and_an_unsupported_type_are_stored_and_shown(
    client, soporte, bob, fixture, shown
):
    body = (FIXTURES / f"{fixture}.json").read_bytes()
    assert _signed_post(client, body).status_code == 200
    from inbox.models import WebhookEvent

    assert WebhookEvent.objects.get().state == "processed"
    [message] = Message.objects.all()
    client.force_login(bob)
    page = client.get(reverse("inbox:conversation", args=[message.conversation_id]))
    assert shown in page.text
