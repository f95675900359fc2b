"""What the inbox's composer asks of outbound: send an agent's reply (with its file), send a
failed line again, and the templates it offers. With the intake's call to outbound.rules, this
is the one way the inbox reaches up a floor (ARCHITECTURE.md's seams; the import contract in
pyproject.toml allows these two and nothing else)."""

from datetime import datetime

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from inbox import channels
from inbox.models import Conversation, Message
from outbound import meta_templates
from outbound.attachments import Attachment, attachment_accept, attachment_discard
from outbound.models import MessageTemplate
from outbound.services import SendRejected, message_send
from outbound.templating import TemplateError, template_render
from provider.cloudapi.api import window_closes_at

__all__ = [
    "SendRejected",
    "composer_templates",
    "meta_template_send",
    "reply_copy_send",
    "reply_send",
    "template_fill",
    "window_state",
]


def reply_send(
    *,
    conversation: Conversation,
    agent,
    text: str,
    reply_to: Message | None = None,
    scheduled_for: datetime | None = None,
    upload=None,
    meta_template: str | int | None = None,
) -> Message:
    """An agent's reply: its uploaded file checked and stored, then the outbox row. Raises
    SendRejected; whatever fails, a reply that was not written leaves no file behind. With
    `meta_template` (a MessageTemplate's id, on a Cloud API number) the reply is that approved
    template, filled for the customer; the thread shows the text they read."""
    if meta_template:
        return meta_template_send(
            conversation=conversation, agent=agent, template_id=meta_template, reply_to=reply_to
        )
    attachment = None
    window_check(conversation)
    try:
        if upload is not None:
            attachment = attachment_accept(upload=upload)
        return message_send(
            customer=conversation.customer,
            channel=conversation.channel_id,  # type: ignore[arg-type]  # FK default: never None
            text=text,
            author_kind=Message.Author.AGENT,
            agent=agent,
            reply_to=reply_to,
            scheduled_for=scheduled_for,
            attachment=attachment,
        )
    except BaseException:
        attachment_discard(attachment)
        raise


def meta_template_send(
    *, conversation: Conversation, agent, template_id, reply_to: Message | None = None
) -> Message:
    try:
        text, spec = meta_templates.composer_spec(
            conversation=conversation, template_id=template_id
        )
    except ValueError as problem:
        raise SendRejected("meta_template", str(problem)) from None
    with transaction.atomic():
        message = message_send(
            customer=conversation.customer,
            channel=conversation.channel_id,  # type: ignore[arg-type]  # FK default: never None
            text=text,
            author_kind=Message.Author.AGENT,
            agent=agent,
            reply_to=reply_to,
        )
        meta_templates.meta_send_record(message=message, spec=spec)
    return message


def reply_copy_send(*, failed: Message, agent) -> Message:
    """A failed line sent again as a fresh copy. Our own file is uploaded afresh (the
    provider's URL of the first try may have expired). Raises SendRejected."""
    attachment = None
    if failed.media_file:
        attachment = Attachment(
            kind=failed.kind,
            mime=failed.media_mime,
            name=failed.media_filename,
            path=failed.media_file.name,  # type: ignore[arg-type]  # set: the file is truthy
            size=failed.media_size or 0,
        )
    media_url = None if attachment else failed.media_url or None
    window_check(failed.conversation)
    return message_send(
        customer=failed.conversation.customer,
        channel=failed.conversation.channel_id,  # type: ignore[arg-type]  # FK default: never None
        text=failed.body,
        media_url=media_url,
        media_kind=failed.kind if media_url else None,
        attachment=attachment,
        author_kind=Message.Author.AGENT,
        agent=agent,
        reply_to=failed.reply_to,
    )


def window_check(conversation: Conversation) -> None:
    """Meta lets a business write freely only within 24 hours of the customer's last message;
    after that only an approved template goes out (WaSender has no such rule)."""
    state = window_state(conversation)
    if state is not None and not state["open"]:
        raise SendRejected(
            "text",
            _(
                "La ventana de 24 horas de WhatsApp está cerrada (el cliente no escribe desde "
                "hace más de un día): en este número solo puede salir una plantilla aprobada "
                "por Meta."
            ),
        )


def window_state(conversation: Conversation) -> dict | None:
    """{"open", "until"} on a Cloud API number, None where no window applies."""
    if not channels.channel_cached(conversation.channel_id).is_cloudapi:  # type: ignore[arg-type]  # FK default: never None
        return None
    last_in = (
        Message.objects.filter(conversation=conversation, direction=Message.Direction.IN)
        .order_by("-created_at")
        .values_list("created_at", flat=True)
        .first()
    )
    until = window_closes_at(last_in)
    is_open = bool(until and until > timezone.now())
    # Closed: what the composer offers instead of free text.
    templates = [] if is_open else meta_templates.composer_choices(conversation=conversation)
    return {"open": is_open, "until": until, "templates": templates}


def composer_templates() -> QuerySet[MessageTemplate]:
    return MessageTemplate.objects.filter(archived=False)


def template_fill(*, template_id: int | None, conversation: Conversation) -> tuple[str, str]:
    """(text, problem): the template filled from the conversation's customer, to edit before
    sending; with a value missing, the template as it is and what to complete by hand."""
    template = composer_templates().filter(pk=template_id or 0).first()
    if template is None:
        return "", ""
    try:
        return template_render(template.body, customer=conversation.customer), ""
    except TemplateError as problem:
        return template.body, _("Completa a mano: %(problem)s") % {"problem": problem}
