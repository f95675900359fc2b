"""Replaying every fixture twice, in shuffled order, leaves the same database as once: the
intake is idempotent and order-independent (deferred events settled by the retry sweep)."""

import random
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from customers.models import Customer
from inbox import intake
from inbox.models import Conversation, Message, SessionState, WebhookEvent
from tests.inbox.conftest import FIXTURES, fixture_load, outbound_row, webhook_post

ALL = sorted(p.stem for p in FIXTURES.glob("*.json"))
T0 = datetime(2025, 11, 24, 14, 0, tzinfo=UTC)


def seed_pipeline_rows() -> None:
    """What the send pipeline would have left: sends accepted by WaSender."""
    outbound_row(provider_msg_id=100123, body="Son $12.99, te envío el link de pago", at=T0)
    outbound_row(wa_id="3EB0C0FFEE0000000002", at=T0)
    outbound_row(wa_id="3EB0C0FFEE0000000003", at=T0)
    outbound_row(phone="593992223344", provider_msg_id=100124, at=T0)


def replay(client, names: list[str]) -> None:
    for name in names:
        assert webhook_post(client, fixture_load(name)).status_code == 200
    now = timezone.now()
    intake.webhook_events_retry_due(now=now + timedelta(minutes=5))  # deferred ones, in time
    intake.webhook_events_retry_due(now=now + timedelta(hours=1))  # the rest give up


def dump() -> dict:
    messages = Message.objects.select_related("conversation__customer")
    return {
        "customers": sorted(
            (c.phone, c.name, c.whatsapp_lid or "") for c in Customer.objects.all()
        ),
        "conversations": sorted(
            (
                c.customer.phone,
                c.channel_id,
                c.status,
                c.unread_count,
                c.last_message_at,
                c.last_message_preview,
            )
            for c in Conversation.objects.select_related("customer")
        ),
        "messages": sorted(
            (
                m.wa_id or "",
                m.provider_msg_id or 0,
                m.conversation.customer.phone,
                m.direction,
                m.author_kind,
                m.kind,
                m.body,
                m.status,
                m.failure_reason,
                m.created_at,
                m.sent_at,
                m.delivered_at,
                m.read_at,
                m.played_at,
                m.failed_at,
                m.media_url,
                m.media_mime,
                m.media_filename,
                m.media_size or 0,
            )
            for m in messages
        ),
        "sessions": sorted(SessionState.objects.values_list("session", "status", "changed_at")),
    }


def wipe() -> None:
    for model in (Message, Conversation, Customer, WebhookEvent, SessionState):
        model.objects.all().delete()


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5, 6])
def test_replaying_the_fixtures_twice_shuffled_gives_the_same_database(client, db, seed):
    seed_pipeline_rows()
    replay(client, ALL)
    once = dump()
    wipe()
    seed_pipeline_rows()
    twice = ALL * 2
    random.Random(seed).shuffle(twice)
    replay(client, twice)
    assert dump() == once


def test_the_replayed_database_is_what_the_fixtures_say(client, db):
    seed_pipeline_rows()
    replay(client, ALL)
    state = dump()
    assert len(state["customers"]) == 4  # María, Carlos, Lucía, Jorge; no LID-only, no group
    by_wa_id = {m[0]: m for m in state["messages"]}
    assert by_wa_id["3EB0C0FFEE0000000001"][4:8] == (
        "agent",
        "text",
        "Son $12.99, te envío el link de pago",
        "read",
    )
    assert by_wa_id["3EB0C0FFEE0000000002"][7] == "read"
    assert by_wa_id["3EB0C0FFEE0000000003"][7] == "failed"
    assert by_wa_id["3EB0C0FFEE0000000004"][7] == "delivered"
    assert by_wa_id["3EB0F00E0000000000001"][4] == "phone"
    assert len([m for m in state["messages"] if m[3] == "in"]) == 10
    assert state["sessions"] == [
        ("session-123", "need_scan", datetime.fromtimestamp(1764002100, UTC))
    ]
