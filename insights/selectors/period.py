"""Days and ranges (Guayaquil calendar days), and the per-day rollup cache every figure over
a period goes through."""

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
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


# --- per-day rollups, cached once a day has settled ----------------------------------------------

CACHE_SECONDS = 6 * 3600
# What still changes (campaigns still running or inside their window, behaviour groups) is
# recomputed at most this often: analytics a minute old, the panel always live.
LIVE_SECONDS = 60
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
