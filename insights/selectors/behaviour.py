"""Customers by reply habit (fast, slow, never), as inbox.selectors defines it."""

from datetime import datetime, timedelta

from django.core.cache import cache
from django.db import connection
from django.db.models import Q
from django.db.models.functions import Lag
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from inbox.models import Message
from inbox.selectors import FAST_REPLY, HABIT_WINDOW
from insights.selectors.common import (
    _analytic_cursor,
    _previous_before,
    _seconds_between,
    _thread_window,
)

BEHAVIOUR_SECONDS = 300


# The fold's count (insights.rollups, every five minutes) is shown while it is this fresh.
FOLDED_FRESH = timedelta(minutes=15)


def behaviour_groups(*, now: datetime | None = None) -> list[dict]:
    """The groups as the fold last counted them (habits over 90 days move slowly; counting
    them reads every message of the window); without a recent fold, counted here and cached
    for a few minutes."""
    from insights.models import Rollup, RollupMark

    if now is not None:
        return behaviour_groups_count(now=now)
    folded_at = RollupMark.objects.filter(kind="behaviour").values_list("folded_at", flat=True)
    row = Rollup.objects.filter(kind="behaviour").values_list("data", flat=True).first()
    at = folded_at.first()
    if row is not None and at is not None and timezone.now() - at < FOLDED_FRESH:
        return _groups(row)
    # get_or_set returns the computed list, never None; django-stubs types it Any | None.
    return cache.get_or_set(  # type: ignore[return-value]
        f"insights:v2:behaviour:{translation.get_language()}",
        behaviour_groups_count,
        BEHAVIOUR_SECONDS,
    )


def behaviour_groups_count(*, now: datetime | None = None) -> list[dict]:
    return _groups(behaviour_counts(now=now))


def _groups(counts: dict) -> list[dict]:
    labels = {
        "fast": _("Responden rápido (< 1 h)"),
        "slow": _("Responden lento"),
        "never": _("Nunca responden"),
    }
    return [{"key": key, "label": labels[key], "customers": counts[key]} for key in labels]


def behaviour_counts(*, now: datetime | None = None) -> dict[str, int]:
    """Customers by reply habit, as inbox.selectors defines it (last 90 days), opted-out
    customers included (this is a description, not an audience).

    The same definitions as the segment filter, counted in one pass instead of a correlated
    subquery per message: LAG over each conversation's messages (customer messages and ours
    that reached the phone) gives each reply the message before it; only the first message of
    each conversation in the window looks further back. Messages within the same second are
    ordered by id (the segment filter takes the previous one strictly earlier)."""
    reached_statuses = Message.REACHED_STATUSES
    since = (now or timezone.now()) - HABIT_WINDOW
    counted = Q(direction=Message.Direction.IN) | Q(status__in=reached_statuses)
    seq = (
        Message.objects.filter(counted, created_at__gte=since)
        .annotate(
            prev_dir=_thread_window(Lag("direction")),
            prev_at=_thread_window(Lag("created_at")),
        )
        .values("id", "conversation_id", "direction", "created_at", "prev_dir", "prev_at")
        .order_by()
    )
    inner, params = seq.query.sql_with_params()
    reached = ", ".join(["%s"] * len(reached_statuses))
    also = f" AND (p.direction = 'in' OR p.status IN ({reached}))"

    def previous(column: str) -> str:
        return _previous_before(column, "t", condition=also)

    # Built from this module's constants and the ORM's own SQL; every value is a parameter.
    sql = f"""
        WITH seq AS ({inner}),
        replies AS (
            SELECT c.customer_id,
                CASE WHEN {_seconds_between("r.created_at", "r.pa")} < %s THEN 1 ELSE 0 END AS fast
            FROM (
                SELECT t.conversation_id, t.created_at,
                    COALESCE(t.prev_dir, {previous("direction")}) AS pd,
                    COALESCE(t.prev_at, {previous("created_at")}) AS pa
                FROM seq t WHERE t.direction = 'in'
            ) r
            JOIN inbox_conversation c ON c.id = r.conversation_id
            WHERE r.pd = 'out'
        ),
        per AS (SELECT customer_id, COUNT(*) AS n, SUM(fast) AS f FROM replies GROUP BY customer_id)
        SELECT
            (SELECT COUNT(*) FROM per WHERE 2 * f > n),
            (SELECT COUNT(*) FROM per WHERE 2 * f <= n),
            (SELECT COUNT(DISTINCT c.customer_id) FROM inbox_message m
             JOIN inbox_conversation c ON c.id = m.conversation_id
             WHERE m.direction = 'out' AND m.status IN ({reached}) AND m.created_at >= %s
                AND c.customer_id NOT IN (SELECT customer_id FROM per))
    """  # noqa: S608
    args = [
        *params,
        FAST_REPLY.total_seconds(),
        *reached_statuses * 3,
        connection.ops.adapt_datetimefield_value(since),
    ]
    with _analytic_cursor() as cursor:
        cursor.execute(sql, args)
        fast, slow, never = cursor.fetchone()
    return {"fast": fast, "slow": slow, "never": never}
