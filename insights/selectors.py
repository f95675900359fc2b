"""Read-only figures over the other apps' data. Nothing here writes.

Every figure is counted in the database (GROUP BY on dates and hours converted to Guayaquil
time with Trunc/Extract and tzinfo, the same SQL shape on SQLite and PostgreSQL). A day is a
Guayaquil calendar day, [00:00, 24:00) local.

Definitions (also shown as help on the pages):

- enviados: outbound messages whose `sent_at` (the provider accepted them) falls on the day.
- entregados: outbound messages that reached the phone on the day: `delivered_at` on the day,
  or, when WhatsApp reported "read" without a "delivered" first, `read_at` on the day.
- leídos: outbound messages whose `read_at` falls on the day.
- respuestas recibidas: inbound messages (written by customers) on the day (`created_at`, the
  WhatsApp timestamp).
- fallidos: outbound messages that ended `failed` with `failed_at` on the day.
- tasa de apertura: of the messages sent on the day, the share already read (read / sent of the
  same messages, so it never exceeds 100 %).
- nuevas conversaciones: conversations created on the day (a customer's first contact on a
  WhatsApp number).
- change against yesterday: today so far against yesterday up to the same time of day, in %
  (none when yesterday had zero).
"""

import hashlib
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from functools import wraps
from statistics import median
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import (
    Case,
    Count,
    DateTimeField,
    Exists,
    ExpressionWrapper,
    F,
    Max,
    Min,
    OuterRef,
    Q,
    RowRange,
    Sum,
    When,
    Window,
)
from django.db.models.functions import (
    Coalesce,
    ExtractHour,
    Lag,
    TruncDate,
)
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from customers.models import Renewal, Subscription
from inbox.models import Conversation, Message, SessionState
from inbox.selectors import FAST_REPLY, HABIT_WINDOW

GYE = ZoneInfo(settings.TIME_ZONE)
MAX_RANGE_DAYS = 400
CENT = Decimal("0.01")
PRESETS = ("today", "7", "30", "90")
OUT = Q(direction=Message.Direction.OUT)
IN = Q(direction=Message.Direction.IN)
FIGURES = ("sent", "delivered", "read", "replies", "failed", "new_conversations")
# Session states WaSender reports when the number cannot send.
SESSION_DOWN = ("disconnected", "need_scan", "logged_out", "expired", "failed", "close", "closed")


# --- PostgreSQL's JIT ---------------------------------------------------------------------------


@contextmanager
def _no_jit():
    """PostgreSQL compiles these grouped and windowed queries with its JIT (their estimated
    cost is high) and spends longer compiling than running them: 1.2 s against 0.24 s for the
    campaign comparison on the large data set. Off for the transaction."""
    if connection.vendor != "postgresql":
        yield
        return
    with transaction.atomic(savepoint=False):
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL jit = off")
        yield


def _without_jit(compute):
    @wraps(compute)
    def wrapper(*args, **kwargs):
        with _no_jit():
            return compute(*args, **kwargs)

    return wrapper


@contextmanager
def _analytic_cursor():
    with _no_jit(), connection.cursor() as cursor:
        yield cursor


# --- days and ranges ------------------------------------------------------------------------


def day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=GYE)


@dataclass(frozen=True)
class Period:
    """Local calendar days, both ends included."""

    first: date
    last: date

    @property
    def start(self) -> datetime:
        return day_start(self.first)

    @property
    def end(self) -> datetime:
        return day_start(self.last + timedelta(days=1))

    @property
    def days(self) -> list[date]:
        return [self.first + timedelta(days=n) for n in range((self.last - self.first).days + 1)]


class PeriodError(ValueError):
    """A bad range; the message is Spanish, for the person who asked."""


def parse_day(value: str, name: str) -> date:
    try:
        return date.fromisoformat(value.strip())
    except (ValueError, AttributeError):
        raise PeriodError(
            _("%(name)s no es una fecha válida (AAAA-MM-DD): %(value)s")
            % {"name": name, "value": str(value)[:40]}
        ) from None


