"""Campaigns: what a campaign did (progress, funnel, variants, failures, recipients) and why
a running one sends nothing right now. Reads only."""

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.core.cache import cache
from django.db.models import Count, Exists, Min, OuterRef, Q, QuerySet
from django.utils import formats, timezone
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from customers.models import Renewal
from inbox import channels
from inbox.models import Message
from outbound import ratelimit
from outbound.campaigns.audience import _local, _reply_after, window_open_at
from outbound.campaigns.metalimit import meta_limit_reached
from outbound.models import Campaign, CampaignRecipient

State = Campaign.State
RState = CampaignRecipient.State
MStatus = Message.Status

REPLY_DAYS = 3
RENEWAL_DAYS = 7


# --- results --------------------------------------------------------------------------------
def _annotated(recipients: QuerySet, *, reply_days: int, renewal_days: int) -> QuerySet:
    renewals = Renewal.objects.filter(
        subscription__customer_id=OuterRef("customer_id"),
        renewed_at__gte=OuterRef("message__created_at"),
        renewed_at__lte=OuterRef("message__created_at") + timedelta(days=renewal_days),
    )
    return recipients.annotate(
        has_reply=Exists(_reply_after("message", days=reply_days)),
        has_renewal=Exists(renewals),
    )


def _open_counts() -> dict:
    """What campaign_waiting needs: the first pending recipient's time, the queued ones."""
    return {
        "first_pending": Min("planned_at", filter=Q(state=RState.PENDING)),
        "queued": Count("pk", filter=Q(state=RState.QUEUED)),
    }


def _progress_counts() -> dict:
    return {
        "first_pending": _open_counts()["first_pending"],
        "total": Count("pk"),
        "pending": Count("pk", filter=Q(state=RState.PENDING)),
        "queued": Count(
            "pk", filter=Q(state=RState.QUEUED, message__status__in=Message.IN_FLIGHT_STATUSES)
        ),
        "unconfirmed": Count("pk", filter=Q(message__status=MStatus.UNCONFIRMED)),
        "skipped": Count("pk", filter=Q(state=RState.SKIPPED)),
        "opted_out": Count("pk", filter=Q(state=RState.OPTED_OUT)),
        "sent": Count("pk", filter=Q(message__status__in=Message.REACHED_STATUSES)),
        "delivered": Count("pk", filter=Q(message__status__in=Message.DELIVERED_STATUSES)),
        "read": Count("pk", filter=Q(message__status__in=Message.READ_STATUSES)),
        "failed": Count("pk", filter=Q(message__status=MStatus.FAILED)),
        "unknown": Count("pk", filter=Q(message__status=MStatus.UNKNOWN)),
        # Meta held their marketing template (131049) and it has not reached them yet: a new
        # try is scheduled, or the tries ran out (outbound/meta_templates.py).
        "meta_capped": Count(
            "pk",
            filter=Q(message__meta_send__first_capped_at__isnull=False)
            & ~Q(message__status__in=Message.REACHED_STATUSES),
        ),
    }


def _funnel_counts(*, reply_days: int, renewal_days: int) -> dict:
    reached = Q(message__status__in=Message.REACHED_STATUSES)
    return {
        **_progress_counts(),
        "replied": Count("pk", filter=reached & Q(has_reply=True)),
        "renewed": Count("pk", filter=reached & Q(has_renewal=True)),
    }


def _done(counts: dict) -> dict:
    done = counts["total"] - counts["pending"] - counts["queued"] - counts["unconfirmed"]
    counts["done"] = done
    counts["percent_done"] = round(100 * done / counts["total"], 1) if counts["total"] else 0.0
    return counts


def _rates(counts: dict) -> dict:
    sent = counts["sent"]

    def rate(n):
        return round(100 * n / sent, 1) if sent else 0.0

    _done(counts)
    counts["read_rate"] = rate(counts["read"])
    counts["reply_rate"] = rate(counts["replied"])
    counts["conversion_rate"] = rate(counts["renewed"])
    return counts


