"""Conversion over a period: what followed the reminders, and the campaigns compared."""

import hashlib
from datetime import date, timedelta

from django.core.cache import cache
from django.db.models import Count, DateTimeField, Exists, ExpressionWrapper, F, OuterRef, Q
from django.db.models.functions import TruncDate
from django.utils import timezone

from customers.models import Renewal
from inbox.models import Message
from insights.selectors.common import IN, _between, _rate, _without_jit
from insights.selectors.period import (
    CACHE_SECONDS,
    GYE,
    LIVE_SECONDS,
    SETTLE_DAYS,
    Period,
    days_cached,
)

# --- conversion after reminders ----------------------------------------------------------------


def _funnel_compute(within_days: int):
    window = timedelta(days=within_days)

    @_without_jit
    def compute(period: Period) -> dict[date, dict]:
        from outbound.models import ReminderSent

        later = ExpressionWrapper(OuterRef("created_at") + window, output_field=DateTimeField())
        replied = Message.objects.filter(
            IN,
            conversation=OuterRef("message__conversation"),
            created_at__gt=OuterRef("created_at"),
            created_at__lte=later,
        )
        renewed = Renewal.objects.filter(
            subscription=OuterRef("subscription"),
            renewed_at__gte=OuterRef("created_at"),
            renewed_at__lte=later,
        )
        rows = (
            ReminderSent.objects.filter(
                _between("created_at", period.start, period.end),
                outcome=ReminderSent.Outcome.SENT,
                message__isnull=False,
            )
            .annotate(day=TruncDate("created_at", tzinfo=GYE))
            .values("day", "rule__name", "subscription__service__name")
            .annotate(
                reminded=Count("id"),
                read=Count("id", filter=Q(message__read_at__isnull=False)),
                replied=Count("id", filter=Exists(replied)),
                renewed=Count("id", filter=Exists(renewed)),
            )
            .order_by()
        )
        out: dict = {}
        for r in rows:
            key = f"{r['rule__name']}\x1f{r['subscription__service__name']}"
            out.setdefault(r["day"], {})[key] = [
                r["reminded"],
                r["read"],
                r["replied"],
                r["renewed"],
            ]
        return out

    return compute


FUNNEL_STEPS = ("reminded", "read", "replied", "renewed")


def _funnel_row(values, **extra) -> dict:
    row = {**extra, **dict(zip(FUNNEL_STEPS, values, strict=True))}
    for name in FUNNEL_STEPS[1:]:
        row[f"{name}_rate"] = _rate(row[name], row["reminded"])
    return row


def reminder_funnel(period: Period, *, within_days: int = 7) -> dict:
    """Reminders sent in the period (ReminderSent rows with a message): how many were read,
    how many got a customer message in the same conversation within N days, and how many were
    followed by a renewal of the reminded subscription within N days (as outbound's own
    reminder stats count conversion). Totals, by rule and by service."""
    days = days_cached(
        f"funnel{within_days}",
        period,
        _funnel_compute(within_days),
        empty={},
        settle_days=within_days + SETTLE_DAYS,
    )
    by_rule: dict[str, list] = {}
    by_service: dict[str, list] = {}
    total = [0, 0, 0, 0]
    for per_day in days.values():
        for key, values in per_day.items():
            rule, service = key.split("\x1f")
            for bucket, name in ((by_rule, rule), (by_service, service)):
                sums = bucket.setdefault(name, [0, 0, 0, 0])
                for i, value in enumerate(values):
                    sums[i] += value
            for i, value in enumerate(values):
                total[i] += value
    return {
        "within_days": within_days,
        "total": _funnel_row(total),
        "rules": [_funnel_row(v, name=k) for k, v in sorted(by_rule.items())],
        "services": [_funnel_row(v, name=k) for k, v in sorted(by_service.items())],
    }


# --- campaigns --------------------------------------------------------------------------------

CAMPAIGN_SORTS = (
    "title",
    "launched_at",
    "recipients",
    "sent",
    "open_rate",
    "reply_rate",
    "conversion_rate",
    "opt_outs",
    "failed",
)