def period_make(first: date, last: date) -> Period:
    if last < first:
        raise PeriodError(_("La fecha final es anterior a la inicial."))
    if (last - first).days + 1 > MAX_RANGE_DAYS:
        raise PeriodError(_("El rango no puede pasar de %(n)s días.") % {"n": MAX_RANGE_DAYS})
    return Period(first, last)


def period_preset(preset: str, *, today: date | None = None) -> Period:
    today = today or timezone.localdate()
    if preset == "today":
        return Period(today, today)
    days = int(preset)
    return Period(today - timedelta(days=days - 1), today)


def period_from_params(params, *, today: date | None = None) -> tuple[Period, str]:
    """(period, preset name or "custom") from ?range=7 or ?from=...&to=...; PeriodError."""
    preset = params.get("range") or ""
    if preset in PRESETS:
        return period_preset(preset, today=today), preset
    if params.get("from") or params.get("to") or preset == "custom":
        today = today or timezone.localdate()
        first = parse_day(params.get("from") or "", "from")
        last = parse_day(params["to"], "to") if params.get("to") else today
        return period_make(first, last), "custom"
    return period_preset("30", today=today), "30"


# --- the day's figures (panel) --------------------------------------------------------------


def _between(field: str, start: datetime, end: datetime) -> Q:
    return Q(**{f"{field}__gte": start, f"{field}__lt": end})


def _delivered(start, end) -> Q:
    return OUT & (
        _between("delivered_at", start, end)
        | Q(delivered_at__isnull=True) & _between("read_at", start, end)
    )


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


def _rate(part: int, whole: int) -> int | None:
    return round(100 * part / whole) if whole else None


def _change(now_value, before) -> dict:
    if now_value is None or before is None:
        return {"pct": None, "direction": "flat"}
    if before == 0:
        return {"pct": None, "direction": "up" if now_value > 0 else "flat"}
    pct = round(100 * (now_value - before) / before)
    return {"pct": abs(pct), "direction": "up" if pct > 0 else "down" if pct < 0 else "flat"}


@_without_jit
def today_figures(*, now: datetime | None = None) -> dict:
    """Today so far against yesterday up to the same time: two queries."""
    now = (now or timezone.now()).astimezone(GYE)
    today = now.date()
    start = day_start(today)
    y_start = day_start(today - timedelta(days=1))
    y_same = y_start + (now - start)
    counts = Message.objects.filter(_touching(y_start, now)).aggregate(
        **_window_counts(start, now, "t_"), **_window_counts(y_start, y_same, "y_")
    )
    conversations = Conversation.objects.filter(created_at__gte=y_start, created_at__lt=now)
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


def waiting_conversations(*, now: datetime | None = None) -> dict:
    """Conversations in state new (a customer wrote, nobody answered) and the oldest wait,
    measured from the conversation's last message."""
    now = now or timezone.now()
    row = Conversation.objects.filter(status=Conversation.Status.NEW).aggregate(
        count=Count("id"), oldest=Min("last_message_at")
    )
    row["oldest_wait"] = now - row["oldest"] if row["oldest"] else None
    return row


def session_states() -> list[dict]:
    rows = list(SessionState.objects.order_by("session").values("session", "status", "changed_at"))
    for row in rows:
        row["down"] = row["status"].lower() in SESSION_DOWN
    return rows


# --- per-day rollups, cached once a day has settled ----------------------------------------------

CACHE_SECONDS = 6 * 3600
# What still changes (campaigns still running or inside their window, behaviour groups) is
# recomputed at most this often: analytics a minute old, the panel always live.
LIVE_SECONDS = 60
BEHAVIOUR_SECONDS = 300
# Statuses for a day can still arrive a little later (a read the next morning, a late webhook):
# a day is cached only once it is this many days old.
SETTLE_DAYS = 2


