"""Writes to the customer book. Other apps call these, never the models' managers directly."""

from django.db import IntegrityError, transaction

from customers.models import Customer
from customers.phones import phone_normalize


def customer_get_or_create(*, phone: str, name: str = "") -> tuple[Customer, bool]:
    """Find the customer by any spelling of their phone, or create them (safe under races:
    the unique E.164 phone decides)."""
    e164 = phone_normalize(phone)
    customer = Customer.objects.filter(phone=e164).first()
    if customer:
        return customer, False
    try:
        with transaction.atomic():
            return Customer.objects.create(phone=e164, name=name.strip()[:120]), True
    except IntegrityError:
        return Customer.objects.get(phone=e164), False
