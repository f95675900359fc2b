"""What the inbox's composer asks of outbound: send an agent's reply (with its file), send a
failed line again, and the templates it offers. With the intake's call to outbound.rules, this
is the one way the inbox reaches up a floor (ARCHITECTURE.md's seams; the import contract in
pyproject.toml allows these two and nothing else)."""

from datetime import datetime

from django.db.models import QuerySet
from django.utils.translation import gettext as _

from inbox.models import Conversation, Message
from outbound.attachments import Attachment, attachment_accept, attachment_discard
from outbound.models import MessageTemplate
from outbound.services import SendRejected, message_send
from outbound.templating import TemplateError, template_render

__all__ = ["SendRejected", "composer_templates", "reply_copy_send", "reply_send", "template_fill"]


def reply_send(
    *,
    conversation: Conversation,
    agent,
    text: str,
    reply_to: Message | None = None,
    scheduled_for: datetime | None = None,
    upload=None,
) -> Message:
    """An agent's reply: its uploaded file checked and stored, then the outbox row. Raises
    SendRejected; whatever fails, a reply that was not written leaves no file behind."""
    attachment = None
    try:
        if upload is not None:
            attachment = attachment_accept(upload=upload)
        return message_send(
            customer=conversation.customer,
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


def reply_copy_send(*, failed: Message, agent) -> Message:
    """A failed line sent again as a fresh copy. Our own file is uploaded afresh (the
    provider's URL of the first try may have expired). Raises SendRejected."""
    attachment = None
    if failed.media_file:
        attachment = Attachment(
            kind=failed.kind,
            mime=failed.media_mime,
            name=failed.media_filename,
            path=failed.media_file.name,
            size=failed.media_size or 0,
        )
    media_url = None if attachment else failed.media_url or None
    return message_send(
        customer=failed.conversation.customer,
        text=failed.body,
        media_url=media_url,
        media_kind=failed.kind if media_url else None,
        attachment=attachment,
        author_kind=Message.Author.AGENT,
        agent=agent,
        reply_to=failed.reply_to,
    )


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