def days_cached(kind: str, period: Period, compute, *, empty, settle_days: int = SETTLE_DAYS):
    """{day: value} for every day of the period. `compute(period)` answers {day: value} for a
    span in grouped queries; settled days are kept in Django's cache, one entry per kind and
    month (a year is a dozen entries), so a 365-day page computes only the last few days."""
    settled_before = timezone.localdate() - timedelta(days=settle_days)
    month_keys = {f"insights:v2:{kind}:{day:%Y-%m}" for day in period.days}
    blocks = cache.get_many(sorted(month_keys))
    out, missing = {}, []
    for day in period.days:
        block = blocks.get(f"insights:v2:{kind}:{day:%Y-%m}", {})
        if day < settled_before and day in block:
            out[day] = block[day]
        else:
            missing.append(day)
    if missing:
        computed = compute(Period(missing[0], missing[-1]))
        changed = {}
        for day in missing:
            out[day] = computed.get(day, empty)
            if day < settled_before:
                key = f"insights:v2:{kind}:{day:%Y-%m}"
                block = changed.setdefault(key, dict(blocks.get(key, {})))
                block[day] = out[day]
        cache.set_many(changed, CACHE_SECONDS)
    return out


def _per_day(queryset, field) -> dict[date, int]:
    rows = (
        queryset.annotate(day=TruncDate(field, tzinfo=GYE))
        .values("day")
        .annotate(n=Count("id"))
        .order_by()
    )
    return {row["day"]: row["n"] for row in rows}


@_without_jit
def _daily_compute(period: Period) -> dict[date, dict]:
    start, end = period.start, period.end
    messages = Message.objects.order_by()
    sent_rows = (
        messages.filter(OUT & _between("sent_at", start, end))
        .annotate(day=TruncDate("sent_at", tzinfo=GYE))
        .values("day")
        .annotate(n=Count("id"), read=Count("id", filter=Q(read_at__isnull=False)))
    )
    series = {
        "sent": {row["day"]: row["n"] for row in sent_rows},
        "delivered": _per_day(
            messages.filter(_delivered(start, end)), Coalesce("delivered_at", "read_at")
        ),
        "read": _per_day(messages.filter(OUT & _between("read_at", start, end)), "read_at"),
        "replies": _per_day(messages.filter(IN & _between("created_at", start, end)), "created_at"),
        "failed": _per_day(
            messages.filter(
                OUT & Q(status=Message.Status.FAILED) & _between("failed_at", start, end)
            ),
            "failed_at",
        ),
        "new_conversations": _per_day(
            Conversation.objects.filter(_between("created_at", start, end)), "created_at"
        ),
    }
    sent_read = {row["day"]: row["read"] for row in sent_rows}
    return {
        day: {**{name: values.get(day, 0) for name, values in series.items()},
              "sent_read": sent_read.get(day, 0)}
        for day in period.days
    }  # fmt: skip


def daily_metrics(period: Period) -> list[dict]:
    """One row per day of the period: sent, delivered, read, replies, failed, new
    conversations, and the open rate (read share of that day's sends)."""
    empty = dict.fromkeys((*FIGURES, "sent_read"), 0)
    days = days_cached("daily", period, _daily_compute, empty=empty)
    return [
        {"day": day, **{name: row[name] for name in FIGURES},
         "sent_read": row["sent_read"], "open_rate": _rate(row["sent_read"], row["sent"])}
        for day, row in days.items()
    ]  # fmt: skip


def totals(rows: list[dict]) -> dict:
    out = {name: sum(r[name] for r in rows) for name in (*FIGURES, "sent_read")}
    out["open_rate"] = _rate(out["sent_read"], out["sent"])
    return out


def summary(period: Period) -> dict:
    """The period's totals (the API's summary), from the daily rollup."""
    out = totals(daily_metrics(period))
    out.pop("sent_read")
    return out


# --- best hours -------------------------------------------------------------------------------


