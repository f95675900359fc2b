"""Meta's message templates on Cloud API numbers: the sync, the link from chatdesk's templates,
what goes out as a template, and Meta's marketing cap.

Outside the 24-hour window a Cloud API number may only send a template Meta approved. A
chatdesk MessageTemplate names the Meta template it goes out as (name, language) and which of
its {variables} fill the Meta body's {{1}}, {{2}}... in order; the approval state is per
channel (each channel's WhatsApp Business Account lists its own), synced from Meta by an
admin's button and a periodic actor, and kept current by the message_template_status_update
webhook (inbox/intake.py calls `meta_template_status_apply`).

What a message sends is stored beside it (MetaSend) the first time it is built: an agent's
template reply writes it with the row; a campaign's or a reminder's message has it derived from
its campaign or reminder rule when the pipeline sends it. A retry sends exactly the same.

Marketing cap (Meta's 131049, "held for healthy ecosystem engagement"): it arrives as a failed
status webhook, or as the send's answer. The capped row fails ("Limitado por Meta"), and a NEW
row, linked to it, is scheduled after a growing delay (CAP_RETRY_DELAYS); the scheduler's sweep
queues it when due (outbound/sweeper.py). After META_MARKETING_RETRY_DAYS from the first cap,
no more tries. A campaign's recipient (or a reminder) follows the new row.
"""

import logging
import re
from datetime import datetime, timedelta

import dramatiq
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import formats, timezone
from django.utils.translation import gettext as _
from dramatiq_crontab import interval

from customers.models import Customer
from inbox import channels
from inbox.events import message_created_publish, message_status_publish
from inbox.models import Channel, Conversation, Message
from outbound.models import (
    CampaignRecipient,
    MessageTemplate,
    MetaSend,
    MetaTemplate,
    ReminderSent,
)
from outbound.templating import KNOWN_VARIABLES, TemplateError, template_render
from provider.cloudapi import codes
from provider.cloudapi.api import Template
from provider.errors import ProviderError
from provider.records import TemplateStatusEvent
from provider.sending import TemplateSend

log = logging.getLogger(__name__)

HEADER_MEDIA = ("image", "video", "document")
# Delays between a cap and the next try: 1 h, 6 h, then a day each.
CAP_RETRY_DELAYS = (timedelta(hours=1), timedelta(hours=6), timedelta(hours=24))
SYNC_EVERY_SECONDS = 6 * 3600
_PARAM = re.compile(r"\{\{\s*(\w+)\s*\}\}")


# --- Meta's templates: sync and status ---------------------------------------------------------


def _body_text(template: Template) -> str:
    body = next((c for c in template.components if str(c.get("type", "")).upper() == "BODY"), {})
    return str(body.get("text") or "")


def meta_templates_sync(*, channel: Channel, client=None) -> int:
    """Meta's list for the channel's WABA, stored: new templates added, known ones updated,
    those Meta no longer lists marked deleted. Raises ProviderError. Answers how many."""
    if not channel.is_cloudapi or not channel.waba_id:
        raise ProviderError(
            f"channel {channel.key} has no WABA",
            permanent=True,
            reason=_("El canal no es de la API de WhatsApp Cloud o no tiene su cuenta (WABA)."),
        )
    client = client or channels.client_for(channel)
    listed = client.templates_list(channel.waba_id)
    now = timezone.now()
    seen = []
    with transaction.atomic():
        for template in listed:
            row, _created = MetaTemplate.objects.update_or_create(
                channel=channel,
                name=template.name[:512],
                language=template.language[:16],
                defaults={
                    "template_id": template.template_id[:64],
                    "status": template.status[:20],
                    "category": template.category[:20],
                    "components": list(template.components),
                    "body": _body_text(template),
                    "params_count": template.body_params_count(),
                    "header_format": template.header_format()[:10],
                    "synced_at": now,
                },
            )
            seen.append(row.pk)
        MetaTemplate.objects.filter(channel=channel).exclude(pk__in=seen).update(
            status=MetaTemplate.Status.DELETED, synced_at=now
        )
    return len(seen)


