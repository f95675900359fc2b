"""The rollups: each past day's figures folded into insights.models.Rollup as data arrives, so
analytics over a year reads a few hundred small rows instead of scanning millions of messages,
with an empty cache as with a warm one.

Nothing below insights may import insights (the import contract), so the inbox and outbound do
not write rollups: a periodic actor here folds what changed since its last run. A fold
recomputes whole days from the raw rows (the same `*_compute` the pages use for today) and
replaces their Rollup rows, so folding twice gives the same numbers. Which days:

- every day the kind has never folded (the first fold folds all history, a month at a time);
- the last SETTLE_DAYS days (a funnel's or a campaign's N-day window plus those), where late
  statuses, answers and renewals still land;
- the days any recently touched message counts on: rows inserted since the last folds (by id:
  a phone syncing a backlog writes messages dated days ago) and rows with a status time since
  the last fold began (a read today of a message sent last week moves that week's open rate);
  for the resolutions, the days of the resolutions recorded since the last folds;
- for campaigns, the launch day of every one not ended yet.

Today is never folded: the pages count it from the raw rows (a small range on indexed times).
"""

import logging
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import NamedTuple

import dramatiq
from django.db import transaction
from django.db.models import Max, Min, Model, Q
from django.db.models.functions import TruncDate
from django.utils import timezone
from dramatiq_crontab import interval

from inbox.models import Message, Resolution
from insights.models import Rollup, RollupMark
from insights.selectors.agents import handled_compute, resolutions_compute, turns_compute
from insights.selectors.behaviour import behaviour_counts
from insights.selectors.daily import daily_compute, hours_compute, renewals_compute
from insights.selectors.funnels import FOLDED_WITHIN_DAYS, campaign_compute, funnel_compute
from insights.selectors.period import GYE, SETTLE_DAYS, Period

logger = logging.getLogger(__name__)

FOLD_EVERY_SECONDS = 60
BEHAVIOUR_EVERY = timedelta(minutes=5)
# A status written by a transaction that began before the last fold and committed after it
# is still seen: the scan of status times starts this long before the last fold began.
OVERLAP = timedelta(minutes=10)
# Days computed in one go (the first fold of a year of data goes a month at a time).
SPAN_DAYS = 31

STAMPS = ("created_at", "sent_at", "delivered_at", "read_at", "failed_at")


def _touched_days(*, since_id: int, since: datetime) -> set[date]:
    """The days the messages inserted or moved on since the last folds count on."""
    recent = Q(id__gt=since_id)
    for stamp in STAMPS[1:]:
        recent |= Q(**{f"{stamp}__gte": since})
    rows = (
        Message.objects.filter(recent)
        .annotate(**{f"d_{stamp}": TruncDate(stamp, tzinfo=GYE) for stamp in STAMPS})
        .values_list(*(f"d_{stamp}" for stamp in STAMPS))
        .distinct()
        .order_by()
    )
    return {day for row in rows for day in row if day is not None}


def _resolved_days(*, since_id: int, since: datetime) -> set[date]:
    """The days of the resolutions recorded since the last folds (a row never changes)."""
    rows = (
        Resolution.objects.filter(id__gt=since_id)
        .annotate(day=TruncDate("resolved_at", tzinfo=GYE))
        .values_list("day", flat=True)
        .distinct()
        .order_by()
    )
    return set(rows)


def _open_campaign_days() -> set[date]:
    """The launch days of the campaigns still running: their figures still move."""
    from outbound.models import Campaign

    ended = (Campaign.State.COMPLETED, Campaign.State.CANCELLED, Campaign.State.FAILED)
    launched = Campaign.objects.filter(launched_at__isnull=False).exclude(state__in=ended)
    days = launched.values_list("launched_at", flat=True)
    # The filter above keeps launched campaigns only, which django-stubs cannot see.
    return {at.astimezone(GYE).date() for at in days}  # type: ignore[union-attr]


class Kind(NamedTuple):
    compute: Callable[[Period], dict]
    trailing: int  # the last days refolded every time
    touched: Callable[..., set[date]] | None = _touched_days  # days dirtied since the last folds
    source: type[Model] = Message  # whose ids the mark keeps for `touched`
    also: Callable[[], set[date]] | None = None  # more days to refold every time


