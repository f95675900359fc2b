"""Marking a conversation resolved records the resolution (the analytics' resolution time)."""

from django.utils import timezone

from customers.models import Customer
from inbox import conversations
from inbox.models import Conversation, Message, Resolution


def _inbound(conversation, at) -> Message:
    return Message.objects.create(
        conversation=conversation,
        direction="in",
        author_kind="customer",
        status="received",
        created_at=at,
        body="hola",
    )


def test_it_records_who_resolved_from_which_customer_message(db, bob):
    customer = Customer.objects.create(name="Ana", phone="+593990000001")
    conversation = Conversation.objects.create(customer=customer, assignee=bob)
    first = _inbound(conversation, timezone.now())
    _inbound(conversation, timezone.now())

    assert conversations.conversation_resolve(conversation=conversation)
    # A second click changes nothing and records nothing.
    assert not conversations.conversation_resolve(conversation=conversation)

    (resolution,) = Resolution.objects.all()
    assert resolution.conversation_id == conversation.pk
    assert resolution.assignee_id == bob.pk
    assert resolution.channel_id == conversation.channel_id
    assert resolution.started_at == first.created_at
    assert resolution.started_at <= resolution.resolved_at


def test_reopening_keeps_the_resolution_and_resolving_again_adds_one(db, bob):
    customer = Customer.objects.create(name="Ana", phone="+593990000001")
    conversation = Conversation.objects.create(customer=customer, assignee=bob)
    _inbound(conversation, timezone.now())
    conversations.conversation_resolve(conversation=conversation)
    conversations.conversation_reopen(conversation=conversation)
    assert Resolution.objects.count() == 1

    again = _inbound(conversation, timezone.now())
    conversations.conversation_resolve(conversation=conversation)
    first, second = Resolution.objects.order_by("resolved_at")
    # The second one starts at the customer's first message after the first resolution.
    assert second.started_at == again.created_at > first.resolved_at


def test_the_backfill_starts_old_resolutions_within_their_last_week(db, bob):
    """Conversations resolved before resolutions were recorded get one row each, started at
    the first customer message of their last week (not their first message ever)."""
    import importlib
    from datetime import timedelta

    from django.apps import apps

    backfill = importlib.import_module("inbox.migrations.0013_resolution_backfill").backfill
    now = timezone.now()
    customer = Customer.objects.create(name="Ana", phone="+593990000001")
    old = Conversation.objects.create(
        customer=customer, assignee=bob, status="resolved", last_message_at=now
    )
    _inbound(old, now - timedelta(days=40))
    recent = _inbound(old, now - timedelta(days=2))
    _inbound(old, now - timedelta(hours=1))
    silent = Conversation.objects.create(
        customer=Customer.objects.create(name="Beto", phone="+593990000002"),
        status="resolved",
        last_message_at=now,
    )
    Conversation.objects.create(customer=customer, channel_id="otro")  # open: no row

    backfill(apps, None)

    rows = {r.conversation_id: r for r in Resolution.objects.all()}
    assert set(rows) == {old.pk, silent.pk}
    assert rows[old.pk].started_at == recent.created_at
    assert rows[old.pk].resolved_at == now and rows[old.pk].assignee_id == bob.pk
    assert rows[silent.pk].started_at is None
