"""Writes to the customer book. Other apps call these, never the models' managers directly."""

from django.db import IntegrityError, transaction
from django.utils import timezone

from customers.models import Customer, Tag
from customers.phones import phone_normalize, phone_normalize_reported


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


def customer_get_or_create_reported(*, phone: str, name: str = "") -> tuple[Customer, bool]:
    """As customer_get_or_create, for a number WhatsApp reported (a sender, the chat of our
    own echo): a number the phone library calls invalid is kept, flagged `phone_valid=False`
    for a person to check, instead of dropping the customer's message."""
    e164, valid = phone_normalize_reported(phone)
    customer = Customer.objects.filter(phone=e164).first()
    if customer:
        return customer, False
    try:
        with transaction.atomic():
            created = Customer.objects.create(
                phone=e164, name=name.strip()[:120], phone_valid=valid
            )
            return created, True
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


def customer_marketing_opt_out(*, customer: Customer, reason: str, at=None) -> bool:
    """Out of every marketing audience. A conditional update: True only for the call that
    changed something (a customer already out keeps their first date and reason)."""
    at = at or timezone.now()
    changed = Customer.objects.filter(pk=customer.pk, marketing_opt_out_at__isnull=True).update(
        marketing_opt_out_at=at, marketing_opt_out_reason=reason[:200]
    )
    if changed:
        customer.marketing_opt_out_at, customer.marketing_opt_out_reason = at, reason[:200]
    return bool(changed)


def customer_marketing_opt_in(*, customer: Customer) -> bool:
    """Back into marketing; True only when the customer was out."""
    changed = Customer.objects.filter(pk=customer.pk, marketing_opt_out_at__isnull=False).update(
        marketing_opt_out_at=None, marketing_opt_out_reason=""
    )
    if changed:
        customer.marketing_opt_out_at, customer.marketing_opt_out_reason = None, ""
    return bool(changed)