@_without_jit
def _hours_compute(period: Period) -> dict[date, dict]:
    start, end = period.start, period.end
    out = {
        day: {"replies": [0] * 24, "sent": [0] * 24, "sent_read": [0] * 24} for day in period.days
    }
    replies = (
        Message.objects.filter(IN & _between("created_at", start, end))
        .annotate(
            day=TruncDate("created_at", tzinfo=GYE), hour=ExtractHour("created_at", tzinfo=GYE)
        )
        .values("day", "hour")
        .annotate(n=Count("id"))
        .order_by()
    )
    for row in replies:
        out[row["day"]]["replies"][row["hour"]] = row["n"]
    sent = (
        Message.objects.filter(OUT & _between("sent_at", start, end))
        .annotate(day=TruncDate("sent_at", tzinfo=GYE), hour=ExtractHour("sent_at", tzinfo=GYE))
        .values("day", "hour")
        .annotate(n=Count("id"), read=Count("id", filter=Q(read_at__isnull=False)))
        .order_by()
    )
    for row in sent:
        out[row["day"]]["sent"][row["hour"]] = row["n"]
        out[row["day"]]["sent_read"][row["hour"]] = row["read"]
    return out


def heatmaps(period: Period) -> dict:
    """Weekday (0 = Monday) x hour grids, Guayaquil time: customer messages by when they were
    written; our messages by when they were sent, how many of those have been read, and the
    read rate."""
    empty = {"replies": [0] * 24, "sent": [0] * 24, "sent_read": [0] * 24}
    grids = {name: [[0] * 24 for _ in range(7)] for name in empty}
    for day, row in days_cached("hours", period, _hours_compute, empty=empty).items():
        for name, grid in grids.items():
            weekday = day.weekday()
            grid[weekday] = [a + b for a, b in zip(grid[weekday], row[name], strict=True)]
    grids["rate"] = [
        [_rate(r, n) for r, n in zip(reads, sents, strict=True)]
        for reads, sents in zip(grids["sent_read"], grids["sent"], strict=True)
    ]
    return grids


def weekday_names() -> list[str]:
    return [_("lunes"), _("martes"), _("miércoles"), _("jueves"), _("viernes"), _("sábado"),
            _("domingo")]  # fmt: skip


def slot_name(weekday: int, hour: int) -> str:
    """(1, 19) -> "martes 19:00-20:00" (0 = Monday)."""
    return f"{weekday_names()[weekday]} {hour:02d}:00-{(hour + 1) % 24:02d}:00"


def best_slots(grid, *, top: int = 3, weights=None, min_weight: int = 0) -> list[dict]:
    """The highest cells, named; with `weights`, cells with fewer than `min_weight` are left out
    (a 100 % read rate from one message is not a best hour)."""
    cells = []
    for weekday in range(7):
        for hour in range(24):
            value = grid[weekday][hour]
            if not value:
                continue
            if weights is not None and weights[weekday][hour] < min_weight:
                continue
            cells.append((value, weekday, hour))
    cells.sort(key=lambda c: (-c[0], c[1], c[2]))
    return [
        {"name": slot_name(d, h), "value": v, "weekday": d, "hour": h} for v, d, h in cells[:top]
    ]


# --- services ---------------------------------------------------------------------------------


@_without_jit
def _renewals_compute(period: Period) -> dict[date, dict]:
    rows = (
        Renewal.objects.filter(_between("renewed_at", period.start, period.end))
        .annotate(day=TruncDate("renewed_at", tzinfo=GYE))
        .values("day", "subscription__service__name")
        .annotate(n=Count("id"), revenue=Sum("amount"))
        .order_by()
    )
    out: dict = {}
    for row in rows:
        money = Decimal(row["revenue"] or 0).quantize(CENT)
        out.setdefault(row["day"], {})[row["subscription__service__name"]] = [row["n"], str(money)]
    return out