def campaign_funnel(
    *, campaign: Campaign, reply_days: int = REPLY_DAYS, renewal_days: int = RENEWAL_DAYS
) -> dict:
    """Counts of the campaign's recipients: total, pending, queued, skipped, sent (reached the
    phone), delivered, read, replied (a message from them within reply_days), renewed (a
    renewal within renewal_days: the conversion), failed, unknown; and rates over sent."""
    recipients = _annotated(
        CampaignRecipient.objects.filter(campaign=campaign),
        reply_days=reply_days,
        renewal_days=renewal_days,
    )
    counts = recipients.aggregate(
        **_funnel_counts(reply_days=reply_days, renewal_days=renewal_days)
    )
    counts["opted_out_excluded"] = campaign.opted_out_excluded
    return _rates(counts)


# What the progress poll counts from the recipients' states alone.
_STATE_COUNTS = ("pending", "skipped", "opted_out")


def campaign_progress_counts(*, campaign: Campaign) -> dict:
    """The live part of the funnel (polled every 2 s), without campaign_funnel's reply and
    renewal subqueries: what _progress_counts counts, in two reads that each touch what they
    need. The recipients' states (grouped, no join), then their messages' statuses among the
    recipients past pending only: a recipient gets its message as it leaves pending
    (recipients_queue), so on a campaign just launched to a million the join covers the few
    already queued, not every recipient (1.2 s as one aggregate)."""
    recipients = CampaignRecipient.objects.filter(campaign=campaign)
    counts: dict = {"first_pending": None, "total": 0, **dict.fromkeys(_STATE_COUNTS, 0)}
    # COUNT(*), not of the id: recipient_due_idx (campaign, state, channel, planned_at) holds
    # all it reads, an index-only scan once vacuum has passed.
    by_state = (
        recipients.order_by()
        .values_list("state")
        .annotate(n=Count("*"), first=Min("planned_at"))
        .values_list("state", "n", "first")
    )
    for state, n, first in by_state:
        counts["total"] += n
        if state in _STATE_COUNTS:
            counts[state] = n
        if state == RState.PENDING:
            counts["first_pending"] = first
    by_message = {
        name: aggregate for name, aggregate in _progress_counts().items() if name not in counts
    }
    past_pending = [state for state in RState.values if state != RState.PENDING]
    counts.update(recipients.filter(state__in=past_pending).aggregate(**by_message))
    return _done(counts)


def campaign_open_counts(*, campaign_ids: list[int]) -> dict[int, dict]:
    """campaign id -> its recipients still pending or queued (`open`), and what
    campaign_waiting needs, in one query (the rest of a campaign's progress is its stored
    recipients_total)."""
    rows = (
        CampaignRecipient.objects.filter(
            campaign_id__in=campaign_ids, state__in=(RState.PENDING, RState.QUEUED)
        )
        .order_by()
        .values("campaign_id")
        .annotate(open=Count("pk"), **_open_counts())
    )
    # values() rows are plain dicts (django-stubs types them as TypedDicts, which cannot pop).
    return {row.pop("campaign_id"): row for row in rows}  # type: ignore[misc]


def campaign_variant_funnels(
    *, campaign: Campaign, reply_days: int = REPLY_DAYS, renewal_days: int = RENEWAL_DAYS
) -> list[dict]:
    recipients = _annotated(
        CampaignRecipient.objects.filter(campaign=campaign, variant__isnull=False),
        reply_days=reply_days,
        renewal_days=renewal_days,
    )
    rows = (
        recipients.order_by()
        .values("variant__label", "variant__body")
        .annotate(**_funnel_counts(reply_days=reply_days, renewal_days=renewal_days))
        .order_by("variant__label")
    )
    out = [
        _rates({**row, "label": row["variant__label"], "body": row["variant__body"]})
        for row in rows
    ]
    variant_winner_mark(out)
    return out