KINDS = {
    "daily": Kind(daily_compute, SETTLE_DAYS),
    "hours": Kind(hours_compute, SETTLE_DAYS),
    "renewals": Kind(renewals_compute, SETTLE_DAYS, None),
    f"funnel{FOLDED_WITHIN_DAYS}": Kind(funnel_compute, FOLDED_WITHIN_DAYS + SETTLE_DAYS),
    f"campaigns{FOLDED_WITHIN_DAYS}": Kind(
        campaign_compute, FOLDED_WITHIN_DAYS + SETTLE_DAYS, None, also=_open_campaign_days
    ),
    "turns": Kind(turns_compute, SETTLE_DAYS),
    "handled": Kind(handled_compute, SETTLE_DAYS),
    "resolutions": Kind(resolutions_compute, SETTLE_DAYS, _resolved_days, Resolution),
}


@interval(seconds=FOLD_EVERY_SECONDS)
@dramatiq.actor(actor_name="insights.rollups_fold", max_retries=0, time_limit=3_600_000)
def rollups_fold_actor() -> None:
    folded = rollups_fold()
    if any(folded.values()):
        logger.info("rollups folded (days): %s", folded)


def rollups_fold(*, now: datetime | None = None, kinds=None) -> dict[str, int]:
    """Fold every kind up to yesterday; {kind: days recomputed}. Two folds at once take turns
    on each kind's mark row."""
    now = now or timezone.now()
    through = now.astimezone(GYE).date() - timedelta(days=1)
    folded = {kind: _kind_fold(kind, through=through, now=now) for kind in kinds or KINDS}
    if kinds is None:
        folded["behaviour"] = behaviour_fold(now=now)
    return folded


def behaviour_fold(*, now: datetime) -> int:
    """Customers by reply habit over the last 90 days: not a sum of days (a habit is a share
    of a customer's replies), so the fold counts it anew every BEHAVIOUR_EVERY and keeps the
    latest count (one row) for the page."""
    with transaction.atomic():
        RollupMark.objects.get_or_create(kind="behaviour")
        mark = RollupMark.objects.select_for_update().get(kind="behaviour")
        if mark.folded_at and timedelta(0) <= now - mark.folded_at < BEHAVIOUR_EVERY:
            return 0
        counts = behaviour_counts(now=now)
        Rollup.objects.filter(kind="behaviour").delete()
        Rollup.objects.create(kind="behaviour", day=now.astimezone(GYE).date(), data=counts)
        mark.folded_at = now
        mark.save()
    return 1


def _kind_fold(kind: str, *, through: date, now: datetime) -> int:
    compute, trailing, touched, source, also = KINDS[kind]
    with transaction.atomic():
        RollupMark.objects.get_or_create(kind=kind)
        mark = RollupMark.objects.select_for_update().get(kind=kind)
        top = source._default_manager.aggregate(top=Max("id"))["top"] or 0
        if mark.through is None:
            days = _history(through)
            mark.seen_id = top  # everything so far is in the history
        else:
            days = {through - timedelta(days=n) for n in range(trailing)}
            days |= _days_between(mark.through + timedelta(days=1), through)
            if touched:
                since = (mark.folded_at or now) - OVERLAP
                days |= touched(since_id=mark.seen_id_before, since=since)
            if also:
                days |= also()
        days = {day for day in days if day <= through}
        for span in _spans(sorted(days)):
            _span_write(kind, span, compute(Period(span[0], span[-1])))
        mark.through = through
        mark.seen_id_before, mark.seen_id = mark.seen_id, top
        mark.folded_at = now
        mark.save()
    return len(days)


def _span_write(kind: str, span: list[date], computed: dict) -> None:
    Rollup.objects.filter(kind=kind, day__gte=span[0], day__lte=span[-1]).delete()
    Rollup.objects.bulk_create(
        Rollup(kind=kind, day=day, channel=channel or "", data=data)
        for (day, channel), data in computed.items()
        if span[0] <= day <= span[-1] and data
    )


def _spans(days: list[date]) -> list[list[date]]:
    """Consecutive runs of days, at most SPAN_DAYS each."""
    spans: list[list[date]] = []
    for day in days:
        last = spans[-1] if spans else None
        if last and day - last[-1] == timedelta(days=1) and len(last) < SPAN_DAYS:
            last.append(day)
        else:
            spans.append([day])
    return spans


def _days_between(first: date, last: date) -> set[date]:
    return {first + timedelta(days=n) for n in range((last - first).days + 1)}


def _history(through: date) -> set[date]:
    """Every day from the first message (or renewal) on."""
    from customers.models import Renewal

    starts = [
        Message.objects.aggregate(first=Min("created_at"))["first"],
        Renewal.objects.aggregate(first=Min("renewed_at"))["first"],
    ]
    starts = [at.astimezone(GYE).date() for at in starts if at is not None]
    return _days_between(min(starts), through) if starts else set()
