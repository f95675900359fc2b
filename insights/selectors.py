"""Read-only queries over the other apps' data. Nothing here writes."""

from datetime import datetime, time, timedelta

from django.db.models import Count, Q
from django.utils import timezone

from inbox.models import Message


def day_bounds(day) -> tuple[datetime, datetime]:
    """A local (Guayaquil) calendar day as an aware [start, end) range."""
    start = timezone.make_aware(datetime.combine(day, time.min))
    return start, start + timedelta(days=1)


def day_figures(day) -> dict:
    start, end = day_bounds(day)
    out = Q(direction=Message.Direction.OUT)
    figures = Message.objects.aggregate(
        sent=Count("id", filter=out & Q(sent_at__gte=start, sent_at__lt=end)),
        read=Count("id", filter=out & Q(read_at__gte=start, read_at__lt=end)),
        replies=Count(
            "id", filter=Q(direction=Message.Direction.IN, created_at__gte=start, created_at__lt=end)
        ),
    )
    figures["open_rate"] = round(100 * figures["read"] / figures["sent"]) if figures["sent"] else None
    return figures


def today_figures() -> dict:
    today = timezone.localdate()
    return {"today": day_figures(today), "yesterday": day_figures(today - timedelta(days=1))}