def meta_templates_sync_all() -> dict[str, str]:
    """Every active Cloud API channel with a WABA: {channel key: "n" or the reason it failed}."""
    results = {}
    for channel in Channel.objects.filter(provider=Channel.Provider.CLOUDAPI, active=True).exclude(
        waba_id=""
    ):
        try:
            results[channel.key] = str(meta_templates_sync(channel=channel))
        except ProviderError as error:
            log.warning("template sync of %s failed: %s", channel.key, error)
            results[channel.key] = error.reason
    return results


@interval(seconds=SYNC_EVERY_SECONDS)
@dramatiq.actor(actor_name="outbound_meta_templates_sync", max_retries=0)
def meta_templates_sync_tick() -> None:
    meta_templates_sync_all()


def meta_template_status_apply(event: TemplateStatusEvent) -> str:
    """Meta's review of a template (the webhook), on every channel of that WABA: a note for the
    stored event. A template not synced yet waits for the next sync (its body is not known)."""
    channel_ids = list(
        Channel.objects.filter(
            provider=Channel.Provider.CLOUDAPI, waba_id=event.waba_id
        ).values_list("pk", flat=True)
    )
    if not channel_ids:
        return f"plantilla {event.name}: ninguna cuenta {event.waba_id[:40]} configurada"
    rows = MetaTemplate.objects.filter(channel_id__in=channel_ids)
    if event.template_id:
        rows = rows.filter(template_id=event.template_id)
    else:
        rows = rows.filter(name=event.name, language=event.language)
    reason = "" if event.reason.upper() == "NONE" else event.reason
    updated = rows.update(
        status=event.status.upper()[:20], reason=reason[:300], synced_at=timezone.now()
    )
    if not updated:
        return f"plantilla {event.name} ({event.status}) aún no sincronizada"
    return ""


# --- the link from a chatdesk template ---------------------------------------------------------


def meta_text(body: str, params) -> str:
    """Meta's body with its {{n}} filled, as the customer reads it."""
    values = [str(p) for p in params]

    def fill(match: re.Match) -> str:
        name = match.group(1)
        if name.isdigit() and 1 <= int(name) <= len(values):
            return values[int(name) - 1]
        return match.group(0)

    return _PARAM.sub(fill, body)


def meta_template_for(*, template: MessageTemplate, channel_id: int) -> MetaTemplate | None:
    if not template.meta_name:
        return None
    return MetaTemplate.objects.filter(
        channel_id=channel_id, name=template.meta_name, language=template.meta_language
    ).first()


def meta_link_errors(
    *, name: str, language: str, params: list[str], header_url: str
) -> dict[str, str]:
    """The link as an admin types it: {field: Spanish message}."""
    errors = {}
    if not name:
        if params or header_url:
            errors["meta_name"] = _("Indique el nombre de la plantilla de Meta.")
        return errors
    if not language:
        errors["meta_language"] = _("Indique el idioma de la plantilla de Meta (p. ej. es).")
    unknown = [p for p in params if p not in KNOWN_VARIABLES]
    if unknown:
        errors["meta_params"] = _("Variables desconocidas: %(names)s") % {
            "names": ", ".join(f"{{{p}}}" for p in unknown)
        }
    return errors


def meta_links(template: MessageTemplate) -> list[dict]:
    """For the edit page: per Cloud API channel, the Meta template it maps to, its state, and
    what does not fit (parameters, header)."""
    if not template.meta_name:
        return []
    out = []
    cloud = Channel.objects.filter(provider=Channel.Provider.CLOUDAPI).order_by("name")
    for channel in cloud:
        meta = meta_template_for(template=template, channel_id=channel.pk)
        out.append(
            {
                "channel": channel,
                "meta": meta,
                "problems": _fit_problems(template, meta) if meta else [],
            }
        )
    return out


