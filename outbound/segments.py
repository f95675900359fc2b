"""Segments: audiences described by filters, evaluated in the database when used.

A segment's `filters` is a JSON object; every key is optional and the filters combine with AND:

    services       [service ids]       with service_mode:
    service_mode   "any"   has a subscription to at least one of them (default)
                   "all"   has a subscription to every one of them
                   "only"  has at least one, and no subscription to any other service
    state          "active"  has a subscription that has not expired (expires_on >= today)
                   "expired" has subscriptions, none of them active ("inactive customers")
                   "new"     every subscription started within the last `new_days` days
    new_days       1..3650 (default 30)
    expiring_days  0..366: an active subscription expires within N days (of the chosen
                   services, when services are given)
    behaviour      "fast", "slow" or "never": how the customer replies to us over the last 90
                   days, as inbox.selectors.reply_habit_condition defines it (the knowledge of
                   messages lives with the messages)
    cities, provinces  [names], case-insensitive, any of them
    tags           [tag ids], any of them
    contact        "within" / "older": a message in either direction within the last
                   `contact_days` days / none in that time (never contacted included)
    contact_days   1..3650

With `state: "active"` the service modes look at active subscriptions only: "Solo Netflix"
among active customers means Netflix is the only service they currently pay for.

Marketing audiences never include opted-out customers; `segment_count` says how many were left
out. Every filter is an EXISTS or an IN over an indexed subquery: one query per count.

The saved Segment lives in the customer book (customers.models); what it means is read here,
in outbound, the one that sends to audiences.
"""

from datetime import timedelta

from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from customers.models import Customer, Segment, Service, Subscription
from inbox.selectors import HABITS, contacted_condition, reply_habit_condition

SERVICE_MODES = ("any", "all", "only")
STATES = ("active", "expired", "new")
BEHAVIOURS = HABITS
CONTACTS = ("within", "older")

_INT_LIMITS = {
    "new_days": (1, 3650),
    "expiring_days": (0, 366),
    "contact_days": (1, 3650),
}
_KEYS = {
    "services",
    "service_mode",
    "state",
    "new_days",
    "expiring_days",
    "behaviour",
    "cities",
    "provinces",
    "tags",
    "contact",
    "contact_days",
}


# Ids are database keys: positive and within a bigint (SQLite raises beyond it).
ID_MAX = 2**63


