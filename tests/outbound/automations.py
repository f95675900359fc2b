"""Shared by the automation tests: an in-memory channel layer of the test's own, Guayaquil
clock times, a customer with subscriptions."""

from datetime import date, datetime, time
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from customers.models import Customer, Service, Subscription

GYE = ZoneInfo("America/Guayaquil")


@pytest.fixture(autouse=True)
def in_memory_layer(settings, monkeypatch):
    """Events go to an in-memory layer of the test's own, never to a running chatdesk's
    (autouse in every module that imports it), with a flood budget of its own: the tests
    before it may have published more in this second than the flood rule lets through."""
    from channels.layers import channel_layers

    from inbox import events

    monkeypatch.setattr(events, "_budget", events._ListBudget())
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


def at(day: date, hour: int, minute: int = 0) -> datetime:
    """A Guayaquil wall-clock time."""
    return datetime.combine(day, time(hour, minute), tzinfo=GYE)


def service(name: str = "Netflix", price: str = "7.99") -> Service:
    return Service.objects.get_or_create(name=name, defaults={"normal_price": Decimal(price)})[0]


def customer_with(
    phone: str,
    name: str = "María González",
    *,
    expires_on: date,
    started_on: date | None = None,
    service_name: str = "Netflix",
    price: str = "7.99",
    **fields,
) -> Subscription:
    customer, _ = Customer.objects.get_or_create(phone=phone, defaults={"name": name, **fields})
    return Subscription.objects.create(
        customer=customer,
        service=service(service_name),
        price=Decimal(price),
        started_on=started_on or date(2025, 1, 10),
        expires_on=expires_on,
    )
