"""Campaigns: Meta's messaging limit on a Cloud API number.

Meta lets a number's business-initiated messages reach at most `daily_customer_limit`
distinct customers in a rolling 24 h (its tier: 250, 1,000, 10,000, 100,000); past it, Meta
refuses them. The fan-out stops before it would cross the limit, and the campaign's page says
why and when it goes on.

Counted here as: outbound messages on the channel's conversations written in the last 24 h by
a campaign or a reminder, or marked marketing, not failed nor cancelled, by distinct
conversation (one per customer on a channel). Queued ones count: they are about to go out. A
customer already reached in the window costs nothing more at Meta, but is not told apart here
(the fan-out then sends a little less, never more). Several campaigns on one number take
turns: each fan-out run counts and queues holding a lock on the number (launch.py's
`_limit_serialised`), so together they never pass it.
"""

from datetime import datetime, timedelta

from django.db.models import Count, Max, Q

from inbox import channels
from inbox.models import Channel, Message

WINDOW = timedelta(hours=24)
BUSINESS_INITIATED = Q(marketing=True) | Q(
    author_kind__in=(Message.Author.CAMPAIGN, Message.Author.REMINDER)
)


def channel_limit(channel_key: str) -> tuple[Channel, int] | None:
    """(channel, its limit) when Meta limits it; None otherwise (WaSender, or no tier set)."""
    try:
        channel = channels.channel_cached(channel_key)
    except Channel.DoesNotExist:
        return None
    if not channel.is_cloudapi or not channel.daily_customer_limit:
        return None
    return channel, channel.daily_customer_limit


def _reached(channel_key: str, *, now: datetime):
    return (
        Message.objects.filter(
            BUSINESS_INITIATED,
            conversation__channel_id=channel_key,
            direction=Message.Direction.OUT,
            created_at__gt=now - WINDOW,
        )
        .exclude(status__in=(Message.Status.FAILED, Message.Status.CANCELLED))
        .order_by()
    )


def customers_reached(*, channel_key: str, now: datetime) -> int:
    """Distinct customers the number's business-initiated messages reached in the last 24 h."""
    reached = _reached(channel_key, now=now)
    return reached.aggregate(n=Count("conversation_id", distinct=True))["n"]


def limit_frees_at(*, channel_key: str, now: datetime) -> datetime:
    """When the first customer counted now leaves the rolling window (their last counted
    message turns 24 h old)."""
    last = (
        _reached(channel_key, now=now)
        .values("conversation_id")
        .annotate(last=Max("created_at"))
        .order_by("last")
        .values_list("last", flat=True)
        .first()
    )
    return (last or now) + WINDOW


def meta_limit_room(*, channel_key: str, room: int, now: datetime) -> tuple[int, float | None]:
    """(room, None) with `room` cut to what the limit still allows; (0, seconds to wait) when
    the number has reached it (the chain sleeps until a customer leaves the window)."""
    limited = channel_limit(channel_key)
    if limited is None or room <= 0:
        return room, None
    _channel, limit = limited
    left = limit - customers_reached(channel_key=channel_key, now=now)
    if left > 0:
        return min(room, left), None
    frees_at = limit_frees_at(channel_key=channel_key, now=now)
    return 0, max((frees_at - now).total_seconds(), 1.0)


def meta_limit_reached(*, channel_key: str, now: datetime) -> tuple[Channel, int, datetime] | None:
    """(channel, limit, when it goes on) when the number is at its limit now, else None."""
    limited = channel_limit(channel_key)
    if limited is None:
        return None
    channel, limit = limited
    if customers_reached(channel_key=channel_key, now=now) < limit:
        return None
    return channel, limit, limit_frees_at(channel_key=channel_key, now=now)