def popular_services(period: Period, *, today: date | None = None) -> list[dict]:
    """Per service: subscriptions active today (expires_on >= today), renewals in the period
    and their revenue (USD, the amounts paid)."""
    today = today or timezone.localdate()
    active = dict(
        Subscription.objects.filter(expires_on__gte=today)
        .values_list("service__name")
        .annotate(n=Count("id"))
        .order_by()
    )
    renewals: dict[str, list] = {}
    for per_service in days_cached("renewals", period, _renewals_compute, empty={}).values():
        for name, (n, money) in per_service.items():
            total = renewals.setdefault(name, [0, Decimal("0.00")])
            total[0] += n
            total[1] += Decimal(money)
    rows = [
        {"service": name, "active": active.get(name, 0),
         "renewals": renewals.get(name, [0])[0],
         "revenue": renewals.get(name, [0, Decimal("0.00")])[1]}
        for name in set(active) | set(renewals)
    ]  # fmt: skip
    rows.sort(key=lambda r: (-r["active"], -r["renewals"], r["service"]))
    return rows


# --- conversion after reminders ----------------------------------------------------------------


def _funnel_compute(within_days: int):
    window = timedelta(days=within_days)

    @_without_jit
    def compute(period: Period) -> dict[date, dict]:
        from outbound.models import ReminderSent

        later = ExpressionWrapper(OuterRef("created_at") + window, output_field=DateTimeField())
        replied = Message.objects.filter(
            IN, conversation=OuterRef("message__conversation"),
            created_at__gt=OuterRef("created_at"), created_at__lte=later,
        )  # fmt: skip
        renewed = Renewal.objects.filter(
            subscription=OuterRef("subscription"),
            renewed_at__gte=OuterRef("created_at"), renewed_at__lte=later,
        )  # fmt: skip
        rows = (
            ReminderSent.objects.filter(
                _between("created_at", period.start, period.end),
                outcome=ReminderSent.Outcome.SENT, message__isnull=False,
            )
            .annotate(day=TruncDate("created_at", tzinfo=GYE))
            .values("day", "rule__name", "subscription__service__name")
            .annotate(
                reminded=Count("id"),
                read=Count("id", filter=Q(message__read_at__isnull=False)),
                replied=Count("id", filter=Exists(replied)),
                renewed=Count("id", filter=Exists(renewed)),
            )
            .order_by()
        )  # fmt: skip
        out: dict = {}
        for r in rows:
            key = f"{r['rule__name']}\x1f{r['subscription__service__name']}"
            out.setdefault(r["day"], {})[key] = [
                r["reminded"],
                r["read"],
                r["replied"],
                r["renewed"],
            ]
        return out

    return compute


FUNNEL_STEPS = ("reminded", "read", "replied", "renewed")


def _funnel_row(values, **extra) -> dict:
    row = {**extra, **dict(zip(FUNNEL_STEPS, values, strict=True))}
    for name in FUNNEL_STEPS[1:]:
        row[f"{name}_rate"] = _rate(row[name], row["reminded"])
    return row


def reminder_funnel(period: Period, *, within_days: int = 7) -> dict:
    """Reminders sent in the period (ReminderSent rows with a message): how many were read,
    how many got a customer message in the same conversation within N days, and how many were
    followed by a renewal of the reminded subscription within N days (as outbound's own
    reminder stats count conversion). Totals, by rule and by service."""
    days = days_cached(
        f"funnel{within_days}", period, _funnel_compute(within_days),
        empty={}, settle_days=within_days + SETTLE_DAYS,
    )  # fmt: skip
    by_rule: dict[str, list] = {}
    by_service: dict[str, list] = {}
    total = [0, 0, 0, 0]
    for per_day in days.values():
        for key, values in per_day.items():
            rule, service = key.split("\x1f")
            for bucket, name in ((by_rule, rule), (by_service, service)):
                sums = bucket.setdefault(name, [0, 0, 0, 0])
                for i, value in enumerate(values):
                    sums[i] += value
            for i, value in enumerate(values):
                total[i] += value
    return {
        "within_days": within_days,
        "total": _funnel_row(total),
        "rules": [_funnel_row(v, name=k) for k, v in sorted(by_rule.items())],
        "services": [_funnel_row(v, name=k) for k, v in sorted(by_service.items())],
    }


