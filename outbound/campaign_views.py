"""Campaign pages (admins and marketers): the list ("Campañas activas"), the new-campaign
form with the audience's live count, and the detail page: live progress (htmx polling every
2 s), pause / resume / cancel, results (funnel, failure reasons, per variant, per recipient),
CSV export, retarget and duplicate."""

from datetime import datetime, time

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.db import connection, transaction
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from chatdesk.csvexport import csv_response
from chatdesk.roles import MARKETING, role_required
from customers.models import Segment
from inbox import channels
from inbox.models import DEFAULT_CHANNEL
from outbound.campaigns.audience import MARKETING_KINDS
from outbound.campaigns.control import campaign_cancel, campaign_pause, campaign_resume
from outbound.campaigns.create import (
    CampaignInvalid,
    CampaignStateError,
    campaign_create,
    campaign_duplicate,
    campaign_launch_soon,
    campaign_retarget,
)
from outbound.campaigns.results import (
    campaign_failure_reasons,
    campaign_open_counts,
    campaign_recipients,
    campaign_results,
    campaign_waiting,
)
from outbound.forms import channel_choices, channel_field_setup
from outbound.models import Campaign, MessageTemplate
from outbound.segments import SegmentFilterError, segment_count, segment_presets
from outbound.templating import CAMPAIGN_VARIABLES

RECIPIENTS_PAGE = 50
LIVE_STATES = (Campaign.State.SCHEDULED, Campaign.State.RUNNING, Campaign.State.PAUSED)
BADGES = {
    "draft": "📝",
    "scheduled": "📅",
    "running": "✅",
    "paused": "⏸️",
    "completed": "🏁",
    "cancelled": "⛔",
    "failed": "⚠️",
}


