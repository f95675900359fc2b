"""What the figures share: PostgreSQL's JIT switched off, the direction filters, date ranges,
rates, and window functions over a conversation's thread."""

from contextlib import contextmanager
from datetime import date, datetime
from functools import partial, wraps

from django.db import connection, transaction
from django.db.models import F, OuterRef, Q, RowRange, Subquery, Window
from django.db.models.lookups import Exact

from inbox.models import Conversation, Message

OUT = Q(direction=Message.Direction.OUT)
IN = Q(direction=Message.Direction.IN)
FIGURES = ("sent", "delivered", "read", "replies", "failed", "new_conversations")


@contextmanager
def _no_jit(*, serial: bool = False):
    """PostgreSQL compiles these grouped and windowed queries with its JIT (their estimated
    cost is high) and spends longer compiling than running them: 1.2 s against 0.24 s for the
    campaign comparison on the large data set. Off for the transaction.

    serial: no parallel workers either, for a query that reads a few thousand rows (the
    panel's): starting workers costs more than they save, and on a busy machine they wait for
    a core (the panel's count at 2x scale, under load: 42-50 ms with two workers, 14 ms alone).
    """
    if connection.vendor != "postgresql":
        yield
        return
    settings = {"jit": "off", **({"max_parallel_workers_per_gather": "0"} if serial else {})}
    with transaction.atomic(savepoint=False):
        with connection.cursor() as cursor:
            calls = ", ".join(["set_config(%s, %s, true)"] * len(settings))
            cursor.execute(f"SELECT {calls}", [v for item in settings.items() for v in item])
        yield


def _without_jit(compute=None, *, serial: bool = False):
    """@_without_jit, or @_without_jit(serial=True): see _no_jit."""
    if compute is None:
        return partial(_without_jit, serial=serial)

    @wraps(compute)
    def wrapper(*args, **kwargs):
        with _no_jit(serial=serial):
            return compute(*args, **kwargs)

    return wrapper


@contextmanager
def _analytic_cursor():
    with _no_jit(), connection.cursor() as cursor:
        yield cursor


def _between(field: str, start: datetime, end: datetime) -> Q:
    return Q(**{f"{field}__gte": start, f"{field}__lt": end})


def _delivered(start, end) -> Q:
    return OUT & (
        _between("delivered_at", start, end)
        | Q(delivered_at__isnull=True) & _between("read_at", start, end)
    )


def _rate(part: int, whole: int) -> int | None:
    return round(100 * part / whole) if whole else None


# --- a conversation's thread, in SQL -------------------------------------------------------------


def _thread_window(expression) -> Window:
    """`expression` over each conversation's messages in order (created_at, then id)."""
    return Window(
        expression,
        partition_by=[F("conversation_id")],
        order_by=[F("created_at").asc(), F("id").asc()],
        frame=RowRange(start=None, end=0),
    )


def _seconds_between(later: str, earlier: str) -> str:
    if connection.vendor == "postgresql":
        return f"EXTRACT(EPOCH FROM ({later} - {earlier}))"
    return f"((julianday({later}) - julianday({earlier})) * 86400.0)"


def _as_date(value) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def _previous_before(column: str, alias: str, *, condition: str = "") -> str:
    """The column of the message before `alias` in its conversation, looked up only for the
    first message of a scan (whose LAG is null): at most one index probe per conversation."""
    # column, alias and condition are constants of this module, never request data.
    where = f"p.conversation_id = {alias}.conversation_id AND p.created_at < {alias}.created_at"
    return (
        f"(SELECT p.{column} FROM inbox_message p WHERE {where}{condition}"  # noqa: S608
        " ORDER BY p.created_at DESC, p.id DESC LIMIT 1)"
    )


# --- per channel ---------------------------------------------------------------------------------


def _channel_of(conversation: str = "conversation_id") -> Subquery:
    """The WhatsApp number (channel key) of the row's conversation, looked up by primary key
    per row: a join would make PostgreSQL hash every conversation to count one day."""
    return Subquery(Conversation.objects.filter(pk=OuterRef(conversation)).values("channel_id"))


def _of_channel(channel: str | None) -> Q:
    """Messages on one WhatsApp number (None: every one), a primary-key probe per row. A
    scalar subquery, not EXISTS: PostgreSQL turns EXISTS into a hash of every conversation on
    the number, which grows with the table (33,000 at 2x scale, hashed for the panel's 3,500
    touched rows)."""
    if channel is None:
        return Q()
    number = Conversation.objects.filter(pk=OuterRef("conversation_id")).values("channel_id")
    return Q(Exact(Subquery(number[:1]), channel))


def _sum_counts(a: dict, b: dict) -> dict:
    """Two {name: count or [counts]} merged (the same day on two channels)."""
    out = dict(a)
    for name, value in b.items():
        if name not in out:
            out[name] = value
        elif isinstance(value, list):
            out[name] = [x + y for x, y in zip(out[name], value, strict=True)]
        else:
            out[name] = out[name] + value
    return out


def _join_lists(a: dict, b: dict) -> dict:
    """Two {key: [items]} merged: each key's lists joined."""
    out = dict(a)
    for key, items in b.items():
        out[key] = [*out.get(key, []), *items]
    return out