def variant_winner_mark(rows: list[dict]) -> None:
    """The variant that did best, in the order that matters to the business: renewals, then
    replies, then reads (rates over what was sent). None on a tie or before anything was sent."""
    for row in rows:
        row["winner"] = False
    ranked = sorted(
        (r for r in rows if r["sent"]),
        key=lambda r: (r["conversion_rate"], r["reply_rate"], r["read_rate"]),
        reverse=True,
    )
    if len(ranked) >= 2:
        best, second = ranked[0], ranked[1]
        key = ("conversion_rate", "reply_rate", "read_rate")
        if [best[k] for k in key] != [second[k] for k in key]:
            best["winner"] = True


# While a campaign runs its page refreshes every 2 s; replies and renewals look into every
# recipient's conversation, so they are recounted at most this often.
LIVE_RESULTS_SECONDS = 10
PROGRESS_KEYS = (
    "total",
    "pending",
    "queued",
    "unconfirmed",
    "skipped",
    "opted_out",
    "sent",
    "delivered",
    "read",
    "failed",
    "unknown",
    "meta_capped",
)


def _reply_counts(campaign: Campaign, *, reply_days: int, renewal_days: int, live: bool) -> dict:
    """variant id (None without variants) -> (replied, renewed); cached briefly while live."""
    launched = campaign.launched_at.timestamp() if campaign.launched_at else 0
    key = f"outbound:campaign-replies:{campaign.pk}:{launched}:{reply_days}:{renewal_days}"
    cached = cache.get(key) if live else None
    if cached is not None:
        return cached
    reached = Q(message__status__in=Message.REACHED_STATUSES)
    rows = (
        _annotated(
            CampaignRecipient.objects.filter(campaign=campaign),
            reply_days=reply_days,
            renewal_days=renewal_days,
        )
        .order_by()
        .values("variant_id")
        .annotate(
            replied=Count("pk", filter=reached & Q(has_reply=True)),
            renewed=Count("pk", filter=reached & Q(has_renewal=True)),
        )
    )
    counts = {row["variant_id"]: (row["replied"], row["renewed"]) for row in rows}
    if live:
        cache.set(key, counts, LIVE_RESULTS_SECONDS)
    return counts


def campaign_results(
    *, campaign: Campaign, reply_days: int = REPLY_DAYS, renewal_days: int = RENEWAL_DAYS
) -> dict:
    """Every figure of a campaign's page from one look at its recipients, so that the progress
    bar, the results table and the variants always tell the same story: recipient states and
    message statuses counted now, per variant, in one query (the totals are their sums);
    replies and renewals with them (recounted at most every LIVE_RESULTS_SECONDS while the
    campaign is live). {"funnel": as campaign_funnel, "variants": as campaign_variant_funnels,
    "numbers": the same per number of a split campaign ([] otherwise; without replies, which
    are counted per variant)}."""
    live = campaign.state in (State.SCHEDULED, State.RUNNING, State.PAUSED)
    rows: list[dict] = list(
        # Plain dicts, with keys (annotate(**...)) that django-stubs' row type does not list.
        CampaignRecipient.objects.filter(campaign=campaign)  # type: ignore[arg-type]
        .order_by()
        .values("variant_id", "channel")
        .annotate(**_progress_counts())
    )
    replies = _reply_counts(campaign, reply_days=reply_days, renewal_days=renewal_days, live=live)
    names = (*PROGRESS_KEYS, "replied", "renewed")
    funnel: dict = dict.fromkeys(names, 0)
    funnel["first_pending"] = min(
        (r["first_pending"] for r in rows if r["first_pending"]), default=None
    )
    by_variant: dict = {}
    by_channel: dict = {}
    for row in rows:
        for name in PROGRESS_KEYS:
            funnel[name] += row[name]
            for key, into in ((row["variant_id"], by_variant), (row["channel"], by_channel)):
                into.setdefault(key, dict.fromkeys(names, 0))[name] += row[name]
    for variant_id, (replied, renewed) in replies.items():
        funnel["replied"] += replied
        funnel["renewed"] += renewed
        row = by_variant.setdefault(variant_id, dict.fromkeys(names, 0))
        row["replied"], row["renewed"] = replied, renewed
    funnel["opted_out_excluded"] = campaign.opted_out_excluded
    variants = []
    for variant in campaign.variants.all():
        row = by_variant.get(variant.pk) or dict.fromkeys(names, 0)
        variants.append(_rates({**row, "label": variant.label, "body": variant.body}))
    variant_winner_mark(variants)
    numbers = []
    if len(campaign.channel_keys) > 1:
        labels = channels.labels()
        for key in campaign.channel_keys:
            row = by_channel.get(campaign.recipient_channel(key)) or dict.fromkeys(names, 0)
            name, colour = labels.get(key, (key, ""))
            numbers.append(_rates({**row, "key": key, "name": name, "colour": colour}))
    return {"funnel": _rates(funnel), "variants": variants, "numbers": numbers}


