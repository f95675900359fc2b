"""Per agent over a period: conversations handled, time to the first answer, time to resolve."""

from datetime import date, timedelta

import numpy as np
from django.core.cache import cache
from django.db import connection
from django.db.models import Case, Q, Sum, When
from django.db.models.expressions import RawSQL
from django.db.models.functions import Lag, TruncDate

from inbox.models import Message, Resolution
from insights.selectors.common import (
    OUT,
    _analytic_cursor,
    _as_date,
    _channel_of,
    _join_lists,
    _previous_before,
    _seconds_between,
    _thread_window,
    _without_jit,
)
from insights.selectors.packed import FLOATS, IDS, SECONDS, packed_lists, unpacked
from insights.selectors.period import GYE, LIVE_SECONDS, Period, days_folded

# No value: an agent with no turns or no resolutions in the period.
NONE = np.empty(0)

# An agent's answer: a message a person wrote from the inbox (not a bot, reminder or campaign).
ANSWER = Q(author_kind=Message.Author.AGENT, agent__isnull=False)
# Both directions, so PostgreSQL reads the (direction, created_at) index for a date range.
BOTH = Q(direction__in=(Message.Direction.IN, Message.Direction.OUT))


@_without_jit
def turns_compute(period: Period) -> dict[tuple[date, str], dict]:
    """{(turn day, channel): {agent id: [seconds to the first answer, packed]}} (see
    insights.selectors.packed) in one pass over the messages since the period's start. LAG
    gives each customer message the direction of the one before it (a turn starts when that
    was not the customer's); a running count of answers splits each conversation into runs
    that end with an answer, so a turn's answer is the one answer in its run."""
    start, end = period.start, period.end
    seq = (
        Message.objects.filter(BOTH, created_at__gte=start)
        .filter(Q(created_at__lt=end) | ANSWER)
        .annotate(
            prev_dir=_thread_window(Lag("direction")),
            answers=_thread_window(Sum(Case(When(ANSWER, then=1), default=0))),
            is_answer=Case(When(ANSWER, then=1), default=0),
            day=TruncDate("created_at", tzinfo=GYE),
            ch=_channel_of(),
        )
        .values(
            "id",
            "ch",
            "conversation_id",
            "direction",
            "created_at",
            "agent_id",
            "prev_dir",
            "answers",
            "is_answer",
            "day",
        )
        .order_by()
    )
    inner, params = seq.query.sql_with_params()
    # Built from this module's constants and the ORM's own SQL; every value is a parameter.
    sql = f"""
        WITH seq AS ({inner}),
        runs AS (
            SELECT s.*,
                MAX(CASE WHEN s.is_answer = 1 THEN s.created_at END) OVER run AS answered_at,
                MAX(CASE WHEN s.is_answer = 1 THEN s.agent_id END) OVER run AS answered_by
            FROM seq s
            WINDOW run AS (PARTITION BY s.conversation_id, s.answers - s.is_answer)
        )
        SELECT t.answered_by, t.day, t.ch, {_seconds_between("t.answered_at", "t.created_at")}
        FROM runs t
        WHERE t.direction = 'in' AND t.created_at < %s AND t.answered_at IS NOT NULL
            AND COALESCE(t.prev_dir, {_previous_before("direction", "t")}, '') <> 'in'
    """  # noqa: S608
    out: dict = {}
    with _analytic_cursor() as cursor:
        cursor.execute(sql, [*params, connection.ops.adapt_datetimefield_value(end)])
        for agent_id, day, ch, seconds in cursor.fetchall():
            per_agent = out.setdefault((_as_date(day), ch), {})
            per_agent.setdefault(agent_id, []).append(round(seconds))
    return {key: packed_lists(per_agent, SECONDS) for key, per_agent in out.items()}


@_without_jit
def handled_compute(period: Period) -> dict[tuple[date, str], dict]:
    """{(day, channel): {agent id: [conversation ids they answered in that day, packed]}}: a
    period's count is the distinct ids over its days (a conversation answered on two days is
    one)."""
    rows = (
        Message.objects.filter(OUT, ANSWER, created_at__gte=period.start, created_at__lt=period.end)
        .annotate(day=TruncDate("created_at", tzinfo=GYE), ch=_channel_of())
        .values_list("day", "ch", "agent_id", "conversation_id")
        .distinct()
        .order_by()
    )
    out: dict = {}
    for day, ch, agent_id, conversation_id in rows:
        out.setdefault((day, ch), {}).setdefault(agent_id, []).append(conversation_id)
    return {key: packed_lists(per_agent, IDS) for key, per_agent in out.items()}