@_without_jit
def campaign_comparison(period: Period, *, within_days: int = 7, sort: str = "-launched_at"):
    """Campaigns launched in the period, each over its recipients' messages:

    - enviados: messages with sent_at; fallidos: messages that ended failed;
    - apertura: read / sent; respuesta: sent messages followed by a customer message in the
      same conversation within N days / sent;
    - conversión: sent messages followed by a renewal of any of the customer's subscriptions
      within N days / sent;
    - bajas: recipients who opted out of marketing within N days of the send.
    One grouped query over the campaigns not cached yet: an ended campaign is cached once its
    N-day window, plus the settling days, has passed; the others are recomputed at most every
    LIVE_SECONDS."""
    from outbound.models import Campaign

    window = timedelta(days=within_days)
    launched = Campaign.objects.filter(launched_at__gte=period.start, launched_at__lt=period.end)
    settled_before = timezone.now() - window - timedelta(days=SETTLE_DAYS)
    ended = (Campaign.State.COMPLETED, Campaign.State.CANCELLED)
    keys = {
        pk: f"insights:v2:campaign{within_days}:{pk}"
        for pk, at, state in launched.values_list("pk", "launched_at", "state")
        if at < settled_before and state in ended
    }
    cached = cache.get_many(list(keys.values()))
    done = [pk for pk, key in keys.items() if key in cached]
    live = sorted(set(launched.values_list("pk", flat=True)) - set(done))
    ids = hashlib.sha1(",".join(map(str, live)).encode(), usedforsecurity=False).hexdigest()
    live_key = f"insights:v2:campaigns-live{within_days}:{ids}"
    rows = cache.get(live_key) if live else []
    if rows is not None:
        rows = list(rows)
    else:
        rows = _campaign_rows(live, window=window)
        cache.set(live_key, rows, LIVE_SECONDS)
    # A campaign that ended and whose window has closed no longer changes: kept per campaign.
    cache.set_many(
        {keys[r["campaign_id"]]: r for r in rows if r["campaign_id"] in keys}, CACHE_SECONDS
    )
    rows.extend(cached.values())
    labels = dict(Campaign.State.choices)
    out = []
    for r in rows:
        out.append(
            {
                "id": r["campaign_id"],
                "title": r["campaign__title"],
                "launched_at": r["campaign__launched_at"],
                "state": labels[r["campaign__state"]],
                "recipients": r["recipients"],
                "sent": r["sent"],
                "read": r["read"],
                "replied": r["replied"],
                "renewed": r["renewed"],
                "failed": r["failed"],
                "opt_outs": r["opt_outs"],
                "open_rate": _rate(r["read"], r["sent"]),
                "reply_rate": _rate(r["replied"], r["sent"]),
                "conversion_rate": _rate(r["renewed"], r["sent"]),
            }
        )
    key = sort.lstrip("-")
    if key not in CAMPAIGN_SORTS:
        key, sort = "launched_at", "-launched_at"
    out.sort(
        key=lambda r: (r[key] is None, r[key] if r[key] is not None else 0, r["id"]),
        reverse=sort.startswith("-"),
    )
    return out


def _campaign_rows(campaign_ids: list[int], *, window: timedelta) -> list[dict]:
    """The comparison's figures for these campaigns: one grouped query over their recipients."""
    from outbound.models import CampaignRecipient

    later = ExpressionWrapper(OuterRef("message__sent_at") + window, output_field=DateTimeField())
    replied = Message.objects.filter(
        IN,
        conversation=OuterRef("message__conversation"),
        created_at__gt=OuterRef("message__sent_at"),
        created_at__lte=later,
    )
    renewed = Renewal.objects.filter(
        subscription__customer=OuterRef("customer"),
        renewed_at__gte=OuterRef("message__sent_at"),
        renewed_at__lte=later,
    )
    sent = Q(message__sent_at__isnull=False)
    rows = (
        CampaignRecipient.objects.filter(campaign_id__in=campaign_ids)
        .values("campaign_id", "campaign__title", "campaign__launched_at", "campaign__state")
        .annotate(
            recipients=Count("id"),
            sent=Count("id", filter=sent),
            read=Count("id", filter=sent & Q(message__read_at__isnull=False)),
            replied=Count("id", filter=sent & Exists(replied)),
            renewed=Count("id", filter=sent & Exists(renewed)),
            failed=Count("id", filter=Q(message__status=Message.Status.FAILED)),
            opt_outs=Count(
                "id",
                filter=sent
                & Q(
                    customer__marketing_opt_out_at__gte=F("message__sent_at"),
                    customer__marketing_opt_out_at__lte=F("message__sent_at") + window,
                ),
            ),
        )
        .order_by()
    )
    return list(rows)
