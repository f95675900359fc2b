"""Conversations and messages for the live inbox tests, written straight to the tables (the
intake and the send pipeline have tests of their own)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from customers.models import Customer
from inbox.models import Conversation, Message

HOSTILE = "<img src=x onerror=alert(1)>"


def conversation_with(
    phone: str, name: str = "", *, text: str = "Hola", minutes_ago: int = 0, **fields
) -> Conversation:
    customer = Customer.objects.create(phone=phone, name=name)
    at = timezone.now() - timedelta(minutes=minutes_ago)
    conversation = Conversation.objects.create(
        customer=customer, last_message_at=at, last_message_preview=text[:160], **fields
    )
    Message.objects.create(
        conversation=conversation,
        direction="in",
        author_kind="customer",
        body=text,
        status="received",
        created_at=at,
    )
    return conversation


def message_in(conversation: Conversation, text: str, *, minutes_ago: int = 0) -> Message:
    return Message.objects.create(
        conversation=conversation,
        direction="in",
        author_kind="customer",
        body=text,
        status="received",
        created_at=timezone.now() - timedelta(minutes=minutes_ago),
    )


@pytest.fixture
def carlos(db):
    return conversation_with("+593968196046", "Carlos Pérez", text="Quiero renovar Netflix")


@pytest.fixture
def channel_layer(settings):
    """The tests' own layer: in memory, or the CI Redis on the tests' database (never the
    database a running chatdesk uses)."""
    import os

    from chatdesk.config import channel_layers

    redis_url = ""
    if os.environ.get("REDIS_URL"):
        from tests.procs import redis_url_for_tests

        redis_url = redis_url_for_tests()
    settings.CHANNEL_LAYERS = channel_layers(redis_url)
    yield
