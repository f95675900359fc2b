"""Webhook helpers: fixtures by name, and a POST through the real endpoint with the secret."""

import json
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone

from customers.services import customer_get_or_create
from inbox.models import Message
from inbox.services import conversation_get_or_create

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "wasender"
URL = "/webhooks/wasender/"


def fixture_load(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def webhook_post(client, body, *, secret: str | None = None, raw: bool = False):
    headers = {
        "X-Webhook-Signature": settings.WASENDER_WEBHOOK_SECRET if secret is None else secret
    }
    data = body if raw else json.dumps(body)
    return client.post(URL, data=data, content_type="application/json", headers=headers)


@pytest.fixture
def post(client, db):
    """post(body or fixture name) -> the response, asserting nothing."""

    def send(body, **kwargs):
        if isinstance(body, str) and not kwargs.get("raw"):
            body = fixture_load(body)
        return webhook_post(client, body, **kwargs)

    return send


def outbound_row(
    *,
    phone: str = "593968196046",
    body: str = "Hola",
    provider_msg_id=None,
    wa_id=None,
    status: str = "sent",
    at=None,
) -> Message:
    """An outbound message as the send pipeline leaves it after WaSender accepted it."""
    customer, _ = customer_get_or_create(phone=phone)
    conversation = conversation_get_or_create(customer=customer)
    at = at or timezone.now()
    return Message.objects.create(
        conversation=conversation,
        direction="out",
        author_kind="agent",
        body=body,
        provider_msg_id=provider_msg_id,
        wa_id=wa_id,
        status=status,
        created_at=at,
        sent_at=at,
    )
