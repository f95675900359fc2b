"""Campaigns: validate, create, schedule, duplicate, retarget (a draft until it launches)."""

from collections.abc import Iterable
from datetime import datetime, time, timedelta

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from customers.models import Segment
from inbox.models import DEFAULT_CHANNEL, Channel
from outbound.campaigns.launch import LAUNCHABLE, launch_enqueue_on_commit
from outbound.meta_templates import template_channel_errors
from outbound.models import Campaign, CampaignVariant, MessageTemplate
from outbound.segments import SegmentFilterError, segment_filters_clean
from outbound.services import TEXT_MAX
from outbound.templating import (
    CAMPAIGN_VARIABLES,
    campaign_values_errors,
    template_validate,
    template_variables,
)

State = Campaign.State

VARIANT_LABELS = ("A", "B", "C")
# Farther than this is a typo (and near year 9999, a date the database cannot hold).
SCHEDULE_AHEAD_MAX = timedelta(days=366)


class CampaignInvalid(ValueError):
    """Bad input for a campaign: `errors` maps a field to a Spanish message."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{key}: {value}" for key, value in errors.items()))
        self.errors = errors


class CampaignStateError(ValueError):
    """The action does not apply to the campaign's current state."""


def _body_errors(body: str, extra: dict, *, field: str) -> dict[str, str]:
    if not body.strip():
        return {field: _("Escriba el mensaje o elija una plantilla.")}
    errors = template_validate(body)
    if errors:
        return {field: " ".join(errors)}
    unfilled = sorted(
        name
        for name in template_variables(body)
        if name in CAMPAIGN_VARIABLES and not str(extra.get(name, "")).strip()
    )
    if "precio_descuento" in template_variables(body) and not str(extra.get("descuento", "")):
        unfilled = sorted({*unfilled, "descuento"})
    if unfilled:
        names = ", ".join(f"{{{name}}}" for name in unfilled)
        return {field: _("Falta el valor de la campaña para: %(names)s") % {"names": names}}
    if len(body) > TEXT_MAX:
        return {field: _("El mensaje supera los %(max)s caracteres.") % {"max": TEXT_MAX}}
    return {}


def channel_errors(channel: str) -> dict[str, str]:
    """The channel a campaign or reminder goes out from: the default one (its row may be
    missing) or an active channel."""
    if channel == DEFAULT_CHANNEL:
        return {}
    if isinstance(channel, str) and Channel.objects.filter(key=channel, active=True).exists():
        return {}
    return {"channel": _("Ese número de WhatsApp no existe o está desactivado.")}


def split_errors(channel: str, split: list[str]) -> dict[str, str]:
    """More numbers to share the audience with: active ones, other than `channel`."""
    if not isinstance(split, list) or not all(isinstance(key, str) for key in split):
        return {"split_channels": _("Indique los números como una lista de claves.")}
    for key in split:
        if key == channel:
            return {"split_channels": _("El número principal ya envía la campaña.")}
        if channel_errors(key):
            return {"split_channels": _("Ese número de WhatsApp no existe o está desactivado.")}
    return {}


def campaign_validate(
    *,
    title: str,
    kind: str,
    body: str,
    extra: dict,
    variants: list[str],
    filters: dict | None,
    window_start: time,
    window_end: time,
    scheduled_at: datetime | None = None,
    channel: str = DEFAULT_CHANNEL,
    split_channels: list[str] | None = None,
) -> tuple[dict, dict[str, str]]:
    """(clean filters, errors). A past `scheduled_at` is fine: it means now."""
    errors: dict[str, str] = channel_errors(channel)
    errors.update(split_errors(channel, split_channels or []))
    if not title.strip():
        errors["title"] = _("Escriba un título.")
    if kind not in Campaign.Kind.values:
        errors["kind"] = _("Tipo de campaña desconocido.")
    unknown = sorted(set(extra) - set(CAMPAIGN_VARIABLES))
    if unknown:
        errors["extra"] = _("Variables de campaña desconocidas: %(names)s") % {
            "names": ", ".join(unknown)
        }
    errors.update(campaign_values_errors(extra))
    errors.update(_body_errors(body, extra, field="body"))
    if len(variants) > len(VARIANT_LABELS) - 1:
        errors["variants"] = _("Como máximo tres variantes del mensaje.")
    for label, text in zip(VARIANT_LABELS[1:], variants, strict=False):
        errors.update(_body_errors(text, extra, field=f"variant_{label.lower()}"))
    if not window_start < window_end:
        errors["window"] = _("La hora de inicio debe ser anterior a la de fin.")
    if scheduled_at is not None and scheduled_at > timezone.now() + SCHEDULE_AHEAD_MAX:
        errors["send_at"] = _("La fecha de envío no puede estar a más de un año.")
    clean: dict = {}
    if filters is not None:
        try:
            clean = segment_filters_clean(filters)
        except SegmentFilterError as error:
            errors["filters"] = "; ".join(f"{k}: {v}" for k, v in error.errors.items())
    return clean, errors


