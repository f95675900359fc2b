"""Campaigns: who a campaign writes to, and when each of them may be sent.

Window: sends only between `window_start` and `window_end`, Guayaquil time; outside, the
chain sleeps until the next opening (the tick wakes it).

Best hour: a customer's best hour is the local hour in which they most often wrote to us or
read one of our messages over the last BEST_HOUR_DAYS days (ties: the earliest hour). It is
moved into the window (before it: the window's start; at or after its end: the window's last
hour), and `planned_at` is the next time that hour comes round (now, when we are inside it).
A customer with no history is planned for the earliest moment the window allows.
"""

from collections import Counter, defaultdict
from datetime import date, datetime, time, timedelta

from django.db.models import Count, Exists, OuterRef, QuerySet
from django.db.models.functions import ExtractHour
from django.utils import timezone

from customers.models import Customer
from inbox.models import Message
from outbound.models import Campaign, CampaignRecipient
from outbound.segments import segment_count, segment_queryset

# A marketing campaign's messages are `marketing`: opted-out customers are left out.
MARKETING_KINDS = (Campaign.Kind.MARKETING, Campaign.Kind.EVENT)
BEST_HOUR_DAYS = 90


def _reply_after(message_ref: str, *, days: int | None = None) -> QuerySet:
    """Inbound messages in the same conversation after the campaign message (within days)."""
    replies = Message.objects.filter(
        direction=Message.Direction.IN,
        conversation_id=OuterRef(f"{message_ref}__conversation_id"),
        created_at__gt=OuterRef(f"{message_ref}__created_at"),
    )
    if days is not None:
        replies = replies.filter(
            created_at__lte=OuterRef(f"{message_ref}__created_at") + timedelta(days=days)
        )
    return replies


def campaign_audience(campaign: Campaign) -> tuple[QuerySet[Customer], int]:
    """(the customers to write to, opted-out customers left out)."""
    marketing = campaign.kind in MARKETING_KINDS
    if campaign.retarget_of_id is None:
        customers = segment_queryset(campaign.filters, marketing=marketing)
        return customers, segment_count(campaign.filters, marketing=marketing)[1]
    source = CampaignRecipient.objects.filter(
        campaign_id=campaign.retarget_of_id, message__status__in=Message.REACHED_STATUSES
    )
    if campaign.retarget_audience == Campaign.Audience.NOT_READ:
        source = source.exclude(message__status__in=Message.READ_STATUSES)
    else:
        source = source.exclude(Exists(_reply_after("message")))
    customers = Customer.objects.filter(pk__in=source.values("customer_id"))
    if not marketing:
        return customers, 0
    excluded = customers.filter(marketing_opt_out_at__isnull=False).count()
    return customers.filter(marketing_opt_out_at__isnull=True), excluded


def _single_service(filters: dict) -> int | None:
    services = filters.get("services") or []
    return services[0] if len(services) == 1 else None


# --- window and best hour -------------------------------------------------------------------
def _local(moment: datetime) -> datetime:
    return timezone.localtime(moment)


def _at(day: date, clock: time) -> datetime:
    return timezone.make_aware(datetime.combine(day, clock))


def window_open_at(campaign: Campaign, *, now: datetime) -> datetime:
    """`now` inside the window, else the window's next opening (Guayaquil time)."""
    local = _local(now)
    if campaign.window_start <= local.time() < campaign.window_end:
        return now
    day = local.date() if local.time() < campaign.window_start else local.date() + timedelta(1)
    return _at(day, campaign.window_start)


def best_hour_slot(campaign: Campaign, hour: int) -> time:
    """The best hour moved inside the window."""
    if hour < campaign.window_start.hour or time(hour) < campaign.window_start:
        return campaign.window_start
    if time(hour) >= campaign.window_end:
        last = _at(date(2000, 1, 3), campaign.window_end) - timedelta(hours=1)
        return max(campaign.window_start, _local(last).time().replace(minute=0))
    return time(hour)


def planned_at(campaign: Campaign, *, hour: int | None, now: datetime) -> datetime:
    """When a recipient may be sent (see the module docstring)."""
    if hour is None or not campaign.best_hour:
        return window_open_at(campaign, now=now)
    slot = best_hour_slot(campaign, hour)
    local = _local(now)
    today = _at(local.date(), slot)
    if now < today:
        return today
    if now < today + timedelta(hours=1) and local.time() < campaign.window_end:
        return now
    return _at(local.date() + timedelta(1), slot)


def best_hours(customer_ids: list[int], *, now: datetime) -> dict[int, int]:
    """customer id -> their best local hour (see the module docstring), for those with any
    history."""
    since = now - timedelta(days=BEST_HOUR_DAYS)
    tz = timezone.get_current_timezone()
    tally: dict[int, Counter] = defaultdict(Counter)
    wrote = (
        Message.objects.filter(
            conversation__customer_id__in=customer_ids,
            direction=Message.Direction.IN,
            created_at__gte=since,
        )
        .annotate(hour=ExtractHour("created_at", tzinfo=tz))
        .values_list("conversation__customer_id", "hour")
        .annotate(n=Count("pk"))
    )
    read = (
        Message.objects.filter(
            conversation__customer_id__in=customer_ids,
            direction=Message.Direction.OUT,
            read_at__gte=since,
        )
        .annotate(hour=ExtractHour("read_at", tzinfo=tz))
        .values_list("conversation__customer_id", "hour")
        .annotate(n=Count("pk"))
    )
    for rows in (wrote, read):
        for customer_id, hour, n in rows.order_by():
            tally[customer_id][hour] += n
    return {
        customer_id: min(hours, key=lambda h: (-hours[h], h))
        for customer_id, hours in tally.items()
    }