class CampaignForm(forms.Form):
    title = forms.CharField(label=gettext_lazy("Título"), max_length=200)
    kind = forms.ChoiceField(label=gettext_lazy("Tipo"), choices=Campaign.Kind.choices)
    template = forms.ModelChoiceField(
        label=gettext_lazy("Plantilla"),
        queryset=MessageTemplate.objects.filter(archived=False),
        required=False,
        empty_label=gettext_lazy("— escribir el mensaje —"),
    )
    body = forms.CharField(
        label=gettext_lazy("Mensaje"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 6}),
        help_text=gettext_lazy("Vacío: el texto de la plantilla."),
    )
    variant_b = forms.CharField(
        label=gettext_lazy("Variante B (opcional)"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    variant_c = forms.CharField(
        label=gettext_lazy("Variante C (opcional)"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    nuevo_servicio = forms.CharField(label="{nuevo_servicio}", required=False, max_length=120)
    caracteristicas = forms.CharField(label="{caracteristicas}", required=False, max_length=300)
    tema = forms.CharField(label="{tema}", required=False, max_length=120)
    descuento = forms.CharField(label="{descuento}", required=False, max_length=10)
    audience = forms.ChoiceField(label=gettext_lazy("Destinatarios"))
    when = forms.ChoiceField(
        label=gettext_lazy("Programar"),
        choices=[
            ("now", gettext_lazy("Inmediato")),
            ("later", gettext_lazy("Fecha y hora")),
            ("draft", gettext_lazy("Guardar como borrador")),
        ],
        initial="now",
        widget=forms.RadioSelect,
    )
    send_at = forms.DateTimeField(
        label=gettext_lazy("Enviar el (hora de Ecuador)"),
        required=False,
        input_formats=["%Y-%m-%dT%H:%M"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )
    window_start = forms.TimeField(
        label=gettext_lazy("Enviar desde"),
        initial=time(9, 0),
        widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
    )
    window_end = forms.TimeField(
        label=gettext_lazy("hasta"),
        initial=time(20, 0),
        widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
    )
    best_hour = forms.BooleanField(
        label=gettext_lazy("Enviar a la mejor hora de cada cliente"), required=False
    )
    channel = forms.ChoiceField(label=gettext_lazy("Enviar desde el número"))
    split_channels = forms.MultipleChoiceField(
        label=gettext_lazy("Repartir la audiencia también con"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=gettext_lazy(
            "Cada cliente lo recibe de un solo número: del que ya le escribe, o repartidos por "
            "igual, cada número a su ritmo y dentro de su límite de Meta."
        ),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["audience"].choices = audience_choices()
        channel_field_setup(self)
        if "channel" in self.fields:
            self.fields["split_channels"].choices = channel_choices()
            self.fields["channel"].widget.attrs["data-hides-choice"] = "split_channels"
        else:
            del self.fields["split_channels"]

    def clean(self):
        data = super().clean()
        if data.get("when") == "later":
            if not data.get("send_at"):
                self.add_error("send_at", _("Indique la fecha y hora de envío."))
            elif data["send_at"] <= timezone.now():
                self.add_error("send_at", _("Esa fecha ya pasó."))
        return data


def audience_choices() -> list[tuple[str, str] | tuple[str, list[tuple[str, str]]]]:
    presets = [(f"preset:{key}", str(name)) for key, (name, _f) in segment_presets().items()]
    saved = [(f"segment:{s.pk}", s.name) for s in Segment.objects.all()]
    choices = [(_("Atajos"), presets)]
    if saved:
        choices.append((_("Segmentos guardados"), saved))
    return [("preset:all", _("Todos los clientes")), *choices]


def audience_resolve(value: str) -> tuple[Segment | None, dict]:
    kind, _sep, key = value.partition(":")
    if kind == "segment" and key.isdigit():
        segment = Segment.objects.filter(pk=int(key)).first()
        if segment is not None:
            return segment, segment.filters
    if kind == "preset" and key in segment_presets():
        return None, segment_presets()[key][1]
    return None, {}


def _campaign(campaign_id: int) -> Campaign:
    return get_object_or_404(
        Campaign.objects.select_related("segment", "created_by"), pk=campaign_id
    )


def _channel_name(campaign: Campaign) -> str:
    """The numbers it goes out from, named only on installs with several."""
    labels = channels.labels()
    names = [labels[key][0] for key in campaign.channel_keys if key in labels]
    return ", ".join(names)


# --- list -------------------------------------------------------------------------------
@role_required(*MARKETING)
def campaign_list(request):
    campaigns = Campaign.objects.select_related("created_by").order_by("-created_at", "-id")
    state = request.GET.get("state", "")
    if state in Campaign.State.values:
        campaigns = campaigns.filter(state=state)
    page = Paginator(campaigns, 30).get_page(request.GET.get("page"))
    still_open = campaign_open_counts(campaign_ids=[c.pk for c in page])
    now = timezone.now()
    closed = {"open": 0, "first_pending": None, "queued": 0}
    for campaign in page:
        counts = still_open.get(campaign.pk, closed)
        campaign.done = campaign.recipients_total - counts["open"]
        campaign.waiting = campaign_waiting(campaign=campaign, now=now, open_recipients=counts)
    return render(
        request,
        "outbound/campaign_list.html",
        {"page": page, "badges": BADGES, "states": Campaign.State.choices, "state": state},
    )


# --- new ------------------------------------------------------------------------------------
@role_required(*MARKETING)
def campaign_new(request):
    form = CampaignForm(request.POST or None, initial={"kind": "marketing"})
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        segment, filters = audience_resolve(data["audience"])
        scheduled_at = {"now": timezone.now(), "later": data.get("send_at")}.get(data["when"])
        try:
            campaign = campaign_create(
                title=data["title"],
                kind=data["kind"],
                template=data["template"],
                body=data["body"],
                extra={name: data.get(name, "") for name in CAMPAIGN_VARIABLES},
                segment=segment,
                filters=filters,
                variants=[data["variant_b"], data["variant_c"]],
                scheduled_at=scheduled_at,
                window_start=data["window_start"],
                window_end=data["window_end"],
                best_hour=data["best_hour"],
                created_by=request.user,
                channel=data.get("channel") or DEFAULT_CHANNEL,
                split_channels=[
                    key for key in data.get("split_channels") or [] if key != data.get("channel")
                ],
            )
        except CampaignInvalid as error:
            for field, message in error.errors.items():
                fields = ("variant_b", "variant_c", "body", "send_at", "descuento")
                fields += ("channel", "split_channels") if "channel" in form.fields else ()
                form.add_error(field if field in fields else None, message)
        else:
            messages.success(request, _("Campaña «%(title)s» creada.") % {"title": campaign.title})
            return redirect("outbound:campaign_detail", campaign_id=campaign.pk)
    return render(
        request,
        "outbound/campaign_form.html",
        {"form": form, "live": _audience_live(form["audience"].value() or "preset:all", form)},
    )


def _audience_live(value: str, form=None, kind: str = "marketing") -> dict:
    if form is not None:
        kind = form["kind"].value() or kind
    segment, filters = audience_resolve(value)
    try:
        count, excluded = segment_count(filters, marketing=kind in MARKETING_KINDS)
    except SegmentFilterError:
        return {"invalid": True}
    return {"count": count, "excluded": excluded, "segment": segment}


@role_required(*MARKETING)
@require_POST
def campaign_audience_count(request):
    live = _audience_live(
        request.POST.get("audience", "preset:all"), kind=request.POST.get("kind", "marketing")
    )
    return render(request, "outbound/campaign_form.html#audience-live", {"live": live})


# --- detail ---------------------------------------------------------------------------------
def _days(request, name: str, default: int) -> int:
    try:
        return min(max(int(request.GET.get(name, default)), 1), 90)
    except ValueError:
        return default


def _page_context(request, campaign: Campaign) -> dict:
    """Everything the live part of the page shows, read in one snapshot of the database (a
    repeatable-read transaction on PostgreSQL), so the bar, the results and the recipients
    agree even while the workers write."""
    reply_days, renewal_days = _days(request, "reply_days", 3), _days(request, "renewal_days", 7)
    outermost = not connection.in_atomic_block  # a test's transaction already has its snapshot
    with transaction.atomic():
        if connection.vendor == "postgresql" and outermost:
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        campaign.refresh_from_db()
        results = campaign_results(
            campaign=campaign, reply_days=reply_days, renewal_days=renewal_days
        )
        recipients = campaign_recipients(
            campaign=campaign, reply_days=reply_days, renewal_days=renewal_days
        )
        funnel = results["funnel"]
        # The recipients count is the one just made: no second COUNT(*) that could differ.
        paginator = Paginator(recipients, RECIPIENTS_PAGE)
        paginator.count = funnel["total"]
        page = paginator.get_page(request.GET.get("page"))
        page.object_list = list(page.object_list)
        reasons = campaign_failure_reasons(campaign=campaign)
        waiting = campaign_waiting(campaign=campaign, open_recipients=funnel)
    return {
        "campaign": campaign,
        "badges": BADGES,
        "funnel": funnel,
        "variants": results["variants"],
        "numbers": results["numbers"],
        "reasons": reasons,
        "page": page,
        "reply_days": reply_days,
        "renewal_days": renewal_days,
        "live": campaign.state in LIVE_STATES,
        "waiting": waiting,
        "channel_name": _channel_name(campaign),
        "query": request.GET.urlencode(),
    }


@role_required(*MARKETING)
def campaign_detail(request, campaign_id: int):
    campaign = _campaign(campaign_id)
    context = _page_context(request, campaign)
    context["audiences"] = Campaign.Audience.choices
    return render(request, "outbound/campaign_detail.html", context)


@role_required(*MARKETING)
def campaign_progress(request, campaign_id: int):
    """The page's live part, polled every 2 s while the campaign is live: the progress section
    (swapped in place) and the results with the recipients (swapped out of band), rendered
    from the same counts so they never disagree."""
    campaign = _campaign(campaign_id)
    context = _page_context(request, campaign)
    progress = render_to_string("outbound/campaign_detail.html#progress", context, request)
    results = render_to_string(
        "outbound/campaign_detail.html#results", {**context, "oob": True}, request
    )
    return HttpResponse(progress + results)


ACTIONS = {
    "launch": (campaign_launch_soon, gettext_lazy("La campaña empieza en unos segundos.")),
    "pause": (campaign_pause, gettext_lazy("Campaña pausada.")),
    "resume": (campaign_resume, gettext_lazy("Campaña reanudada.")),
    "cancel": (campaign_cancel, gettext_lazy("Campaña cancelada.")),
}


@role_required(*MARKETING)
@require_POST
def campaign_action(request, campaign_id: int, action: str):
    campaign = _campaign(campaign_id)
    if action not in ACTIONS:
        return redirect("outbound:campaign_detail", campaign_id=campaign.pk)
    service, done = ACTIONS[action]
    try:
        service(campaign=campaign)
    except CampaignStateError as error:
        messages.error(request, str(error))
    else:
        messages.success(request, done)
    return redirect("outbound:campaign_detail", campaign_id=campaign.pk)


@role_required(*MARKETING)
@require_POST
def campaign_duplicate_view(request, campaign_id: int):
    copy = campaign_duplicate(campaign=_campaign(campaign_id), created_by=request.user)
    messages.success(request, _("Copia creada como borrador: «%(title)s».") % {"title": copy.title})
    return redirect("outbound:campaign_detail", campaign_id=copy.pk)


@role_required(*MARKETING)
@require_POST
def campaign_retarget_view(request, campaign_id: int):
    campaign = _campaign(campaign_id)
    try:
        follow_up = campaign_retarget(
            campaign=campaign,
            audience=request.POST.get("audience", ""),
            body=request.POST.get("body", ""),
            created_by=request.user,
        )
    except CampaignInvalid as error:
        for message in error.errors.values():
            messages.error(request, message)
        return redirect("outbound:campaign_detail", campaign_id=campaign.pk)
    messages.success(
        request, _("Seguimiento creado como borrador: «%(title)s».") % {"title": follow_up.title}
    )
    return redirect("outbound:campaign_detail", campaign_id=follow_up.pk)


# --- export ---------------------------------------------------------------------------------
def _when(moment: datetime | None) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M:%S") if moment else ""


@role_required(*MARKETING)
def campaign_export(request, campaign_id: int):
    campaign = _campaign(campaign_id)
    rows = campaign_recipients(
        campaign=campaign,
        reply_days=_days(request, "reply_days", 3),
        renewal_days=_days(request, "renewal_days", 7),
    )
    header = [
        _("Teléfono"),
        _("Nombre"),
        _("Variante"),
        _("Destinatario"),
        _("Motivo"),
        _("Estado del mensaje"),
        _("Enviado"),
        _("Entregado"),
        _("Leído"),
        _("Motivo del fallo"),
        _("Respondió"),
        _("Renovó"),
        _("Mensaje"),
    ]

    def line(r) -> tuple:
        message = r.message
        return (
            r.customer.phone,
            r.customer.name,
            r.variant.label if r.variant else "",
            r.get_state_display(),
            r.skip_reason,
            message.get_status_display() if message else "",
            _when(message.sent_at if message else None),
            _when(message.delivered_at if message else None),
            _when(message.read_at if message else None),
            message.failure_reason if message else "",
            _("sí") if r.has_reply else "",
            _("sí") if r.has_renewal else "",
            r.body,
        )

    lines = (line(r) for r in rows.iterator(chunk_size=1000))
    return csv_response(f"campana-{campaign.pk}.csv", header, lines)
