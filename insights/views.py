from django.http import Http404, HttpResponseBadRequest
from django.shortcuts import render
from django.utils.translation import gettext as _

from chatdesk.roles import EVERYONE, MARKETING, SUPPORT, has_role, role_required
from inbox import channels
from inbox.models import Message
from insights import charts, exports, selectors
from insights.selectors import PeriodError

# The exports that can be read on one WhatsApp number.
PER_CHANNEL = ("daily", "hours", "reminders", "campaigns", "agents")


def _channel_or_error(request) -> tuple[str | None, list, str | None]:
    """(the ?channel= key or None for every number, the channels to choose from, an error);
    the choice is offered only when there is more than one, as in the inbox list."""
    choices = list(channels.channels_for(request.user))
    key = request.GET.get("channel") or None
    if key is not None and key not in {c.key for c in choices}:
        return None, choices, _("Ese número de WhatsApp no existe: se muestran todos.")
    return key, choices, None


def _panel_context(request) -> dict:
    channel, choices, error = _channel_or_error(request)
    return {
        "channel": channel,
        "channel_choices": choices,
        "channel_error": error,
        "today": selectors.today_figures(channel=channel),
        "waiting": selectors.waiting_conversations(channel=channel),
        "sessions": selectors.session_states(),
        "campaigns": selectors.campaigns_overview(),
        "can_open_inbox": has_role(request.user, *SUPPORT),
    }


@role_required(*EVERYONE)
def home(request):
    """The panel; htmx polls the #panel partial every 10 s."""
    template = "insights/home.html"
    if request.htmx:
        template += "#panel"
    return render(request, template, _panel_context(request))


def _period_or_error(request):
    try:
        return *selectors.period_from_params(request.GET), None
    except PeriodError as error:
        period, preset = selectors.period_preset("30"), "30"
        return period, preset, str(error)


def _within_days(request) -> int:
    try:
        return max(1, min(30, int(request.GET.get("n", 7))))
    except ValueError:
        return 7


@role_required(*MARKETING)
def insights_index(request):
    period, preset, error = _period_or_error(request)
    channel, choices, channel_error = _channel_or_error(request)
    section = request.GET.get("section")
    query = exports.period_query(period, channel)
    if section == "agents":
        rows = selectors.agent_stats(period, channel=channel)
        return render(request, "insights/index.html#agents", {"agents": rows, "query": query})
    if section == "behaviour":
        groups = selectors.behaviour_groups()
        return render(request, "insights/index.html#behaviour", {"groups": groups})
    if section:
        raise Http404
    within = _within_days(request)
    daily = selectors.daily_metrics(period, channel=channel)
    grids = selectors.heatmaps(period, channel=channel)
    context = {
        "period": period,
        "preset": preset,
        "error": error or channel_error,
        "channel": channel,
        "channel_choices": choices,
        "query": query,
        "within": within,
        "daily": daily,
        "totals": selectors.totals(daily),
        "trend_chart": charts.trend_chart(daily),
        "heat": charts.heat_tables(grids),
        "best_reply": selectors.best_slots(grids["replies"]),
        "best_read": selectors.best_slots(
            grids["rate"], weights=grids["sent"], min_weight=selectors.min_sample(grids["sent"])
        ),
        "services": (services := selectors.popular_services(period)),
        "services_chart": charts.services_chart(services),
        "funnel": (
            funnel := selectors.reminder_funnel(period, within_days=within, channel=channel)
        ),
        "funnel_chart": charts.funnel_chart(funnel),
        "campaigns": selectors.campaign_comparison(
            period,
            within_days=within,
            sort=request.GET.get("sort", "-launched_at"),
            channel=channel,
        ),
        "sort": request.GET.get("sort", "-launched_at"),
        "campaign_columns": [
            ("title", _("Campaña")),
            ("launched_at", _("Lanzada")),
            ("recipients", _("Destinatarios")),
            ("sent", _("Enviados")),
            ("open_rate", _("Apertura")),
            ("reply_rate", _("Respuesta")),
            ("conversion_rate", _("Conversión")),
            ("opt_outs", _("Bajas")),
            ("failed", _("Fallidos")),
        ],
    }
    return render(request, "insights/index.html", context)


MESSAGE_FILTERS = {
    "direction": Message.Direction.values,
    "author_kind": Message.Author.values,
    "status": Message.Status.values,
}


@role_required(*MARKETING)
def export_csv(request, kind: str):
    export = exports.EXPORTS.get(kind)
    if export is None:
        raise Http404
    try:
        period, _preset = selectors.period_from_params(request.GET)
    except PeriodError as invalid:
        return HttpResponseBadRequest(str(invalid))
    if kind == "messages":
        filters = {}
        for name, allowed in MESSAGE_FILTERS.items():
            value = request.GET.get(name, "")
            if value and value not in allowed:
                return HttpResponseBadRequest(_("Filtro no válido: %(name)s") % {"name": name})
            filters[name] = value
        # Private conversations are the support roles' (admin included), never a marketer's.
        return export(period, conversations=has_role(request.user, *SUPPORT), **filters)
    extra: dict[str, object] = {}
    if kind in PER_CHANNEL:
        channel, _choices, error = _channel_or_error(request)
        if error:
            return HttpResponseBadRequest(error)
        extra["channel"] = channel
    if kind in ("reminders", "campaigns"):
        extra["within_days"] = _within_days(request)
    return export(period, **extra)
