"""Per-day rollups over a period: the daily trend and its totals, the best hours, the services."""

from datetime import date
from decimal import Decimal

from django.db.models import Count, F, Q, Sum
from django.db.models.functions import Coalesce, ExtractHour, TruncDate
from django.utils import timezone
from django.utils.translation import gettext as _

from customers.models import Renewal, Subscription
from inbox.models import Conversation, Message
from insights.selectors.common import (
    FIGURES,
    IN,
    OUT,
    _between,
    _channel_of,
    _delivered,
    _rate,
    _sum_counts,
    _without_jit,
)
from insights.selectors.period import GYE, Period, days_folded

CENT = Decimal("0.01")


def _per_day(queryset, field, channel=None) -> dict[tuple[date, str], int]:
    rows = (
        queryset.annotate(day=TruncDate(field, tzinfo=GYE), ch=channel or _channel_of())
        .values("day", "ch")
        .annotate(n=Count("id"))
        .order_by()
    )
    return {(row["day"], row["ch"]): row["n"] for row in rows}


@_without_jit
def daily_compute(period: Period) -> dict[tuple[date, str], dict]:
    """{(day, channel): figures} for the period's days, each channel that had any."""
    start, end = period.start, period.end
    messages = Message.objects.order_by()
    sent_rows = (
        messages.filter(OUT & _between("sent_at", start, end))
        .annotate(day=TruncDate("sent_at", tzinfo=GYE), ch=_channel_of())
        .values("day", "ch")
        .annotate(n=Count("id"), read=Count("id", filter=Q(read_at__isnull=False)))
    )
    series = {
        "sent": {(row["day"], row["ch"]): row["n"] for row in sent_rows},
        "delivered": _per_day(
            messages.filter(_delivered(start, end)), Coalesce("delivered_at", "read_at")
        ),
        "read": _per_day(messages.filter(OUT & _between("read_at", start, end)), "read_at"),
        "replies": _per_day(messages.filter(IN & _between("created_at", start, end)), "created_at"),
        "failed": _per_day(
            messages.filter(
                OUT & Q(status=Message.Status.FAILED) & _between("failed_at", start, end)
            ),
            "failed_at",
        ),
        "new_conversations": _per_day(
            Conversation.objects.filter(_between("created_at", start, end)),
            "created_at",
            channel=F("channel_id"),
        ),
    }
    series["sent_read"] = {(row["day"], row["ch"]): row["read"] for row in sent_rows}
    keys = {key for values in series.values() for key in values}
    return {key: {name: values.get(key, 0) for name, values in series.items()} for key in keys}


def daily_metrics(period: Period, *, channel: str | None = None) -> list[dict]:
    """One row per day of the period: sent, delivered, read, replies, failed, new
    conversations, and the open rate (read share of that day's sends); on one WhatsApp
    number (a channel key) or all of them."""
    empty = dict.fromkeys((*FIGURES, "sent_read"), 0)
    days = days_folded(
        "daily", period, daily_compute, channel=channel, empty=empty, merge=_sum_counts
    )
    return [
        {
            "day": day,
            **{name: row[name] for name in FIGURES},
            "sent_read": row["sent_read"],
            "open_rate": _rate(row["sent_read"], row["sent"]),
        }
        for day, row in days.items()
    ]


def totals(rows: list[dict]) -> dict:
    out = {name: sum(r[name] for r in rows) for name in (*FIGURES, "sent_read")}
    out["open_rate"] = _rate(out["sent_read"], out["sent"])
    return out


def summary(period: Period, *, channel: str | None = None) -> dict:
    """The period's totals (the API's summary), from the daily rollup."""
    out = totals(daily_metrics(period, channel=channel))
    out.pop("sent_read")
    return out


# --- best hours -------------------------------------------------------------------------------


def _hours_empty() -> dict:
    return {"replies": [0] * 24, "sent": [0] * 24, "sent_read": [0] * 24}


@_without_jit
def hours_compute(period: Period) -> dict[tuple[date, str], dict]:
    """{(day, channel): {"replies": [24], "sent": [24], "sent_read": [24]}}, Guayaquil hours."""
    start, end = period.start, period.end
    out: dict = {}
    replies = (
        Message.objects.filter(IN & _between("created_at", start, end))
        .annotate(
            day=TruncDate("created_at", tzinfo=GYE),
            hour=ExtractHour("created_at", tzinfo=GYE),
            ch=_channel_of(),
        )
        .values("day", "hour", "ch")
        .annotate(n=Count("id"))
        .order_by()
    )
    for row in replies:
        out.setdefault((row["day"], row["ch"]), _hours_empty())["replies"][row["hour"]] = row["n"]
    sent = (
        Message.objects.filter(OUT & _between("sent_at", start, end))
        .annotate(
            day=TruncDate("sent_at", tzinfo=GYE),
            hour=ExtractHour("sent_at", tzinfo=GYE),
            ch=_channel_of(),
        )
        .values("day", "hour", "ch")
        .annotate(n=Count("id"), read=Count("id", filter=Q(read_at__isnull=False)))
        .order_by()
    )
    for row in sent:
        cell = out.setdefault((row["day"], row["ch"]), _hours_empty())
        cell["sent"][row["hour"]] = row["n"]
        cell["sent_read"][row["hour"]] = row["read"]
    return out


