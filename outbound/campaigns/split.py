"""Campaigns: an audience split over several WhatsApp numbers.

A campaign goes out from its number (`Campaign.channel`) and, when told, from more
(`Campaign.split_channels`). At launch each recipient is given one of them
(`CampaignRecipient.channel`, blank for the campaign's own):

- a customer who already has a conversation on one of them gets it from that number (the
  newest such conversation): they know it, and their reply lands in the thread they use;
- each of the others goes to the number with the fewest recipients so far (the customers
  above included, so that the numbers end with about as many each; ties in the order the
  numbers were chosen) among those that still have room under Meta's messaging limit (a
  Cloud API number with a tier: its limit less the customers it reached in the last 24 h,
  less those already dealt to it); when none has room left, among all of them (they then
  wait for the limit as one-number campaigns do).

The fan-out then paces each number on its own (outbound/campaigns/launch.py).
"""

from collections.abc import Callable
from datetime import datetime

from django.db.models import F

from inbox.models import Conversation
from outbound.campaigns.metalimit import channel_limit, customers_reached
from outbound.models import Campaign


def _room(key: str, *, now: datetime) -> int | None:
    """Customers the number may still reach in 24 h; None when nothing limits it."""
    limited = channel_limit(key)
    if limited is None:
        return None
    return max(limited[1] - customers_reached(channel_key=key, now=now), 0)


def channel_assigner(campaign: Campaign, *, now: datetime) -> Callable[[list[int]], list[str]]:
    """customer ids -> their CampaignRecipient.channel values, chunk after chunk of one
    launch (it keeps count of what it dealt)."""
    keys = campaign.channel_keys
    if len(keys) == 1:
        return lambda ids: [""] * len(ids)
    # What each number may still be dealt; a number nothing limits is not in it.
    room = {key: left for key in keys if (left := _room(key, now=now)) is not None}
    dealt = dict.fromkeys(keys, 0)
    order = {key: n for n, key in enumerate(keys)}

    def least_dealt() -> str:
        open_ = [key for key in keys if room.get(key, 1) > 0] or keys
        return min(open_, key=lambda key: (dealt[key], order[key]))

    def assign(ids: list[int]) -> list[str]:
        known: dict[int, str] = dict(
            # channel_id holds the channel's key (to_field): django-stubs reads it as the pk, int.
            Conversation.objects.filter(customer_id__in=ids, channel_id__in=keys)  # type: ignore[arg-type]
            .order_by("customer_id", F("last_message_at").asc(nulls_first=True), "pk")
            .values_list("customer_id", "channel_id")
        )  # the newest conversation of each customer wins (it comes last)
        values = []
        for customer_id in ids:
            key = known.get(customer_id) or least_dealt()
            dealt[key] += 1
            if key in room:
                room[key] = max(room[key] - 1, 0)
            values.append(campaign.recipient_channel(key))
        return values

    return assign
