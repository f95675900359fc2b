"""Days and ranges (Guayaquil calendar days), and the per-day rollups every figure over
a period goes through."""

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone
from django.utils.translation import gettext as _

GYE = ZoneInfo(settings.TIME_ZONE)
MAX_RANGE_DAYS = 400
PRESETS = ("today", "7", "30", "90")


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


# --- per-day figures: folded rollups, and the cache for what is not folded -------------------

CACHE_SECONDS = 6 * 3600
# What still changes (campaigns still running or inside their window, behaviour groups) is
# recomputed at most this often: analytics a minute old, the panel always live.
LIVE_SECONDS = 60
# Statuses for a day can still arrive a little later (a read the next morning, a late webhook):
# a day is cached only once it is this many days old, and folded again until then.
SETTLE_DAYS = 2


def _merged(computed: dict, channel: str | None, merge) -> dict:
    """{(day, channel): value} -> {day: value} over one channel, or every one (None)."""
    out: dict = {}
    for (day, key), value in computed.items():
        if channel is None or key == channel:
            out[day] = merge(out[day], value) if day in out else value
    return out


def days_folded(
    kind: str, period: Period, compute, *, channel: str | None, empty, merge
) -> dict[date, Any]:
    """{day: value} for every day of the period, on one channel or all of them: the days the
    fold has reached from insights.models.Rollup (a few rows per day), the rest (today, or
    every day when no fold has run yet) computed from the raw rows by
    `compute(period) -> {(day, channel): value}`. Never cached: the fold keeps it current."""
    from insights.models import Rollup, RollupMark

    through = RollupMark.objects.filter(kind=kind).values_list("through", flat=True).first()
    out: dict = {}
    if through is not None and through >= period.first:
        rows = Rollup.objects.filter(kind=kind, day__gte=period.first, day__lte=period.last)
        if channel is not None:
            rows = rows.filter(channel=channel)
        for day, value in rows.values_list("day", "data"):
            out[day] = merge(out[day], value) if day in out else value
    live_first = period.first if through is None else max(period.first, through + timedelta(1))
    if live_first <= period.last:
        live = _merged(compute(Period(live_first, period.last)), channel, merge)
        out.update({day: live[day] for day in live if day >= live_first})
    return {day: out.get(day, empty) for day in period.days}


def days_cached(
    kind: str,
    period: Period,
    compute,
    *,
    empty,
    merge,
    channel: str | None = None,
    settle_days: int = SETTLE_DAYS,
) -> dict[date, Any]:
    """{day: value} for every day of the period, for what the fold does not keep (a funnel
    over a window other than the default): settled days are kept in Django's cache, one entry
    per kind, channel and month, so a 365-day page computes only the last few days."""
    settled_before = timezone.localdate() - timedelta(days=settle_days)
    prefix = f"insights:v3:{kind}:{channel or '*'}"
    month_keys = {f"{prefix}:{day:%Y-%m}" for day in period.days}
    blocks = cache.get_many(sorted(month_keys))
    out, missing = {}, []
    for day in period.days:
        block = blocks.get(f"{prefix}:{day:%Y-%m}", {})
        if day < settled_before and day in block:
            out[day] = block[day]
        else:
            missing.append(day)
    if missing:
        computed = _merged(compute(Period(missing[0], missing[-1])), channel, merge)
        changed: dict[str, dict] = {}
        for day in missing:
            out[day] = computed.get(day, empty)
            if day < settled_before:
                key = f"{prefix}:{day:%Y-%m}"
                block = changed.setdefault(key, dict(blocks.get(key, {})))
                block[day] = out[day]
        cache.set_many(changed, CACHE_SECONDS)
    return out