def campaign_failure_reasons(*, campaign: Campaign) -> list[tuple[str, str, int]]:
    """(outcome, reason, count), most frequent first: skipped reasons and send failures."""
    recipients = CampaignRecipient.objects.filter(campaign=campaign).order_by()
    skipped = (
        recipients.filter(state__in=(RState.SKIPPED, RState.OPTED_OUT))
        .values_list("state", "skip_reason")
        .annotate(n=Count("pk"))
    )
    failed = (
        recipients.filter(
            message__status__in=(MStatus.FAILED, MStatus.UNKNOWN, MStatus.UNCONFIRMED)
        )
        .values_list("message__status", "message__failure_reason")
        .annotate(n=Count("pk"))
    )
    labels = dict(MStatus.choices)
    states = dict(RState.choices)
    rows = [(str(states[state]), reason, n) for state, reason, n in skipped]
    rows += [(str(labels[status]), reason, n) for status, reason, n in failed]
    return sorted(rows, key=lambda row: -row[2])


def campaign_recipients(
    *, campaign: Campaign, reply_days: int = REPLY_DAYS, renewal_days: int = RENEWAL_DAYS
) -> QuerySet[CampaignRecipient]:
    """Per-recipient rows for the results page and the CSV export."""
    recipients = CampaignRecipient.objects.filter(campaign=campaign).select_related(
        "customer", "variant", "message"
    )
    return _annotated(recipients, reply_days=reply_days, renewal_days=renewal_days).order_by("pk")


# --- why a running campaign sends nothing right now -----------------------------------------
# A provider hold (429 with retry_after) longer than this, or than two ordinary gaps, is told.
HELD_MIN_SECONDS = 5.0


@dataclass(frozen=True)
class Waiting:
    """Why a running campaign is not sending, and when it starts again."""

    code: str  # "window", "best_hour", "meta_limit" or "rate_limit"
    until: datetime
    label: str  # "en espera hasta las 09:00"
    reason: str  # "fuera de la ventana de envío (de 09:00 a 20:00)"

    @property
    def text(self) -> str:
        return f"{self.label}: {self.reason}"

    def as_dict(self) -> dict:
        return {"code": self.code, "until": self.until, "text": self.text}


def waiting_label(until: datetime, *, now: datetime) -> str:
    """ "en espera hasta las 09:00", "... hasta mañana a las 09:00", "... hasta el 9 de
    diciembre a las 09:00" (Guayaquil time)."""
    local, today = _local(until), _local(now).date()
    clock = local.strftime("%H:%M")
    if local.date() == today:
        return _("en espera hasta las %(time)s") % {"time": clock}
    if local.date() == today + timedelta(days=1):
        return _("en espera hasta mañana a las %(time)s") % {"time": clock}
    day = formats.date_format(local, "MONTH_DAY_FORMAT")
    return _("en espera hasta el %(day)s a las %(time)s") % {"day": day, "time": clock}