def _fit_problems(template: MessageTemplate, meta: MetaTemplate) -> list[str]:
    problems = []
    if len(template.meta_params) != meta.params_count:
        problems.append(
            _("La plantilla de Meta tiene %(n)s variables y aquí se indican %(m)s.")
            % {"n": meta.params_count, "m": len(template.meta_params)}
        )
    if meta.header_format in HEADER_MEDIA and not template.meta_header_url:
        problems.append(
            _("La plantilla de Meta lleva un archivo en el encabezado: indique su URL.")
        )
    return problems


def template_channel_errors(*, template: MessageTemplate | None, channel: str) -> list[str]:
    """Why `template` cannot go out on `channel` (a channel's key) outside the 24-hour window:
    [] on a WaSender number, or when it is linked to an approved Meta template that fits."""
    row = channels.channel_cached(channel)
    if not row.is_cloudapi:
        return []
    if template is None:
        return [
            _(
                "En un número de la API de WhatsApp Cloud solo se puede enviar una plantilla "
                "aprobada por Meta: elija una plantilla vinculada a una de Meta."
            )
        ]
    if not template.meta_name:
        return [
            _("La plantilla «%(name)s» no está vinculada a ninguna plantilla de Meta.")
            % {"name": template.name}
        ]
    meta = meta_template_for(template=template, channel_id=row.pk)
    if meta is None:
        return [
            _(
                "La plantilla de Meta «%(meta)s» (%(language)s) no figura en el número "
                "%(channel)s: sincronice las plantillas de Meta."
            )
            % {"meta": template.meta_name, "language": template.meta_language, "channel": row.name}
        ]
    if not meta.approved:
        return [
            _("La plantilla de Meta «%(meta)s» no está aprobada (estado: %(status)s).")
            % {"meta": meta.name, "status": meta.status_label()}
        ]
    return _fit_problems(template, meta)


# --- what a message sends ----------------------------------------------------------------------


def _params(
    template: MessageTemplate, *, customer: Customer, extra: dict | None, service
) -> list[str]:
    """chatdesk's variables for one customer, in the Meta body's order. Raises TemplateError."""
    return [
        template_render("{" + name + "}", customer=customer, extra=extra, service=service)
        for name in template.meta_params
    ]


def _send_spec(template: MessageTemplate, params: list[str], meta: MetaTemplate) -> dict:
    header = meta.header_format if meta.header_format in HEADER_MEDIA else ""
    return {
        "name": template.meta_name,
        "language": template.meta_language,
        "body_params": params,
        "header_kind": header if template.meta_header_url else "",
        "header_ref": template.meta_header_url if header else "",
    }


def composer_choices(*, conversation: Conversation) -> list[dict]:
    """The approved, linked templates an agent may send in this conversation, each with the
    text the customer would read (or why it cannot be filled for them)."""
    channel = channels.channel_cached(conversation.channel_id)  # type: ignore[arg-type]  # FK default: never None
    if not channel.is_cloudapi:
        return []
    metas = {
        (m.name, m.language): m
        for m in MetaTemplate.objects.filter(channel=channel, status=MetaTemplate.Status.APPROVED)
    }
    out = []
    for template in MessageTemplate.objects.filter(archived=False).exclude(meta_name=""):
        meta = metas.get((template.meta_name, template.meta_language))
        if meta is None or _fit_problems(template, meta):
            continue
        try:
            params = _params(template, customer=conversation.customer, extra=None, service=None)
            text, problem = meta_text(meta.body, params), ""
        except TemplateError as error:
            text, problem = "", str(error)
        out.append({"template": template, "meta": meta, "text": text, "problem": problem})
    return out


