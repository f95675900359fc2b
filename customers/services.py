"""Writes to the customer book. Other apps call these, never the models' managers directly."""

from django.db import IntegrityError, transaction

from customers.models import Customer, Tag
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


def tag_get_or_create(*, name: str) -> Tag:
    """Tags are case-insensitively unique (the database says so): "vip" finds "VIP"."""
    name = " ".join(name.split())[:60]
    tag = Tag.objects.filter(name__iexact=name).first()
    if tag:
        return tag
    try:
        with transaction.atomic():
            return Tag.objects.create(name=name)
    except IntegrityError:
        return Tag.objects.get(name__iexact=name)


def customer_update(
    *, customer: Customer, name: str, city: str, province: str, tags: list[str], notes: str
) -> Customer:
    """The customer page's edit form. Tags given are the whole set (missing ones are removed,
    new names are created). The phone and the opt-out are not editable here on purpose: the
    phone is the identity and the opt-out belongs to the customer."""
    with transaction.atomic():
        customer.name, customer.city, customer.province, customer.notes = (
            name.strip(),
            city.strip(),
            province.strip(),
            notes.strip(),
        )
        customer.save(update_fields=["name", "city", "province", "notes"])
        customer.tags.set([tag_get_or_create(name=t) for t in tags if t.strip()])
    return customer