@_without_jit
def resolutions_compute(period: Period) -> dict[tuple[date, str], dict]:
    """{(day resolved, channel): {assignee id: [seconds, packed]}} for the resolutions in the
    period (inbox.Resolution, one row each time an agent marked a conversation resolved): from
    the first customer message since the previous resolution to that moment. A resolution
    with no customer message (reopened and resolved again) or nobody assigned is left out."""
    rows = (
        Resolution.objects.filter(
            resolved_at__gte=period.start,
            resolved_at__lt=period.end,
            assignee__isnull=False,
            started_at__isnull=False,
        )
        .annotate(
            day=TruncDate("resolved_at", tzinfo=GYE),
            # Seconds from the database, as floats: two aware datetimes, or a Decimal and a
            # timedelta, per row cost more than the query. Constant column names only.
            seconds=RawSQL(_float(_seconds_between("resolved_at", "started_at")), []),  # noqa: S611
        )
        .values_list("day", "channel_id", "assignee_id", "seconds")
        .order_by()
    )
    out: dict = {}
    for day, ch, assignee_id, seconds in rows:
        out.setdefault((_as_date(day), ch), {}).setdefault(assignee_id, []).append(seconds)
    return {key: packed_lists(per_agent, FLOATS) for key, per_agent in out.items()}


def agent_stats(period: Period, *, channel: str | None = None) -> list[dict]:
    """agent_stats_count, recomputed at most every LIVE_SECONDS for one period."""
    key = f"insights:v3:agents:{period.first}:{period.last}:{channel or '*'}"
    # get_or_set returns the computed list, never None; django-stubs types it Any | None.
    return cache.get_or_set(  # type: ignore[return-value]
        key, lambda: agent_stats_count(period, channel=channel), LIVE_SECONDS
    )


@_without_jit
def agent_stats_count(period: Period, *, channel: str | None = None) -> list[dict]:
    """Per agent (a user who wrote as an agent):

    - atendidas: conversations in which they wrote at least one message in the period;
    - primera respuesta (mediana): for each customer turn that started in the period (a customer
      message whose previous message in the conversation is not the customer's), the time to
      the next agent message, credited to the agent who wrote it (a turn still unanswered two
      days later stays unanswered);
    - resolución (mediana): for each time a conversation was marked resolved in the period
      (inbox.Resolution), from the customer's first message since its previous resolution to
      that moment, credited to whoever was assigned then.

    Each is read from per-day packed arrays folded by insights.rollups (today's from the raw
    rows), and the medians are exact: numpy over every value of the period.
    """
    from django.contrib.auth import get_user_model

    def folded(kind, compute, dtype) -> dict[int, np.ndarray]:
        days = days_folded(kind, period, compute, channel=channel, empty={}, merge=_join_lists)
        return unpacked(days.values(), dtype)

    answered = folded("handled", handled_compute, IDS)
    handled = {pk: _distinct(ids) for pk, ids in answered.items()}
    turns = folded("turns", turns_compute, SECONDS)
    resolutions = folded("resolutions", resolutions_compute, FLOATS)
    ids = set(handled) | set(turns) | set(resolutions)
    users = {u.pk: u for u in get_user_model().objects.filter(pk__in=ids)}
    rows = []
    for pk in sorted(ids, key=lambda pk: (-handled.get(pk, 0), pk)):
        user = users.get(pk)
        if user is None:
            continue
        waits, durations = turns.get(pk, NONE), resolutions.get(pk, NONE)
        rows.append(
            {
                "agent": user.get_full_name() or user.get_username(),
                "handled": handled.get(pk, 0),
                "turns": int(waits.size),
                "first_response": (
                    timedelta(seconds=float(np.median(waits))) if waits.size else None
                ),
                "resolved": int(durations.size),
                "resolution": _duration(float(np.median(durations))) if durations.size else None,
            }
        )
    return rows


def _distinct(values: np.ndarray) -> int:
    """How many different values: sorted, the places where a value changes. numpy.unique
    does the same and more, 12 times slower here (325 ms against 26 for 526,000 ids)."""
    ordered = np.sort(values)
    return int(np.count_nonzero(ordered[1:] != ordered[:-1])) + 1 if ordered.size else 0


def _float(sql: str) -> str:
    """A double in both databases (SQLite reads DOUBLE PRECISION as REAL, 8 bytes)."""
    return f"CAST({sql} AS DOUBLE PRECISION)"


def _duration(seconds: float) -> timedelta:
    """To the millisecond: SQLite's date arithmetic (julianday) is exact to no more, and a
    median resolution time is read in minutes."""
    return timedelta(milliseconds=round(seconds * 1000))