def _grouped(number: int) -> str:
    """1.000 in Spanish (as Ecuador writes it; Django's es format groups with a space), 1,000
    in English."""
    text = f"{number:,}"
    return text.replace(",", ".") if (get_language() or "es").startswith("es") else text


def meta_limit_waiting(campaign: Campaign, *, now: datetime) -> Waiting | None:
    """ "Pausada por el límite de Meta: 1.000 clientes en 24 h en el número Soporte; sigue a
    las 14:30" while the campaign's Cloud API number is at its limit (a split campaign: every
    number it still has recipients for is, and the one that goes on first is named)."""
    keys = campaign.channel_keys
    if len(keys) > 1:
        pending = CampaignRecipient.objects.filter(campaign=campaign, state=RState.PENDING)
        left = set(pending.values_list("channel", flat=True).distinct())
        keys = [key for key in keys if campaign.recipient_channel(key) in left]
    found = [meta_limit_reached(channel_key=key, now=now) for key in keys]
    reached = [one for one in found if one is not None]
    if not found or len(reached) < len(found):
        return None
    channel, limit, until = min(reached, key=lambda one: one[2])
    local, today = _local(until), _local(now).date()
    clock = local.strftime("%H:%M")
    when = (
        _("sigue a las %(time)s") % {"time": clock}
        if local.date() == today
        else _("sigue mañana a las %(time)s") % {"time": clock}
    )
    reason = _("%(limit)s clientes en 24 h en el número %(name)s; %(when)s") % {
        "limit": _grouped(limit),
        "name": channel.name,
        "when": when,
    }
    return Waiting("meta_limit", until, _("Pausada por el límite de Meta"), reason)


def _held(channel_key: str) -> tuple[float, float]:
    """(seconds the number's limiter holds every send, its usual interval)."""
    channel = channels.channel_cached(channel_key)
    bucket = ratelimit.bucket(channel.pace)
    return bucket.held_for(channel_key), bucket.interval


def campaign_waiting(
    *, campaign: Campaign, now: datetime | None = None, open_recipients: dict | None = None
) -> Waiting | None:
    """For a running campaign with nothing going out now: outside its sending window, each
    customer's best hour still to come, its Cloud API number at Meta's messaging limit, or
    the provider's rate limit holding every send.
    `open_recipients` ({"first_pending": datetime | None, "queued": int}) when the caller
    already counted them (the list and the progress poll, in their one query)."""
    if campaign.state != State.RUNNING:
        return None
    now = now or timezone.now()
    if open_recipients is None:
        open_recipients = CampaignRecipient.objects.filter(campaign=campaign).aggregate(
            **_open_counts()
        )
    first, queued = open_recipients["first_pending"], open_recipients["queued"]
    window = {
        "start": campaign.window_start.strftime("%H:%M"),
        "end": campaign.window_end.strftime("%H:%M"),
    }
    if first is not None:
        opens = window_open_at(campaign, now=now)
        if opens > now:
            until = window_open_at(campaign, now=max(first, opens))
            reason = _("fuera de la ventana de envío (de %(start)s a %(end)s)") % window
            return Waiting("window", until, waiting_label(until, now=now), reason)
        if first > now:
            until = window_open_at(campaign, now=first)
            reason = (
                _("cada cliente lo recibe a su mejor hora")
                if campaign.best_hour
                else _("los siguientes envíos están programados para más tarde")
            )
            return Waiting("best_hour", until, waiting_label(until, now=now), reason)
        limited = meta_limit_waiting(campaign, now=now)
        if limited is not None:
            return limited
    elif not queued:
        return None
    held, interval = min(_held(key) for key in campaign.channel_keys)
    if held > max(HELD_MIN_SECONDS, 2 * interval):
        until = now + timedelta(seconds=math.ceil(held))
        reason = _("WhatsApp pidió una pausa (límite de envíos del proveedor)")
        return Waiting("rate_limit", until, waiting_label(until, now=now), reason)
    return None
