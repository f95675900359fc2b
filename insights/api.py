"""GET /api/v1/stats/daily and /api/v1/stats/summary (registered in chatdesk.api).

Dates are Guayaquil calendar days (YYYY-MM-DD). A bad date or range answers 422 in the same
shape as ninja's own validation errors; the range is capped at MAX_RANGE_DAYS."""

from datetime import date, datetime

from django.utils import timezone
from django.utils.translation import gettext as _
from ninja import Query, Router, Schema, Status
from ninja.errors import HttpError

from chatdesk.roles import EVERYONE, MARKETING, has_role
from insights import selectors
from insights.selectors import PeriodError

router = Router(tags=["stats"])


class DayOut(Schema):
    day: date
    sent: int
    delivered: int
    read: int
    replies: int
    failed: int
    new_conversations: int
    open_rate: int | None


class Figure(Schema):
    value: int | None
    yesterday: int | None
    change_pct: int | None
    direction: str


class SummaryOut(Schema):
    now: datetime
    figures: dict[str, Figure]
    waiting: int
    oldest_waiting_since: datetime | None
    period_from: date
    period_to: date
    period: dict[str, int | None]


class Error(Schema):
    detail: str


class Invalid(Schema):
    detail: list[dict]


def _role(request, roles) -> None:
    if not has_role(request.auth.user, *roles):
        raise HttpError(403, _("Tu rol no permite ver estas estadísticas."))


def _period(start: str | None, end: str | None, *, default: str):
    """(period, None) or (None, the 422 body)."""
    if not start and not end:
        return selectors.period_preset(default), None
    field = "from"
    try:
        if not start:
            raise PeriodError(_("Falta la fecha inicial (from=AAAA-MM-DD)."))
        first = selectors.parse_day(start, "from")
        field = "to"
        last = selectors.parse_day(end, "to") if end else timezone.localdate()
        return selectors.period_make(first, last), None
    except PeriodError as error:
        return None, {
            "detail": [{"type": "value_error", "loc": ["query", field], "msg": str(error)}]
        }


@router.get("/daily", response={200: list[DayOut], 403: Error, 422: Invalid})
def stats_daily(
    request,
    start: str | None = Query(None, alias="from"),
    end: str | None = Query(None, alias="to"),
):
    """One row per Guayaquil day from `from` to `to` (both included; default: the last 30
    days). Definitions as on the analytics page."""
    _role(request, MARKETING)
    period, invalid = _period(start, end, default="30")
    if invalid:
        return Status(422, invalid)
    rows = selectors.daily_metrics(period)
    return [{k: v for k, v in row.items() if k != "sent_read"} for row in rows]


@router.get("/summary", response={200: SummaryOut, 403: Error, 422: Invalid})
def stats_summary(
    request,
    start: str | None = Query(None, alias="from"),
    end: str | None = Query(None, alias="to"),
):
    """The panel as JSON (today so far against yesterday at the same time, waiting
    conversations) and the totals of a period (default: today)."""
    _role(request, EVERYONE)
    period, invalid = _period(start, end, default="today")
    if invalid:
        return Status(422, invalid)
    today = selectors.today_figures()
    waiting = selectors.waiting_conversations()
    return {
        "now": today["now"],
        "figures": {
            name: {
                "value": f["value"],
                "yesterday": f["yesterday"],
                "change_pct": f["change"]["pct"],
                "direction": f["change"]["direction"],
            }
            for name, f in today["figures"].items()
        },
        "waiting": waiting["count"],
        "oldest_waiting_since": waiting["oldest"],
        "period_from": period.first,
        "period_to": period.last,
        "period": selectors.summary(period),
    }
