from django.http import Http404, HttpResponseBadRequest
from django.shortcuts import render
from django.utils.translation import gettext as _

from chatdesk.roles import EVERYONE, MARKETING, SUPPORT, has_role, role_required
from inbox.models import Message
from insights import charts, exports, selectors
from insights.selectors import PeriodError


def _panel_context(request) -> dict:
    return {
        "today": selectors.today_figures(),
        "waiting": selectors.waiting_conversations(),
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
    section = request.GET.get("section")
    query = exports.period_query(period)
    if section == "agents":
        rows = selectors.agent_stats(period)
        return render(request, "insights/index.html#agents", {"agents": rows, "query": query})
    if section == "behaviour":
        groups = selectors.behaviour_groups()
        return render(request, "insights/index.html#behaviour", {"groups": groups})
    if section:
        raise Http404
    within = _within_days(request)
    daily = selectors.daily_metrics(period)
    grids = selectors.heatmaps(period)
    context = {
        "period": period,
        "preset": preset,
        "error": error,
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
        "funnel": (funnel := selectors.reminder_funnel(period, within_days=within)),
        "funnel_chart": charts.funnel_chart(funnel),
        "campaigns": selectors.campaign_comparison(
            period, within_days=within, sort=request.GET.get("sort", "-launched_at")
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
    except PeriodError as error:
        return HttpResponseBadRequest(str(error))
    if kind == "messages":
        filters = {}
        for name, allowed in MESSAGE_FILTERS.items():
            value = request.GET.get(name, "")
            if value and value not in allowed:
                return HttpResponseBadRequest(_("Filtro no válido: %(name)s") % {"name": name})
            filters[name] = value
        # Private conversations are the support roles' (admin included), never a marketer's.
        return export(period, conversations=has_role(request.user, *SUPPORT), **filters)
    if kind in ("reminders", "campaigns"):
        return export(period, within_days=_within_days(request))
    return export(period)