# --- campaigns --------------------------------------------------------------------------------


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
    for c in campaigns:
        c["waiting"] = waiting.get(c["id"])
        c["done"] = done.get(c["id"], 0)
        c["progress"] = _rate(c["done"], c["recipients_total"]) or 0
        c["state_label"] = labels[c["state"]]
    return campaigns


CAMPAIGN_SORTS = ("title", "launched_at", "recipients", "sent", "open_rate", "reply_rate",
                  "conversion_rate", "opt_outs", "failed")  # fmt: skip


@_without_jit
def campaign_comparison(period: Period, *, within_days: int = 7, sort: str = "-launched_at"):
    """Campaigns launched in the period, each over its recipients' messages:

    - enviados: messages with sent_at; fallidos: messages that ended failed;
    - apertura: read / sent; respuesta: sent messages followed by a customer message in the
      same conversation within N days / sent;
    - conversión: sent messages followed by a renewal of any of the customer's subscriptions
      within N days / sent;
    - bajas: recipients who opted out of marketing within N days of the send.
    One grouped query over the campaigns not cached yet: an ended campaign is cached once its
    N-day window, plus the settling days, has passed; the others are recomputed at most every
    LIVE_SECONDS."""
    from outbound.models import Campaign

    window = timedelta(days=within_days)
    launched = Campaign.objects.filter(launched_at__gte=period.start, launched_at__lt=period.end)
    settled_before = timezone.now() - window - timedelta(days=SETTLE_DAYS)
    ended = (Campaign.State.COMPLETED, Campaign.State.CANCELLED)
    keys = {
        pk: f"insights:v2:campaign{within_days}:{pk}"
        for pk, at, state in launched.values_list("pk", "launched_at", "state")
        if at < settled_before and state in ended
    }
    cached = cache.get_many(list(keys.values()))
    done = [pk for pk, key in keys.items() if key in cached]
    live = sorted(set(launched.values_list("pk", flat=True)) - set(done))
    ids = hashlib.sha1(",".join(map(str, live)).encode(), usedforsecurity=False).hexdigest()
    live_key = f"insights:v2:campaigns-live{within_days}:{ids}"
    rows = cache.get(live_key) if live else []
    if rows is not None:
        rows = list(rows)
    else:
        rows = _campaign_rows(live, window=window)
        cache.set(live_key, rows, LIVE_SECONDS)
    # A campaign that ended and whose window has closed no longer changes: kept per campaign.
    cache.set_many({keys[r["campaign_id"]]: r for r in rows if r["campaign_id"] in keys},
                   CACHE_SECONDS)  # fmt: skip
    rows.extend(cached.values())
    labels = dict(Campaign.State.choices)
    out = []
    for r in rows:
        out.append({
            "id": r["campaign_id"], "title": r["campaign__title"],
            "launched_at": r["campaign__launched_at"], "state": labels[r["campaign__state"]],
            "recipients": r["recipients"], "sent": r["sent"], "read": r["read"],
            "replied": r["replied"], "renewed": r["renewed"], "failed": r["failed"],
            "opt_outs": r["opt_outs"], "open_rate": _rate(r["read"], r["sent"]),
            "reply_rate": _rate(r["replied"], r["sent"]),
            "conversion_rate": _rate(r["renewed"], r["sent"]),
        })  # fmt: skip
    key = sort.lstrip("-")
    if key not in CAMPAIGN_SORTS:
        key, sort = "launched_at", "-launched_at"
    out.sort(key=lambda r: (r[key] is None, r[key] if r[key] is not None else 0, r["id"]),
             reverse=sort.startswith("-"))  # fmt: skip
    return out


