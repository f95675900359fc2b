"""Campaigns over the API (registered in chatdesk/api.py): create, launch, pause, resume,
cancel, read the funnel; and the size of an audience. Marketer or admin tokens only."""

from datetime import datetime, time

from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.translation import gettext as _
from ninja import Router, Schema, Status
from ninja.errors import HttpError

from chatdesk.roles import MARKETING, has_role
from customers.models import Segment
from inbox.models import DEFAULT_CHANNEL
from outbound.campaigns.audience import MARKETING_KINDS
from outbound.campaigns.control import campaign_cancel, campaign_pause, campaign_resume
from outbound.campaigns.create import (
    CampaignInvalid,
    CampaignStateError,
    campaign_create,
    campaign_launch_soon,
)
from outbound.campaigns.results import campaign_funnel, campaign_waiting
from outbound.models import Campaign, MessageTemplate
from outbound.segments import SegmentFilterError, segment_count

router = Router(tags=["campaigns"])

LIST_FILTERS = ("services", "tags", "cities", "provinces")


class CampaignIn(Schema):
    title: str
    kind: str = Campaign.Kind.MARKETING
    text: str = ""
    template_id: int | None = None
    variables: dict[str, str] = {}
    segment_id: int | None = None
    filters: dict | None = None
    variants: list[str] = []
    # Local (Guayaquil) time when it has no offset; none and send_now false: a draft.
    send_at: datetime | None = None
    send_now: bool = False
    window_start: time | None = None
    window_end: time | None = None
    best_hour: bool = False
    # The key of the channel (WhatsApp number) it goes out from; the default one if omitted.
    channel: str = DEFAULT_CHANNEL
    # More numbers that share the audience with `channel` (each customer gets it from one).
    split_channels: list[str] = []


class WaitingOut(Schema):
    code: str  # window, best_hour, rate_limit or meta_limit
    until: datetime
    text: str


class CampaignOut(Schema):
    id: int
    title: str
    kind: str
    state: str
    channel: str
    split_channels: list[str]
    scheduled_at: datetime | None
    launched_at: datetime | None
    completed_at: datetime | None
    # Why a `failed` campaign could not be launched (Spanish), else "".
    failure_reason: str
    recipients_total: int
    opted_out_excluded: int
    funnel: dict[str, float]
    # A running campaign that sends nothing now: why (in Spanish) and when it starts again.
    waiting_reason: WaitingOut | None = None


class SegmentCountOut(Schema):
    count: int
    opted_out_excluded: int


class Error(Schema):
    detail: str


class Invalid(Schema):
    detail: list[dict]


def role_check(request) -> None:
    if not has_role(request.auth.user, *MARKETING):
        raise HttpError(403, _("Tu rol no permite gestionar campañas."))


def invalid(errors: dict[str, str]) -> Status:
    detail = [
        {"type": "value_error", "loc": ["body", "payload", field], "msg": message}
        for field, message in errors.items()
    ]
    return Status(422, {"detail": detail})


def campaign_out(campaign: Campaign) -> dict:
    campaign.refresh_from_db()
    funnel = campaign_funnel(campaign=campaign)
    fields = (
        "id",
        "title",
        "kind",
        "state",
        "scheduled_at",
        "launched_at",
        "completed_at",
        "failure_reason",
    )
    return {
        **{name: getattr(campaign, name) for name in fields},
        "channel": campaign.channel_id,
        "split_channels": campaign.split_channels,
        "recipients_total": campaign.recipients_total,
        "opted_out_excluded": campaign.opted_out_excluded,
        "funnel": {k: v for k, v in funnel.items() if k != "first_pending"},
        "waiting_reason": (
            (w := campaign_waiting(campaign=campaign, open_recipients=funnel)) and w.as_dict()
        ),
    }


def _aware(moment: datetime) -> datetime:
    return timezone.make_aware(moment) if timezone.is_naive(moment) else moment


