"""Conversion over a period: what followed the reminders, and the campaigns compared."""

from datetime import date, timedelta

from django.db.models import Count, DateTimeField, Exists, ExpressionWrapper, F, OuterRef, Q
from django.db.models.functions import TruncDate

from customers.models import Renewal
from inbox.models import Message
from insights.selectors.common import (
    IN,
    _between,
    _channel_of,
    _rate,
    _sum_counts,
    _without_jit,
)
from insights.selectors.period import GYE, SETTLE_DAYS, Period, days_cached, days_folded

# --- conversion after reminders ----------------------------------------------------------------


def _funnel_compute(within_days: int):
    window = timedelta(days=within_days)

    @_without_jit
    def compute(period: Period) -> dict[tuple[date, str], dict]:
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
            .annotate(
                day=TruncDate("created_at", tzinfo=GYE), ch=_channel_of("message__conversation_id")
            )
            .values("day", "ch", "rule__name", "subscription__service__name")
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
            out.setdefault((r["day"], r["ch"]), {})[key] = [
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


# The window the pages open with: folded by insights.rollups; another one is computed and
# cached per settled day.
FOLDED_WITHIN_DAYS = 7
funnel_compute = _funnel_compute(FOLDED_WITHIN_DAYS)


def reminder_funnel(
    period: Period, *, within_days: int = FOLDED_WITHIN_DAYS, channel: str | None = None
) -> dict:
    """Reminders sent in the period (ReminderSent rows with a message): how many were read,
    how many got a customer message in the same conversation within N days, and how many were
    followed by a renewal of the reminded subscription within N days (as outbound's own
    reminder stats count conversion). Totals, by rule and by service."""
    if within_days == FOLDED_WITHIN_DAYS:
        days = days_folded(
            f"funnel{within_days}",
            period,
            funnel_compute,
            channel=channel,
            empty={},
            merge=_sum_counts,
        )
    else:
        days = days_cached(
            f"funnel{within_days}",
            period,
            _funnel_compute(within_days),
            empty={},
            merge=_sum_counts,
            channel=channel,
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


def _campaign_compute(within_days: int):
    window = timedelta(days=within_days)

    @_without_jit
    def compute(period: Period) -> dict[tuple[date, str], dict]:
        """{(launch day, channel): {campaign id: figures}} for campaigns launched in the
        period, each over its recipients' messages on that channel."""
        from outbound.models import Campaign

        ids = list(
            Campaign.objects.filter(
                launched_at__gte=period.start, launched_at__lt=period.end
            ).values_list("pk", flat=True)
        )
        out: dict = {}
        for row in _campaign_rows(ids, window=window) if ids else []:
            day = row.pop("launched_at").astimezone(GYE).date()
            key = (day, row.pop("ch") or "")
            out.setdefault(key, {})[str(row.pop("campaign_id"))] = row
        return out

    return compute


campaign_compute = _campaign_compute(FOLDED_WITHIN_DAYS)


def _campaigns_merge(a: dict, b: dict) -> dict:
    out = dict(a)
    for pk, figures in b.items():
        out[pk] = _sum_counts(out[pk], figures) if pk in out else figures
    return out


def campaign_comparison(
    period: Period,
    *,
    within_days: int = FOLDED_WITHIN_DAYS,
    sort: str = "-launched_at",
    channel: str | None = None,
):
    """Campaigns launched in the period, each over its recipients' messages (on one WhatsApp
    number, or all):

    - enviados: messages with sent_at; fallidos: messages that ended failed;
    - apertura: read / sent; respuesta: sent messages followed by a customer message in the
      same conversation within N days / sent;
    - conversión: sent messages followed by a renewal of any of the customer's subscriptions
      within N days / sent;
    - bajas: recipients who opted out of marketing within N days of the send.
    The default window is folded by insights.rollups (per launch day and channel); another is
    computed per settled day and cached."""
    from outbound.models import Campaign

    if within_days == FOLDED_WITHIN_DAYS:
        days = days_folded(
            "campaigns7",
            period,
            campaign_compute,
            channel=channel,
            empty={},
            merge=_campaigns_merge,
        )
    else:
        days = days_cached(
            f"campaigns{within_days}",
            period,
            _campaign_compute(within_days),
            empty={},
            merge=_campaigns_merge,
            channel=channel,
            settle_days=within_days + SETTLE_DAYS,
        )
    figures: dict = {}
    for per_campaign in days.values():
        figures = _campaigns_merge(figures, per_campaign)
    campaigns = Campaign.objects.filter(pk__in=[int(pk) for pk in figures]).values(
        "pk", "title", "launched_at", "state"
    )
    labels = dict(Campaign.State.choices)
    out = []
    for c in campaigns:
        r = figures[str(c["pk"])]
        out.append(
            {
                "id": c["pk"],
                "title": c["title"],
                "launched_at": c["launched_at"],
                "state": labels[c["state"]],
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
    """The comparison's figures for these campaigns and channels: one grouped query over their
    recipients."""
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
        .annotate(
            launched_at=F("campaign__launched_at"), ch=_channel_of("message__conversation_id")
        )
        .values("campaign_id", "launched_at", "ch")
        .annotate(
            recipients=Count("id"),
            sent=Count("id", filter=sent),
            read=Count("id", filter=sent & Q(message__read_at__isnull=False)),
            replied=Count("id", filter=sent & Q(Exists(replied))),
            renewed=Count("id", filter=sent & Q(Exists(renewed))),
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
    return [dict(row) for row in rows]  # plain dicts: the caller pops keys