def composer_spec(*, conversation: Conversation, template_id) -> tuple[str, dict]:
    """(text, spec) of the template an agent chose, or ValueError with the Spanish reason."""
    try:
        chosen = int(template_id)
    except (TypeError, ValueError):
        raise ValueError(_("Elija una plantilla aprobada por Meta.")) from None
    for choice in composer_choices(conversation=conversation):
        if choice["template"].pk == chosen:
            if choice["problem"]:
                raise ValueError(
                    _("No se puede llenar la plantilla para este cliente: %(problem)s")
                    % {"problem": choice["problem"]}
                )
            params = _params(
                choice["template"], customer=conversation.customer, extra=None, service=None
            )
            return choice["text"], _send_spec(choice["template"], params, choice["meta"])
    raise ValueError(_("Esa plantilla no está aprobada por Meta en este número."))


def meta_send_record(*, message: Message, spec: dict, **fields) -> MetaSend:
    return MetaSend.objects.create(message=message, **spec, **fields)


def _as_send(row: MetaSend) -> TemplateSend:
    return TemplateSend(
        name=row.name,
        language=row.language,
        body_params=tuple(str(p) for p in row.body_params),
        header_kind=row.header_kind,
        header_ref=row.header_ref,
    )


def _derived(message: Message) -> tuple[MessageTemplate | None, dict, object]:
    """(template, campaign values, service) of a campaign's or a reminder's message."""
    recipient = (
        CampaignRecipient.objects.select_related("campaign__template")
        .filter(message_id=message.pk)
        .first()
    )
    if recipient is not None:
        campaign = recipient.campaign
        services = (campaign.filters or {}).get("services") or []
        # As the launch renders it: a campaign filtered by one service speaks of that one.
        return campaign.template, campaign.extra, services[0] if len(services) == 1 else None
    reminder = (
        ReminderSent.objects.select_related("rule__template", "subscription")
        .filter(message_id=message.pk)
        .first()
    )
    if reminder is not None:
        return reminder.rule.template, {}, reminder.subscription.service_id
    return None, {}, None


def template_send_for(message: Message) -> TemplateSend | None:
    """The template a Cloud API row goes out as; None for a free-form message (or on WaSender).
    Raises a permanent ProviderError when its campaign's or reminder's template cannot go out
    (never linked, not approved, a value missing): the row fails with that reason."""
    channel = channels.channel_cached(message.conversation.channel_id)  # type: ignore[arg-type]  # FK default: never None
    if not channel.is_cloudapi:
        return None
    row = MetaSend.objects.filter(message_id=message.pk).first()
    if row is not None:
        return _as_send(row)
    template, extra, service = _derived(message)
    if template is None and message.author_kind not in (
        Message.Author.CAMPAIGN,
        Message.Author.REMINDER,
    ):
        return None
    problems = template_channel_errors(template=template, channel=channel.key)
    meta = meta_template_for(template=template, channel_id=channel.pk) if template else None
    if problems or template is None or meta is None:
        reason = problems[0] if problems else _("Sin plantilla de Meta.")
        raise ProviderError(f"no template for {message.pk}", permanent=True, reason=reason)
    try:
        params = _params(
            template, customer=message.conversation.customer, extra=extra, service=service
        )
    except TemplateError as error:
        raise ProviderError(
            f"template values for {message.pk}: {error}",
            permanent=True,
            reason=_("No se pudo llenar la plantilla de Meta: %(problem)s") % {"problem": error},
        ) from error
    with transaction.atomic():
        try:
            row = meta_send_record(message=message, spec=_send_spec(template, params, meta))
        except IntegrityError:  # built by another worker at the same instant: theirs stands
            row = MetaSend.objects.get(message_id=message.pk)
    return _as_send(row)


# --- Meta's marketing cap ----------------------------------------------------------------------


def _delay(attempt: int) -> timedelta:
    return CAP_RETRY_DELAYS[min(max(attempt, 1), len(CAP_RETRY_DELAYS)) - 1]


def _when(moment: datetime) -> str:
    return formats.date_format(timezone.localtime(moment), "d/m H:i")


