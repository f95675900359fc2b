"""`message_send`: the one way anything leaves chatdesk (agent replies, the API, campaigns,
reminders). It only writes the outbox row; the send actor (outbound/pipeline.py) does the rest
after commit."""

from datetime import datetime
from pathlib import PurePosixPath
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from customers.models import Customer
from customers.phones import InvalidPhone
from customers.services import customer_get_or_create
from inbox.events import event_publish
from inbox.models import Conversation, Message
from inbox.services import conversation_get_or_create
from outbound.pipeline import message_deliver

MEDIA_KINDS = {"image", "video", "audio", "document", "sticker"}
EXTENSION_KINDS = {
    ".jpg": "image",
    ".jpeg": "image",
    ".png": "image",
    ".gif": "image",
    ".webp": "sticker",
    ".mp4": "video",
    ".3gp": "video",
    ".mov": "video",
    ".mp3": "audio",
    ".ogg": "audio",
    ".opus": "audio",
    ".m4a": "audio",
    ".aac": "audio",
}
TEXT_MAX = 4096


class SendRejected(ValueError):
    """Bad input from whoever asked to send; `field` says which (for the API's 422)."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


def media_kind_guess(url: str) -> str:
    suffix = PurePosixPath(urlsplit(url).path).suffix.lower()
    return EXTENSION_KINDS.get(suffix, "document")


def media_url_check(url: str) -> None:
    # The provider downloads it, so it must be an absolute http(s) address.
    if len(url) > 1000:
        raise SendRejected("media_url", _("La dirección del archivo es demasiado larga."))
    try:
        URLValidator(schemes=["http", "https"])(url)
    except ValidationError:
        raise SendRejected(
            "media_url", _("La dirección del archivo no es válida (debe empezar con https://).")
        ) from None


def _validate(*, text: str, media_url: str, media_kind: str | None, attachment=None) -> str:
    if not text.strip() and not media_url and attachment is None:
        raise SendRejected("text", _("Escribe un mensaje o adjunta un archivo."))
    if len(text) > TEXT_MAX:
        too_long = _("El mensaje supera los %(max)s caracteres.") % {"max": TEXT_MAX}
        raise SendRejected("text", too_long)
    if attachment is not None:
        return attachment.kind
    if not media_url:
        return Message.Kind.TEXT
    media_url_check(media_url)
    if media_kind and media_kind not in MEDIA_KINDS:
        raise SendRejected("media_kind", _("Tipo de archivo desconocido."))
    return media_kind or media_kind_guess(media_url)


def _customer(customer: Customer | None, phone: str | None) -> Customer:
    if customer is not None:
        return customer
    try:
        return customer_get_or_create(phone=phone or "")[0]
    except InvalidPhone:
        raise SendRejected(
            "phone", _("El número de teléfono no es válido; usa el formato +593991234567.")
        ) from None


def _conversation_touch(conversation: Conversation, message: Message) -> None:
    Conversation.objects.filter(id=conversation.id).update(
        last_message_at=message.created_at,
        last_message_preview=(message.body or message.get_kind_display())[:160],
    )


def message_send(
    *,
    customer: Customer | None = None,
    phone: str | None = None,
    text: str = "",
    media_url: str | None = None,
    media_kind: str | None = None,
    author_kind: str,
    agent=None,
    reply_to: Message | None = None,
    scheduled_for: datetime | None = None,
    attachment=None,
) -> Message:
    """Write the outbound row (queued, or scheduled when `scheduled_for` is in the future) in
    the customer's conversation; after commit the send actor takes it. Raises SendRejected.
    `attachment` (outbound.attachments.Attachment) is a file of ours: the pipeline uploads it
    to the provider just before sending."""
    text = (text or "").strip()
    media_url = (media_url or "").strip()
    kind = _validate(text=text, media_url=media_url, media_kind=media_kind, attachment=attachment)
    local = _attachment_fields(attachment)
    now = timezone.now()
    later = scheduled_for is not None and scheduled_for > now
    with transaction.atomic():
        conversation = conversation_get_or_create(customer=_customer(customer, phone))
        message = Message.objects.create(
            conversation=conversation,
            direction=Message.Direction.OUT,
            author_kind=author_kind,
            agent=agent,
            kind=kind,
            body=text,
            media_url=media_url,
            reply_to=reply_to,
            status=Message.Status.SCHEDULED if later else Message.Status.QUEUED,
            scheduled_for=scheduled_for,
            created_at=now,
            **local,
        )
        _conversation_touch(conversation, message)
        event_publish("message.created", conversation_id=conversation.id, message_id=message.id)
        if not later:
            message_enqueue_on_commit(message.id)
    return message


def _attachment_fields(attachment) -> dict:
    if attachment is None:
        return {}
    return {
        "media_file": attachment.path,
        "media_mime": attachment.mime,
        "media_filename": attachment.name,
        "media_size": attachment.size,
    }


def message_enqueue_on_commit(message_id: int) -> None:
    transaction.on_commit(lambda: message_deliver.send(message_id))