@transaction.atomic
def campaign_create(
    *,
    title: str,
    body: str = "",
    kind: str = Campaign.Kind.MARKETING,
    template: MessageTemplate | None = None,
    extra: dict | None = None,
    segment: Segment | None = None,
    filters: dict | None = None,
    variants: Iterable[str] = (),
    scheduled_at: datetime | None = None,
    window_start: time | None = None,
    window_end: time | None = None,
    best_hour: bool = False,
    created_by=None,
    retarget_of: Campaign | None = None,
    retarget_audience: str = "",
    channel: str = DEFAULT_CHANNEL,
    split_channels: list[str] | None = None,
) -> Campaign:
    """A draft, or a scheduled campaign when `scheduled_at` is given (a time already past
    launches as soon as a worker takes it). Without a body, the template's is copied. It goes
    out from `channel` (a channel's key), its audience split with `split_channels` when given
    (outbound/campaigns/split.py); on a Cloud API number the template must be linked to an
    approved Meta template. Raises CampaignInvalid."""
    if extra is not None and not isinstance(extra, dict):
        raise CampaignInvalid({"extra": _("Las variables deben ser un objeto de textos.")})
    extra = {k: str(v).strip() for k, v in (extra or {}).items() if str(v).strip()}
    body = (body or "").strip() or (template.body if template else "")
    variants = [v.strip() for v in variants if v and v.strip()]
    if segment is not None and filters is None:
        filters = segment.filters
    window_start = window_start or time(9, 0)
    window_end = window_end or time(20, 0)
    clean, errors = campaign_validate(
        title=title,
        kind=kind,
        body=body,
        extra=extra,
        variants=variants,
        filters=filters if retarget_of is None else None,
        window_start=window_start,
        window_end=window_end,
        scheduled_at=scheduled_at,
        channel=channel,
        split_channels=split_channels,
    )
    split = list(dict.fromkeys(split_channels or []))
    meta_errors = []
    if "channel" not in errors and "split_channels" not in errors:
        for key in (channel, *split):
            meta_errors += template_channel_errors(template=template, channel=key)
    if meta_errors:
        errors["template"] = " ".join(dict.fromkeys(meta_errors))
    if errors:
        raise CampaignInvalid(errors)
    campaign = Campaign.objects.create(
        title=title.strip()[:200],
        kind=kind,
        template=template,
        body=body,
        extra=extra,
        segment=segment,
        filters=clean,
        retarget_of=retarget_of,
        retarget_audience=retarget_audience,
        window_start=window_start,
        window_end=window_end,
        best_hour=best_hour,
        channel_id=channel,
        split_channels=split,
        created_by=created_by,
    )
    if variants:
        CampaignVariant.objects.bulk_create(
            CampaignVariant(campaign=campaign, label=label, body=text)
            for label, text in zip(VARIANT_LABELS, [body, *variants], strict=False)
        )
    if scheduled_at is not None:
        campaign_schedule(campaign=campaign, at=scheduled_at)
    return campaign


def campaign_schedule(*, campaign: Campaign, at: datetime) -> None:
    """draft or scheduled -> scheduled at `at`; a due time launches on the next worker."""
    updated = Campaign.objects.filter(pk=campaign.pk, state__in=LAUNCHABLE).update(
        state=State.SCHEDULED, scheduled_at=at
    )
    if not updated:
        raise CampaignStateError(_("Solo se puede programar un borrador o una campaña programada."))
    campaign.state, campaign.scheduled_at = State.SCHEDULED, at
    if at <= timezone.now():
        launch_enqueue_on_commit(campaign.pk)


def campaign_launch_soon(*, campaign: Campaign) -> None:
    """ "Send now": scheduled for now; a worker launches it (materialising a large audience
    takes longer than a web request should)."""
    campaign_schedule(campaign=campaign, at=timezone.now())


def campaign_duplicate(*, campaign: Campaign, created_by=None) -> Campaign:
    """A draft with the same message, variants, audience and window."""
    variants = [v.body for v in campaign.variants.all() if v.label != "A"]
    title = _("Copia de %(title)s") % {"title": campaign.title}
    copy = campaign_create(
        title=title[:200],
        body=campaign.body,
        kind=campaign.kind,
        template=campaign.template,
        extra=campaign.extra,
        segment=campaign.segment,
        filters=campaign.filters,
        variants=variants,
        window_start=campaign.window_start,
        window_end=campaign.window_end,
        best_hour=campaign.best_hour,
        created_by=created_by,
        retarget_of=campaign.retarget_of,
        retarget_audience=campaign.retarget_audience,
        channel=campaign.channel_id,  # type: ignore[arg-type]  # FK default: never None
        split_channels=campaign.split_channels,
    )
    return copy


def campaign_retarget(
    *, campaign: Campaign, audience: str, body: str, title: str = "", created_by=None
) -> Campaign:
    """A draft follow-up to those of `campaign` who did not read (their message reached the
    phone but was not read) or did not reply (reached, and no message from them after it).
    The audience is taken when the follow-up launches, so who reads meanwhile drops out."""
    if audience not in Campaign.Audience.values:
        raise CampaignInvalid({"audience": _("Elija a quién reenviar.")})
    label = Campaign.Audience(audience).label
    default_title = _("%(title)s · seguimiento (%(who)s)") % {"title": campaign.title, "who": label}
    return campaign_create(
        title=(title or default_title)[:200],
        body=body,
        kind=campaign.kind,
        extra=campaign.extra,
        window_start=campaign.window_start,
        window_end=campaign.window_end,
        best_hour=campaign.best_hour,
        created_by=created_by,
        retarget_of=campaign,
        retarget_audience=audience,
        channel=campaign.channel_id,  # type: ignore[arg-type]  # FK default: never None
        split_channels=campaign.split_channels,
    )