def marketing_capped(*, message_id: int, reason: str = "", now: datetime | None = None) -> str:
    """Meta held a marketing template (131049): the row fails as "Limitado por Meta" and a new
    row is scheduled to try again later, unless META_MARKETING_RETRY_DAYS have passed since
    the first cap. Answers "retry", "gave_up" or "already" (a repeated webhook). Call it in
    the transaction that failed the row (or let it fail the row: a `sending` one is failed
    here)."""
    now = now or timezone.now()
    with transaction.atomic():
        message = (
            Message.objects.select_for_update()
            .select_related("conversation")
            .filter(pk=message_id)
            .first()
        )
        if message is None or MetaSend.objects.filter(retry_of_id=message_id).exists():
            return "already"
        spec = MetaSend.objects.filter(message_id=message_id).first()
        if spec is None:  # not one of our template sends: nothing to send again
            _capped_fail(message, _gave_up_reason(0), now)
            return "gave_up"
        first = spec.first_capped_at or now
        due = now + _delay(spec.attempt)
        MetaSend.objects.filter(pk=spec.pk).update(capped_at=now, first_capped_at=first)
        if due > first + timedelta(days=settings.META_MARKETING_RETRY_DAYS):
            _capped_fail(message, _gave_up_reason(spec.attempt), now)
            return "gave_up"
        note = _("Limitado por Meta: se reintentará el %(when)s (intento %(n)s).") % {
            "when": _when(due),
            "n": spec.attempt + 1,
        }
        _capped_fail(message, note, now)
        retry = Message.objects.create(
            conversation=message.conversation,
            direction=Message.Direction.OUT,
            author_kind=message.author_kind,
            agent=message.agent,
            kind=message.kind,
            body=message.body,
            marketing=message.marketing,
            reply_to=message.reply_to,
            status=Message.Status.SCHEDULED,
            scheduled_for=due,
            created_at=now,
        )
        MetaSend.objects.create(
            message=retry,
            name=spec.name,
            language=spec.language,
            body_params=spec.body_params,
            header_kind=spec.header_kind,
            header_ref=spec.header_ref,
            retry_of=message,
            attempt=spec.attempt + 1,
            first_capped_at=first,
        )
        # The campaign's recipient and the reminder follow the new try.
        CampaignRecipient.objects.filter(message_id=message.pk).update(
            message=retry, state=CampaignRecipient.State.QUEUED
        )
        ReminderSent.objects.filter(message_id=message.pk).update(message=retry)
        message_created_publish(conversation_id=message.conversation_id, message_id=retry.pk)
    log.info("message %s capped by Meta; retry %s at %s", message_id, retry.pk, due)
    return "retry"


def marketing_capped_wa_id(*, wa_id: str) -> str:
    """The failed status webhook's way in (by WhatsApp's id)."""
    message_id = Message.objects.filter(wa_id=wa_id).values_list("pk", flat=True).first()
    return marketing_capped(message_id=message_id) if message_id else "already"


def _gave_up_reason(attempts: int) -> str:
    return _(
        "Limitado por Meta: no entregó el mensaje de marketing tras %(n)s intentos en "
        "%(days)s días."
    ) % {"n": max(attempts, 1), "days": settings.META_MARKETING_RETRY_DAYS}


def _capped_fail(message: Message, reason: str, now: datetime) -> None:
    """The capped row ends failed with the cap's reason (a status webhook may have failed it
    already with Meta's generic words)."""
    Message.objects.filter(
        pk=message.pk, status__in=[*Message.UNSETTLED_STATUSES, Message.Status.SENT]
    ).update(status=Message.Status.FAILED, failed_at=now)
    Message.objects.filter(pk=message.pk, status=Message.Status.FAILED).update(
        failure_reason=reason[:300]
    )
    message_status_publish(
        conversation_id=message.conversation_id,
        message_id=message.pk,
        status=Message.Status.FAILED,
    )


def is_marketing_cap(code: str) -> bool:
    return str(code) == codes.MARKETING_CAP
