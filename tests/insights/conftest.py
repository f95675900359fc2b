"""A small fixed data set with hand-computed figures (see test_selectors.py for the sums).

Day D = Monday 2025-03-10, D1 = Tuesday 2025-03-11, Guayaquil time (UTC-5).
"""

from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.core.cache import cache

from customers.models import Customer, Renewal, Service, Subscription
from inbox.models import Conversation, Message, Resolution
from outbound.models import Campaign, CampaignRecipient, MessageTemplate, ReminderRule, ReminderSent
from tests.procs import redis_url_for_tests

GYE = ZoneInfo("America/Guayaquil")
D = date(2025, 3, 10)
D1 = date(2025, 3, 11)


def at(day: date, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=GYE)


@pytest.fixture(autouse=True)
def _fresh_cache(settings):
    """An empty cache per test; with Redis, the tests' own Redis database (clear() flushes it)."""
    if settings.REDIS_URL:
        settings.CACHES = {
            "default": {**settings.CACHES["default"], "LOCATION": redis_url_for_tests()}
        }
    cache.clear()
    yield
    cache.clear()


def out(conversation, created, *, status, author="agent", **stamps) -> Message:
    return Message.objects.create(
        conversation=conversation,
        direction="out",
        author_kind=author,
        status=status,
        created_at=created,
        body=stamps.pop("body", "hola"),
        **stamps,
    )


def inbound(conversation, created, body="gracias") -> Message:
    return Message.objects.create(
        conversation=conversation,
        direction="in",
        author_kind="customer",
        status="received",
        created_at=created,
        body=body,
    )


@pytest.fixture
def world(db, bob):
    netflix = Service.objects.create(name="Netflix", normal_price=Decimal("12.99"))
    hbo = Service.objects.create(name="HBO Max", normal_price=Decimal("9.99"))
    ana = Customer.objects.create(name="Ana", phone="+593990000001")
    beto = Customer.objects.create(
        name="Beto", phone="+593990000002", marketing_opt_out_at=at(D1, 11)
    )
    ana_sub = Subscription.objects.create(
        customer=ana,
        service=netflix,
        price=Decimal("12.99"),
        started_on=date(2025, 1, 1),
        expires_on=date(2099, 1, 1),
    )
    Subscription.objects.create(
        customer=beto,
        service=hbo,
        price=Decimal("9.99"),
        started_on=date(2019, 1, 1),
        expires_on=date(2020, 1, 1),
    )
    Renewal.objects.create(
        subscription=ana_sub,
        renewed_at=at(D, 15),
        previous_expiry=date(2099, 1, 1),
        new_expiry=date(2099, 2, 1),
        amount=Decimal("12.99"),
    )
    conv_a = Conversation.objects.create(
        customer=ana,
        created_at=at(D, 8),
        status="resolved",
        assignee=bob,
        last_message_at=at(D1, 0, 20),
    )
    conv_b = Conversation.objects.create(customer=beto, created_at=at(D1, 9))
    m1 = out(
        conv_a,
        at(D, 9),
        status="read",
        author="reminder",
        sent_at=at(D, 9, 0, 5),
        delivered_at=at(D, 9, 1),
        read_at=at(D, 10),
    )
    # Sent 23:30 local on D (04:30 UTC on D1) and read without a delivered report.
    m2 = out(
        conv_a,
        at(D, 23),
        status="read",
        author="campaign",
        sent_at=at(D, 23, 30),
        read_at=at(D1, 8),
    )
    out(
        conv_a,
        at(D, 12),
        status="failed",
        author="agent",
        failed_at=at(D, 12, 1),
        failure_reason="El número no tiene WhatsApp",
    )
    inbound(conv_a, at(D, 23, 45))  # 04:45 UTC on D1, still D in Guayaquil
    inbound(conv_a, at(D1, 0, 10))
    m6 = out(
        conv_b,
        at(D1, 10),
        status="delivered",
        author="campaign",
        sent_at=at(D1, 10),
        delivered_at=at(D1, 10, 5),
    )
    out(conv_a, at(D1, 0, 20), status="queued", author="agent", agent=bob)
    # Bob marked it resolved with his answer, 35 minutes after the customer wrote.
    Resolution.objects.create(
        conversation=conv_a, assignee=bob, started_at=at(D, 23, 45), resolved_at=at(D1, 0, 20)
    )
    template = MessageTemplate.objects.create(name="Aviso", category="notification", body="x")
    rule = ReminderRule.objects.create(name="3 días antes", days_from_expiry=-3, template=template)
    ReminderSent.objects.create(
        rule=rule,
        subscription=ana_sub,
        expiry_date=date(2025, 3, 13),
        outcome="sent",
        message=m1,
        created_at=at(D, 9),
    )
    promo = Campaign.objects.create(
        title="Promo =marzo", body="x", state="completed", launched_at=at(D, 22)
    )
    CampaignRecipient.objects.create(campaign=promo, customer=ana, state="sent", message=m2)
    CampaignRecipient.objects.create(campaign=promo, customer=beto, state="sent", message=m6)
    return {"ana": ana, "beto": beto, "conv_a": conv_a, "conv_b": conv_b, "promo": promo}


def days_ago(n: int) -> datetime:
    from django.utils import timezone

    return timezone.now() - timedelta(days=n)