class SegmentFilterError(ValueError):
    """Bad filters: `errors` maps each offending key to a Spanish message."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{key}: {message}" for key, message in errors.items()))
        self.errors = errors


def _int_or_error(value, key: str, errors: dict) -> int | None:
    if value is None or value == "":
        return None
    low, high = _INT_LIMITS[key]
    try:
        number = int(value)
    except (TypeError, ValueError, OverflowError):
        errors[key] = _("Debe ser un número entero.")
        return None
    if isinstance(value, float) and value != number:
        errors[key] = _("Debe ser un número entero.")
        return None
    if not low <= number <= high:
        errors[key] = _("Debe estar entre %(low)s y %(high)s.") % {"low": low, "high": high}
        return None
    return number


def _id_list(value, key: str, errors: dict) -> list[int]:
    if value in (None, ""):
        return []
    if not isinstance(value, list | tuple):
        value = [value]
    try:
        ids = sorted({int(item) for item in value})
    except (TypeError, ValueError, OverflowError):
        ids = None
    if ids is None or not all(0 < pk < ID_MAX for pk in ids):
        errors[key] = _("Debe ser una lista de identificadores.")
        return []
    return ids


def _text_list(value, key: str, errors: dict) -> list[str]:
    if value in (None, ""):
        return []
    if not isinstance(value, list | tuple):
        value = [value]
    if not all(isinstance(item, str) for item in value):
        errors[key] = _("Debe ser una lista de nombres.")
        return []
    return sorted({item.strip() for item in value if item.strip()})


def _choice(value, key: str, choices: tuple, errors: dict) -> str:
    if value in (None, ""):
        return ""
    if value not in choices:
        errors[key] = _("Valor no válido: %(value)s") % {"value": value}
        return ""
    return value


def segment_filters_clean(raw: dict) -> dict:
    """Validated, normalised filters (only the keys in use), or SegmentFilterError."""
    if not isinstance(raw, dict):
        raise SegmentFilterError({"filters": _("Los filtros deben ser un objeto.")})
    errors: dict[str, str] = {}
    for key in sorted(set(raw) - _KEYS):
        errors[key] = _("Filtro desconocido.")
    clean: dict = {}
    services = _id_list(raw.get("services"), "services", errors)
    if services:
        clean["services"] = services
        clean["service_mode"] = (
            _choice(raw.get("service_mode"), "service_mode", SERVICE_MODES, errors) or "any"
        )
    state = _choice(raw.get("state"), "state", STATES, errors)
    if state:
        clean["state"] = state
    if state == "new":
        clean["new_days"] = _int_or_error(raw.get("new_days"), "new_days", errors) or 30
    expiring = _int_or_error(raw.get("expiring_days"), "expiring_days", errors)
    if expiring is not None:
        clean["expiring_days"] = expiring
    behaviour = _choice(raw.get("behaviour"), "behaviour", BEHAVIOURS, errors)
    if behaviour:
        clean["behaviour"] = behaviour
    for key in ("cities", "provinces"):
        names = _text_list(raw.get(key), key, errors)
        if names:
            clean[key] = names
    tags = _id_list(raw.get("tags"), "tags", errors)
    if tags:
        clean["tags"] = tags
    contact = _choice(raw.get("contact"), "contact", CONTACTS, errors)
    if contact:
        days = _int_or_error(raw.get("contact_days"), "contact_days", errors)
        if days is None and "contact_days" not in errors:
            errors["contact_days"] = _("Indique el número de días.")
        clean["contact"] = contact
        clean["contact_days"] = days
    if errors:
        raise SegmentFilterError(errors)
    return clean


def _service_condition(subs: QuerySet, services: list[int], mode: str) -> Q | Exists:
    chosen = subs.filter(service_id__in=services)
    if mode == "all":
        return Q(*(Exists(subs.filter(service_id=service_id)) for service_id in services))
    if mode == "only":
        return Exists(chosen) & ~Exists(subs.exclude(service_id__in=services))
    return Exists(chosen)


def segment_queryset(filters: dict, *, marketing: bool = True) -> QuerySet[Customer]:
    """The customers matching the filters (validated first). A marketing audience (the default)
    leaves opted-out customers out; pass marketing=False for support or notification sends."""
    filters = segment_filters_clean(filters)
    now = timezone.now()
    today = timezone.localdate()
    customers = Customer.objects.all()
    if marketing:
        customers = customers.filter(marketing_opt_out_at__isnull=True)

    subs = Subscription.objects.filter(customer=OuterRef("pk"))
    active = subs.filter(expires_on__gte=today)
    state = filters.get("state")
    if state == "active":
        customers = customers.filter(Exists(active))
    elif state == "expired":
        customers = customers.filter(Exists(subs), ~Exists(active))
    elif state == "new":
        since = today - timedelta(days=filters["new_days"])
        customers = customers.filter(
            Exists(subs.filter(started_on__gte=since)), ~Exists(subs.filter(started_on__lt=since))
        )

    services = filters.get("services")
    if services:
        scope = active if state == "active" else subs
        customers = customers.filter(_service_condition(scope, services, filters["service_mode"]))

    if "expiring_days" in filters:
        expiring = active.filter(expires_on__lte=today + timedelta(days=filters["expiring_days"]))
        if services:
            expiring = expiring.filter(service_id__in=services)
        customers = customers.filter(Exists(expiring))

    if "behaviour" in filters:
        customers = customers.filter(reply_habit_condition(filters["behaviour"], now=now))

    for key, field in (("cities", "city"), ("provinces", "province")):
        if key in filters:
            places = Q()
            for name in filters[key]:
                places |= Q(**{f"{field}__iexact": name})
            customers = customers.filter(places)

    if "tags" in filters:
        tagged = Customer.tags.through.objects.filter(
            customer=OuterRef("pk"), tag_id__in=filters["tags"]
        )
        customers = customers.filter(Exists(tagged))

    if "contact" in filters:
        recent = contacted_condition(since=now - timedelta(days=filters["contact_days"]))
        customers = customers.filter(recent if filters["contact"] == "within" else ~recent)
    return customers


def segment_count(filters: dict, *, marketing: bool = True) -> tuple[int, int]:
    """(customers in the audience, opted-out customers left out of it), in one query."""
    matching = segment_queryset(filters, marketing=False).order_by()
    counts = matching.aggregate(
        total=Count("pk"), opted_out=Count("pk", filter=Q(marketing_opt_out_at__isnull=False))
    )
    if not marketing:
        return counts["total"], 0
    return counts["total"] - counts["opted_out"], counts["opted_out"]


# The proposal's quick audiences. "Solo <service>" exists only when the service does.
PRESETS: dict[str, tuple[str | Promise, dict]] = {
    "active": (gettext_lazy("Clientes activos"), {"state": "active"}),
    "inactive": (gettext_lazy("Clientes inactivos"), {"state": "expired"}),
}
PRESET_SERVICES = {"netflix": "Netflix", "hbo": "HBO Max"}


def segment_presets() -> dict[str, tuple[str | Promise, dict]]:
    """key -> (name, filters), in display order; one query for the services."""
    presets = dict(PRESETS)
    lookup = Q()
    for name in PRESET_SERVICES.values():
        lookup |= Q(name__iexact=name)
    found = {service.name.lower(): service for service in Service.objects.filter(lookup)}
    for key, name in PRESET_SERVICES.items():
        service = found.get(name.lower())
        if service is not None:
            label = _("Solo %(service)s") % {"service": service.name}
            presets[key] = (label, {"services": [service.pk], "service_mode": "only"})
    return presets


def segment_create(*, name: str, filters: dict, created_by=None) -> Segment:
    return Segment.objects.create(
        name=name, filters=segment_filters_clean(filters), created_by=created_by
    )


def segment_update(*, segment: Segment, name: str, filters: dict) -> Segment:
    segment.name = name
    segment.filters = segment_filters_clean(filters)
    segment.save(update_fields=["name", "filters", "updated_at"])
    return segment


def segment_delete(*, segment: Segment) -> None:
    """Campaigns copied its filters when they were created: they keep them."""
    segment.delete()