def _campaign_rows(campaign_ids: list[int], *, window: timedelta) -> list[dict]:
    """The comparison's figures for these campaigns: one grouped query over their recipients."""
    from outbound.models import CampaignRecipient

    later = ExpressionWrapper(OuterRef("message__sent_at") + window, output_field=DateTimeField())
    replied = Message.objects.filter(
        IN, conversation=OuterRef("message__conversation"),
        created_at__gt=OuterRef("message__sent_at"), created_at__lte=later,
    )  # fmt: skip
    renewed = Renewal.objects.filter(
        subscription__customer=OuterRef("customer"),
        renewed_at__gte=OuterRef("message__sent_at"), renewed_at__lte=later,
    )  # fmt: skip
    sent = Q(message__sent_at__isnull=False)
    rows = (
        CampaignRecipient.objects.filter(campaign_id__in=campaign_ids)
        .values("campaign_id", "campaign__title", "campaign__launched_at", "campaign__state")
        .annotate(
            recipients=Count("id"),
            sent=Count("id", filter=sent),
            read=Count("id", filter=sent & Q(message__read_at__isnull=False)),
            replied=Count("id", filter=sent & Exists(replied)),
            renewed=Count("id", filter=sent & Exists(renewed)),
            failed=Count("id", filter=Q(message__status=Message.Status.FAILED)),
            opt_outs=Count("id", filter=sent & Q(
                customer__marketing_opt_out_at__gte=F("message__sent_at"),
                customer__marketing_opt_out_at__lte=F("message__sent_at") + window,
            )),
        )
        .order_by()
    )  # fmt: skip
    return list(rows)