@router.post("/campaigns", response={201: CampaignOut, 403: Error, 422: Invalid})
def campaign_create_api(request, payload: CampaignIn):
    """A campaign from a template or a text, to a saved segment or to filters (see
    outbound/segments.py for their keys), as a draft, scheduled (`send_at`) or sent now."""
    role_check(request)
    template = segment = None
    if payload.template_id is not None:
        template = MessageTemplate.objects.filter(pk=payload.template_id, archived=False).first()
        if template is None:
            return invalid({"template_id": _("Esa plantilla no existe.")})
    if payload.segment_id is not None:
        segment = Segment.objects.filter(pk=payload.segment_id).first()
        if segment is None:
            return invalid({"segment_id": _("Ese segmento no existe.")})
    if segment is None and payload.filters is None:
        return invalid({"filters": _("Indique un segmento guardado o unos filtros.")})
    if payload.send_now and payload.send_at is not None:
        return invalid({"send_at": _("Elija send_now o send_at, no ambos.")})
    for name in ("window_start", "window_end"):
        if getattr(payload, name) is not None and getattr(payload, name).tzinfo is not None:
            # A window is a time of day in Ecuador; an offset would be compared with none.
            return invalid({name: _("Indique la hora local de Ecuador, sin zona horaria.")})
    scheduled_at = timezone.now() if payload.send_now else payload.send_at
    try:
        campaign = campaign_create(
            title=payload.title,
            body=payload.text,
            kind=payload.kind,
            template=template,
            extra=payload.variables,
            segment=segment,
            filters=payload.filters,
            variants=payload.variants,
            scheduled_at=_aware(scheduled_at) if scheduled_at else None,
            window_start=payload.window_start,
            window_end=payload.window_end,
            best_hour=payload.best_hour,
            created_by=request.auth.user,
            channel=payload.channel,
            split_channels=payload.split_channels,
        )
    except CampaignInvalid as error:
        return invalid(error.errors)
    return Status(201, campaign_out(campaign))


@router.get("/campaigns/{campaign_id}", response={200: CampaignOut, 403: Error, 404: Error})
def campaign_detail_api(request, campaign_id: int):
    role_check(request)
    return campaign_out(get_object_or_404(Campaign, pk=campaign_id))


ACTIONS = {
    "launch": lambda campaign: campaign_launch_soon(campaign=campaign),
    "pause": lambda campaign: campaign_pause(campaign=campaign),
    "resume": lambda campaign: campaign_resume(campaign=campaign),
    "cancel": lambda campaign: campaign_cancel(campaign=campaign),
}


@router.post(
    "/campaigns/{campaign_id}/{action}",
    response={200: CampaignOut, 403: Error, 404: Error, 409: Error},
)
def campaign_action_api(request, campaign_id: int, action: str):
    """launch (a worker starts it within seconds), pause, resume or cancel. 409 when the
    campaign's state does not allow it."""
    role_check(request)
    if action not in ACTIONS:
        raise HttpError(404, _("Acción desconocida."))
    campaign = get_object_or_404(Campaign, pk=campaign_id)
    try:
        ACTIONS[action](campaign)
    except CampaignStateError as error:
        return Status(409, {"detail": str(error)})
    return campaign_out(campaign)


@router.get("/segments/count", response={200: SegmentCountOut, 403: Error, 422: Invalid})
def segment_count_api(request, kind: str = Campaign.Kind.MARKETING):
    """How many customers the filters (query parameters, lists repeated:
    `?state=active&services=1&services=2`) reach, and how many opted-out were left out (for a
    marketing or event `kind`)."""
    role_check(request)
    filters = {}
    for key in request.GET:
        if key == "kind":
            continue
        values = request.GET.getlist(key)
        filters[key] = values if key in LIST_FILTERS else values[-1]
    try:
        count, excluded = segment_count(filters, marketing=kind in MARKETING_KINDS)
    except SegmentFilterError as error:
        return invalid(error.errors)
    return {"count": count, "opted_out_excluded": excluded}
