"""The panel: today's figures against yesterday, waiting conversations, WhatsApp sessions, and
the live campaigns. Always live (nothing cached)."""

from datetime import datetime, timedelta

from django.db.models import Count, Min, Q
from django.utils import timezone

from inbox.models import Conversation, Message, SessionState
from insights.selectors.common import (
    FIGURES,
    IN,
    OUT,
    _between,
    _delivered,
    _of_channel,
    _rate,
    _without_jit,
)
from insights.selectors.period import GYE, day_start

# Session states WaSender reports when the number cannot send.
SESSION_DOWN = ("disconnected", "need_scan", "logged_out", "expired", "failed", "close", "closed")


def _window_counts(start: datetime, end: datetime, prefix: str) -> dict:
    sent = OUT & _between("sent_at", start, end)
    return {
        f"{prefix}sent": Count("id", filter=sent),
        f"{prefix}sent_read": Count("id", filter=sent & Q(read_at__isnull=False)),
        f"{prefix}delivered": Count("id", filter=_delivered(start, end)),
        f"{prefix}read": Count("id", filter=OUT & _between("read_at", start, end)),
        f"{prefix}replies": Count("id", filter=IN & _between("created_at", start, end)),
        f"{prefix}failed": Count(
            "id", filter=OUT & Q(status=Message.Status.FAILED) & _between("failed_at", start, end)
        ),
    }


def _touching(start: datetime, end: datetime) -> Q:
    """Rows with any of the day's timestamps in [start, end): each arm can use an index."""
    return (
        _between("sent_at", start, end)
        | _between("delivered_at", start, end)
        | _between("read_at", start, end)
        | _between("failed_at", start, end)
        | IN & _between("created_at", start, end)
    )


def _change(now_value, before) -> dict:
    if now_value is None or before is None:
        return {"pct": None, "direction": "flat"}
    if before == 0:
        return {"pct": None, "direction": "up" if now_value > 0 else "flat"}
    pct = round(100 * (now_value - before) / before)
    return {"pct": abs(pct), "direction": "up" if pct > 0 else "down" if pct < 0 else "flat"}


@_without_jit(serial=True)
def today_figures(*, now: datetime | None = None, channel: str | None = None) -> dict:
    """Today so far against yesterday up to the same time: two queries; on one WhatsApp
    number (a channel key) or all of them."""
    now = (now or timezone.now()).astimezone(GYE)
    today = now.date()
    start = day_start(today)
    y_start = day_start(today - timedelta(days=1))
    y_same = y_start + (now - start)
    counts = Message.objects.filter(_touching(y_start, now), _of_channel(channel)).aggregate(
        **_window_counts(start, now, "t_"), **_window_counts(y_start, y_same, "y_")
    )
    conversations = Conversation.objects.filter(
        Q() if channel is None else Q(channel_id=channel),
        created_at__gte=y_start,
        created_at__lt=now,
    )
    counts.update(
        conversations.aggregate(
            t_new_conversations=Count("id", filter=Q(created_at__gte=start)),
            y_new_conversations=Count("id", filter=Q(created_at__lt=y_same)),
        )
    )
    figures = {}
    for name in (*FIGURES, "open_rate"):
        if name == "open_rate":
            value = _rate(counts["t_sent_read"], counts["t_sent"])
            before = _rate(counts["y_sent_read"], counts["y_sent"])
        else:
            value, before = counts[f"t_{name}"], counts[f"y_{name}"]
        figures[name] = {"value": value, "yesterday": before, "change": _change(value, before)}
    return {"now": now, "figures": figures}


def waiting_conversations(*, now: datetime | None = None, channel: str | None = None) -> dict:
    """Conversations in state new (a customer wrote, nobody answered) and the oldest wait,
    measured from the conversation's last message."""
    now = now or timezone.now()
    waiting = Conversation.objects.filter(Q() if channel is None else Q(channel_id=channel))
    row = waiting.filter(status=Conversation.Status.NEW).aggregate(
        count=Count("id"), oldest=Min("last_message_at")
    )
    row["oldest_wait"] = now - row["oldest"] if row["oldest"] else None
    return row


def session_states() -> list[dict]:
    rows = SessionState.objects.order_by("session").values("session", "status", "changed_at")
    return [{**row, "down": row["status"].lower() in SESSION_DOWN} for row in rows]


def campaigns_overview() -> list[dict]:
    """Running, scheduled and paused campaigns with progress: recipients whose message has
    been queued or settled, out of the recipients counted at launch; and, for a running one
    that sends nothing now, why and until when (outbound's campaign_waiting)."""
    from outbound.campaigns.results import campaign_waiting
    from outbound.models import Campaign, CampaignRecipient

    live = (Campaign.State.RUNNING, Campaign.State.SCHEDULED, Campaign.State.PAUSED)
    campaigns = list(
        Campaign.objects.filter(state__in=live)
        .order_by("state", "scheduled_at", "id")
        .values("id", "title", "state", "scheduled_at", "recipients_total")[:20]
    )
    done = dict(
        CampaignRecipient.objects.filter(campaign_id__in=[c["id"] for c in campaigns])
        .exclude(state=CampaignRecipient.State.PENDING)
        .values_list("campaign_id")
        .annotate(n=Count("id"))
        .order_by()
    )
    labels = dict(Campaign.State.choices)
    waiting = {
        c.pk: campaign_waiting(campaign=c)
        for c in Campaign.objects.filter(pk__in=[c["id"] for c in campaigns], state="running")
    }
    return [
        {
            **c,
            "waiting": waiting.get(c["id"]),
            "done": done.get(c["id"], 0),
            "progress": _rate(done.get(c["id"], 0), c["recipients_total"]) or 0,
            "state_label": labels[c["state"]],
        }
        for c in campaigns
    ]
