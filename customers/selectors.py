"""Reads over the customer book: the list's search and filters, the customer page."""

import re
from dataclasses import dataclass
from datetime import timedelta

from django.db.models import Exists, OuterRef, Prefetch, Q, QuerySet
from django.utils import timezone

from customers.models import Customer, Renewal, Service, Subscription, Tag
from customers.phones import InvalidPhone, phone_normalize

SORTS = {
    "name": ("name", "id"),
    "-name": ("-name", "-id"),
    "created": ("created_at", "id"),
    "-created": ("-created_at", "-id"),
}
STATES = ("active", "expired", "none")


@dataclass(frozen=True)
class CustomerFilters:
    q: str = ""
    service: int | None = None
    state: str = ""  # active / expired / none
    expiring_days: int | None = None
    city: str = ""
    province: str = ""
    tag: int | None = None
    opted_out: str = ""  # yes / no
    sort: str = "name"


def phone_search_q(q: str, *, field: str = "phone") -> Q | None:
    """A query that looks like a phone matches by phone: the whole number in any format, or a
    run of its digits ("0968 19" finds +593968196046). `field` is the path to the customer's
    phone from the model searched ("customer__phone" from a conversation). None when the
    query is not a phone: search by name or text instead."""
    if not re.fullmatch(r"[\d\s()+.\-]+", q):
        return None
    try:
        return Q(**{field: phone_normalize(q)})
    except InvalidPhone:
        pass
    digits = re.sub(r"\D", "", q)
    if len(digits) < 3:
        return None
    # National spelling: the trunk "0" is not part of the E.164 number.
    return Q(**{f"{field}__contains": digits.removeprefix("0") or digits})


def customer_search(*, filters: CustomerFilters) -> QuerySet[Customer]:
    """The filtered, sorted list, with what each row shows prefetched (no N+1)."""
    today = timezone.localdate()
    customers = Customer.objects.all()
    q = filters.q.strip()
    if q:
        by_phone = phone_search_q(q)
        customers = customers.filter(by_phone if by_phone is not None else Q(name__icontains=q))

    # State, service and expiry all speak of the same subscriptions: "Netflix, active".
    subs = Subscription.objects.filter(customer=OuterRef("pk"))
    if filters.service:
        subs = subs.filter(service_id=filters.service)
    if filters.state == "active":
        customers = customers.filter(Exists(subs.filter(expires_on__gte=today)))
    elif filters.state == "expired":
        customers = customers.filter(Exists(subs), ~Exists(subs.filter(expires_on__gte=today)))
    elif filters.state == "none":
        customers = customers.filter(~Exists(subs))
    elif filters.service:
        customers = customers.filter(Exists(subs))
    if filters.expiring_days is not None:
        until = today + timedelta(days=filters.expiring_days)
        customers = customers.filter(
            Exists(subs.filter(expires_on__gte=today, expires_on__lte=until))
        )

    if filters.city:
        customers = customers.filter(city=filters.city)
    if filters.province:
        customers = customers.filter(province=filters.province)
    if filters.tag:
        through = Customer.tags.through.objects.filter(customer=OuterRef("pk"), tag_id=filters.tag)
        customers = customers.filter(Exists(through))
    if filters.opted_out == "yes":
        customers = customers.filter(marketing_opt_out_at__isnull=False)
    elif filters.opted_out == "no":
        customers = customers.filter(marketing_opt_out_at__isnull=True)

    return customers.order_by(*SORTS.get(filters.sort, SORTS["name"])).prefetch_related(
        "tags",
        Prefetch("subscriptions", queryset=Subscription.objects.select_related("service")),
    )


def customer_filter_choices() -> dict:
    """The options of the list's filter form: small tables, one query each."""
    customers = Customer.objects.order_by()
    return {
        "services": list(Service.objects.order_by("name")),
        "tags": list(Tag.objects.order_by("name")),
        "cities": list(
            customers.exclude(city="").values_list("city", flat=True).distinct().order_by("city")
        ),
        "provinces": list(
            customers.exclude(province="")
            .values_list("province", flat=True)
            .distinct()
            .order_by("province")
        ),
    }


def customer_get(*, customer_id: int) -> Customer:
    """One customer with everything the customer page shows."""
    return Customer.objects.prefetch_related(
        "tags",
        Prefetch(
            "subscriptions",
            queryset=Subscription.objects.select_related("service").order_by("expires_on"),
        ),
        # The conversation lives in inbox; reading it through the reverse relation keeps
        # customers free of any import from inbox.
        "conversations",
    ).get(pk=customer_id)


def customer_renewals(*, customer: Customer) -> QuerySet[Renewal]:
    return (
        Renewal.objects.filter(subscription__customer=customer)
        .select_related("subscription__service")
        .order_by("-renewed_at")
    )