def heatmaps(period: Period, *, channel: str | None = None) -> dict:
    """Weekday (0 = Monday) x hour grids, Guayaquil time: customer messages by when they were
    written; our messages by when they were sent, how many of those have been read, and the
    read rate."""
    empty = _hours_empty()
    grids = {name: [[0] * 24 for _ in range(7)] for name in empty}
    days = days_folded(
        "hours", period, hours_compute, channel=channel, empty=empty, merge=_sum_counts
    )
    for day, row in days.items():
        for name, grid in grids.items():
            weekday = day.weekday()
            grid[weekday] = [a + b for a, b in zip(grid[weekday], row[name], strict=True)]
    rate = [
        [_rate(r, n) for r, n in zip(reads, sents, strict=True)]
        for reads, sents in zip(grids["sent_read"], grids["sent"], strict=True)
    ]
    return {**grids, "rate": rate}


def weekday_names() -> list[str]:
    return [
        _("lunes"),
        _("martes"),
        _("miércoles"),
        _("jueves"),
        _("viernes"),
        _("sábado"),
        _("domingo"),
    ]


def slot_name(weekday: int, hour: int) -> str:
    """(1, 19) -> "martes 19:00-20:00" (0 = Monday)."""
    return f"{weekday_names()[weekday]} {hour:02d}:00-{(hour + 1) % 24:02d}:00"


def best_slots(grid, *, top: int = 3, weights=None, min_weight: int = 0) -> list[dict]:
    """The highest cells, named; with `weights`, cells with fewer than `min_weight` are left out
    (a 100 % read rate from one message is not a best hour)."""
    cells = []
    for weekday in range(7):
        for hour in range(24):
            value = grid[weekday][hour]
            if not value:
                continue
            if weights is not None and weights[weekday][hour] < min_weight:
                continue
            cells.append((value, weekday, hour))
    cells.sort(key=lambda c: (-c[0], c[1], c[2]))
    return [
        {"name": slot_name(d, h), "value": v, "weekday": d, "hour": h} for v, d, h in cells[:top]
    ]


def min_sample(sent_grid) -> int:
    """A read-rate cell counts as a best hour only with at least 5 % of the busiest cell's
    sends (and at least 5)."""
    busiest = max((max(row) for row in sent_grid), default=0)
    return max(5, busiest // 20)


# --- services ---------------------------------------------------------------------------------


@_without_jit
def renewals_compute(period: Period) -> dict[tuple[date, str], dict]:
    """{(day, ""): {service: [renewals, revenue]}}: a renewal belongs to no WhatsApp number."""
    rows = (
        Renewal.objects.filter(_between("renewed_at", period.start, period.end))
        .annotate(day=TruncDate("renewed_at", tzinfo=GYE))
        .values("day", "subscription__service__name")
        .annotate(n=Count("id"), revenue=Sum("amount"))
        .order_by()
    )
    out: dict = {}
    for row in rows:
        money = Decimal(row["revenue"] or 0).quantize(CENT)
        out.setdefault((row["day"], ""), {})[row["subscription__service__name"]] = [
            row["n"],
            str(money),
        ]
    return out


def _renewals_merge(a: dict, b: dict) -> dict:
    out = dict(a)
    for name, (n, money) in b.items():
        before = out.get(name, [0, "0.00"])
        out[name] = [before[0] + n, str(Decimal(before[1]) + Decimal(money))]
    return out


def popular_services(period: Period, *, today: date | None = None) -> list[dict]:
    """Per service: subscriptions active today (expires_on >= today), renewals in the period
    and their revenue (USD, the amounts paid). Subscriptions and renewals belong to customers,
    not to a WhatsApp number: the same on every channel."""
    today = today or timezone.localdate()
    active = dict(
        Subscription.objects.filter(expires_on__gte=today)
        .values_list("service__name")
        .annotate(n=Count("id"))
        .order_by()
    )
    renewals: dict[str, list] = {}
    days = days_folded(
        "renewals", period, renewals_compute, channel=None, empty={}, merge=_renewals_merge
    )
    for per_service in days.values():
        for name, (n, money) in per_service.items():
            total = renewals.setdefault(name, [0, Decimal("0.00")])
            total[0] += n
            total[1] += Decimal(money)
    rows = [
        {
            "service": name,
            "active": active.get(name, 0),
            "renewals": renewals.get(name, [0])[0],
            "revenue": renewals.get(name, [0, Decimal("0.00")])[1],
        }
        for name in set(active) | set(renewals)
    ]
    rows.sort(key=lambda r: (-r["active"], -r["renewals"], r["service"]))
    return rows