def min_sample(sent_grid) -> int:
    """A read-rate cell counts as a best hour only with at least 5 % of the busiest cell's
    sends (and at least 5)."""
    busiest = max((max(row) for row in sent_grid), default=0)
    return max(5, busiest // 20)


# --- agents -----------------------------------------------------------------------------------

# An agent's answer: a message a person wrote from the inbox (not a bot, reminder or campaign).
ANSWER = Q(author_kind=Message.Author.AGENT, agent__isnull=False)
# Both directions, so PostgreSQL reads the (direction, created_at) index for a date range.
BOTH = Q(direction__in=(Message.Direction.IN, Message.Direction.OUT))


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


def _turns_compute(period: Period) -> dict[date, dict]:
    """{turn day: {agent id: [seconds to the first answer, ...]}} in one pass over the
    messages since the period's start. LAG gives each customer message the direction of the
    one before it (a turn starts when that was not the customer's); a running count of answers
    splits each conversation into runs that end with an answer, so a turn's answer is the one
    answer in its run."""
    start, end = period.start, period.end
    seq = (
        Message.objects.filter(BOTH, created_at__gte=start)
        .filter(Q(created_at__lt=end) | ANSWER)
        .annotate(
            prev_dir=_thread_window(Lag("direction")),
            answers=_thread_window(Sum(Case(When(ANSWER, then=1), default=0))),
            is_answer=Case(When(ANSWER, then=1), default=0),
            day=TruncDate("created_at", tzinfo=GYE),
        )
        .values("id", "conversation_id", "direction", "created_at", "agent_id",
                "prev_dir", "answers", "is_answer", "day")
        .order_by()
    )  # fmt: skip
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
        SELECT t.answered_by, t.day, {_seconds_between("t.answered_at", "t.created_at")}
        FROM runs t
        WHERE t.direction = 'in' AND t.created_at < %s AND t.answered_at IS NOT NULL
            AND COALESCE(t.prev_dir, {_previous_before("direction", "t")}, '') <> 'in'
    """  # noqa: S608
    out: dict = {}
    with _analytic_cursor() as cursor:
        cursor.execute(sql, [*params, connection.ops.adapt_datetimefield_value(end)])
        for agent_id, day, seconds in cursor.fetchall():
            out.setdefault(_as_date(day), {}).setdefault(agent_id, []).append(round(seconds))
    return out


@_without_jit
def _resolutions(period: Period) -> dict[int, list[timedelta]]:
    """{assignee id: [durations]} for resolved conversations whose last message is in the
    period: from their first customer message since the period's start to the last message."""
    rows = (
        Conversation.objects.filter(
            status=Conversation.Status.RESOLVED, assignee__isnull=False,
            last_message_at__gte=period.start, last_message_at__lt=period.end,
            messages__direction=Message.Direction.IN, messages__created_at__gte=period.start,
        )
        .values("id", "assignee_id", "last_message_at")
        .annotate(first_in=Min("messages__created_at"))
        .order_by()
    )  # fmt: skip
    out: dict[int, list[timedelta]] = {}
    for row in rows:
        out.setdefault(row["assignee_id"], []).append(row["last_message_at"] - row["first_in"])
    return out


def agent_stats(period: Period) -> list[dict]:
    """agent_stats_count, recomputed at most every LIVE_SECONDS for one period."""
    key = f"insights:v2:agents:{period.first}:{period.last}"
    return cache.get_or_set(key, lambda: agent_stats_count(period), LIVE_SECONDS)


@_without_jit
def agent_stats_count(period: Period) -> list[dict]:
    """Per agent (a user who wrote as an agent):

    - atendidas: conversations in which they wrote at least one message in the period;
    - primera respuesta (mediana): for each customer turn that started in the period (a customer
      message whose previous message in the conversation is not the customer's), the time to
      the next agent message, credited to the agent who wrote it (per-day lists, cached once
      the day has settled: a turn still unanswered two days later stays unanswered);
    - resolución (mediana): for conversations now resolved whose last message is in the period,
      from the first customer message in the period to the last message, credited to the
      assignee. (Approximate: conversations keep no "resolved at" time.)
    """
    from django.contrib.auth import get_user_model

    handled = dict(
        Message.objects.filter(OUT, ANSWER, created_at__gte=period.start, created_at__lt=period.end)
        .values_list("agent_id")
        .annotate(n=Count("conversation_id", distinct=True))
        .order_by()
    )
    turns: dict[int, list[int]] = {}
    for per_agent in days_cached("turns", period, _turns_compute, empty={}).values():
        for agent_id, seconds in per_agent.items():
            turns.setdefault(agent_id, []).extend(seconds)
    resolutions = _resolutions(period)
    ids = set(handled) | set(turns) | set(resolutions)
    users = {u.pk: u for u in get_user_model().objects.filter(pk__in=ids)}
    rows = []
    for pk in sorted(ids, key=lambda pk: (-handled.get(pk, 0), pk)):
        user = users.get(pk)
        if user is None:
            continue
        waits, durations = turns.get(pk, []), resolutions.get(pk, [])
        rows.append(
            {
                "agent": user.get_full_name() or user.get_username(),
                "handled": handled.get(pk, 0),
                "turns": len(waits),
                "first_response": timedelta(seconds=median(waits)) if waits else None,
                "resolved": len(durations),
                "resolution": median(durations) if durations else None,
            }
        )
    return rows


# --- behaviour groups ---------------------------------------------------------------------------


def behaviour_groups(*, now: datetime | None = None) -> list[dict]:
    """behaviour_groups_count, recomputed at most every few minutes (habits over 90 days move
    slowly; counting them reads every message of the window)."""
    if now is not None:
        return behaviour_groups_count(now=now)
    return cache.get_or_set(
        f"insights:v2:behaviour:{translation.get_language()}",
        behaviour_groups_count,
        BEHAVIOUR_SECONDS,
    )


def behaviour_groups_count(*, now: datetime | None = None) -> list[dict]:
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
    labels = {"fast": _("Responden rápido (< 1 h)"), "slow": _("Responden lento"),
              "never": _("Nunca responden")}  # fmt: skip
    counts = {"fast": fast, "slow": slow, "never": never}
    return [{"key": key, "label": labels[key], "customers": counts[key]} for key in labels]


def last_activity() -> datetime | None:
    return Message.objects.aggregate(last=Max("created_at"))["last"]
