"""renewal_record: the subscription extended and the Renewal written together, bad input
refused with the field named, an optional payment confirmation."""

from datetime import date, timedelta
from decimal import Decimal

import pytest

from customers.models import Renewal, Subscription
from inbox.models import Message
from outbound.models import MessageTemplate
from outbound.renewals import RenewalRejected, months_add, renewal_record
from tests.outbound.automations import at, customer_with, in_memory_layer  # noqa: F401

DAY = date(2026, 3, 2)


@pytest.fixture
def netflix(db):
    return customer_with("+593990000001", expires_on=DAY + timedelta(days=3))


def test_it_extends_by_months_from_the_current_expiry(netflix):
    result = renewal_record(
        subscription=netflix, months=1, amount=Decimal("7.99"), renewed_at=at(DAY, 10)
    )
    renewal = result.renewal
    assert (renewal.previous_expiry, renewal.new_expiry) == (date(2026, 3, 5), date(2026, 4, 5))
    assert renewal.amount == Decimal("7.99")
    assert renewal.renewed_at == at(DAY, 10)
    assert Subscription.objects.get().expires_on == date(2026, 4, 5)
    assert netflix.expires_on == date(2026, 4, 5)
    assert result.confirmation is None


def test_it_extends_an_expired_subscription_from_today(db):
    sub = customer_with("+593990000001", expires_on=DAY - timedelta(days=10))
    renewal = renewal_record(
        subscription=sub, months=3, amount=Decimal("20"), renewed_at=at(DAY, 10)
    ).renewal
    assert (renewal.previous_expiry, renewal.new_expiry) == (date(2026, 2, 20), date(2026, 6, 2))


def test_it_takes_a_new_expiry_and_finds_the_subscription_by_service_name(netflix):
    renewal = renewal_record(
        customer=netflix.customer,
        service="netflix",
        new_expiry=date(2026, 6, 30),
        amount=Decimal("21.00"),
        renewed_at=at(DAY, 10),
    ).renewal
    assert renewal.subscription == netflix
    assert renewal.new_expiry == date(2026, 6, 30)


def test_it_clamps_to_the_last_day_of_a_shorter_month():
    assert months_add(date(2026, 1, 31), 1) == date(2026, 2, 28)
    assert months_add(date(2026, 11, 30), 3) == date(2027, 2, 28)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"service": "Disney+"}, "service"),
        ({"service": "Netflix", "months": 0}, "months"),
        ({"service": "Netflix", "months": 37}, "months"),
        ({"service": "Netflix"}, "new_expiry"),
        ({"service": "Netflix", "months": 1, "new_expiry": date(2026, 9, 1)}, "new_expiry"),
        ({"service": "Netflix", "new_expiry": date(2026, 3, 5)}, "new_expiry"),
        ({"service": "Netflix", "months": 1, "amount": Decimal("-1")}, "amount"),
    ],
)
def test_it_refuses_bad_input_and_changes_nothing(netflix, kwargs, field):
    kwargs = {"amount": Decimal("7.99"), **kwargs}
    with pytest.raises(RenewalRejected) as caught:
        renewal_record(customer=netflix.customer, renewed_at=at(DAY, 10), **kwargs)
    assert caught.value.field == field
    assert not Renewal.objects.exists()
    assert Subscription.objects.get().expires_on == date(2026, 3, 5)


def test_it_refuses_a_service_the_customer_does_not_have(netflix):
    customer_with("+593990000002", expires_on=DAY, service_name="Spotify")
    with pytest.raises(RenewalRejected) as caught:
        renewal_record(customer=netflix.customer, service="Spotify", months=1, amount=Decimal(1))
    assert "Spotify" in caught.value.message


def test_it_refuses_the_same_new_expiry_twice(netflix):
    again = {"new_expiry": date(2026, 4, 5), "amount": Decimal("7.99"), "renewed_at": at(DAY, 10)}
    renewal_record(subscription=netflix, **again)
    with pytest.raises(RenewalRejected):
        renewal_record(subscription=netflix, **again)
    assert Renewal.objects.count() == 1


def test_it_sends_the_payment_confirmation(netflix, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        result = renewal_record(
            subscription=netflix,
            months=1,
            amount=Decimal("7.99"),
            send_confirmation=True,
            renewed_at=at(DAY, 10),
        )
    message = Message.objects.get()
    assert result.confirmation == message
    assert (message.author_kind, message.status) == ("bot", "queued")
    assert message.body.startswith(
        "✅ ¡Pago recibido, María! Tu Netflix quedó renovado hasta el 5 de abril."
    )
    assert message.conversation.customer == netflix.customer


def test_it_keeps_the_renewal_when_the_confirmation_cannot_be_written(netflix):
    MessageTemplate.objects.filter(name="Pago recibido").update(archived=True)
    result = renewal_record(
        subscription=netflix, months=1, amount=Decimal("7.99"), send_confirmation=True
    )
    assert result.confirmation is None
    assert "Pago recibido" in result.confirmation_skipped
    assert Renewal.objects.count() == 1
    assert not Message.objects.exists()
