"""`message_send`: the one way anything leaves chatdesk (agent replies, the API, campaigns,
reminders). It only writes the outbox row; the send actor (outbound/pipeline.py) does the rest
after commit."""

from datetime import datetime
from pathlib import PurePosixPath
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from chatdesk.broker import send_many
from chatdesk.bulk import bulk_insert, bulk_insert_like
from customers.models import Customer
from customers.phones import InvalidPhone
from customers.services import customer_get_or_create
from inbox.events import message_created_publish, messages_created_publish
from inbox.models import DEFAULT_CHANNEL, Conversation, Message
from inbox.services import conversation_get_or_create, conversation_last_message_note
from outbound.pipeline import OPTED_OUT_REASON, message_deliver, status_publish

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
WAITING = [Message.Status.QUEUED, Message.Status.SCHEDULED]


class SendRejected(ValueError):
    """Bad input from whoever asked to send; `field` says which (for the API's 422)."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


def media_kind_guess(url: str) -> str:
    suffix = PurePosixPath(urlsplit(url).path).suffix.lower()
    return EXTENSION_KINDS.get(suffix, "document")


def _simulator_url(url: str) -> bool:
    """The simulator serves its files over plain http on loopback; nothing else may."""
    simulator = urlsplit(settings.WASENDER_BASE_URL)
    return settings.USE_SIMULATOR and urlsplit(url).netloc.lower() == simulator.netloc.lower()


def media_url_check(url: str) -> None:
    # The provider downloads it from the internet: https only (the simulator apart).
    if len(url) > 1000:
        raise SendRejected("media_url", _("La dirección del archivo es demasiado larga."))
    try:
        URLValidator(schemes=["http", "https"] if _simulator_url(url) else ["https"])(url)
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
    conversation_last_message_note(
        conversation_id=conversation.id,
        at=message.created_at,
        preview=message.body or message.get_kind_display(),
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
    marketing: bool = False,
    channel: str = DEFAULT_CHANNEL,
) -> Message:
    """Write the outbound row (queued, or scheduled when `scheduled_for` is in the future) in
    the customer's conversation on `channel` (a channel's key: the WhatsApp number it goes
    out from); after commit the send actor takes it. Raises SendRejected.
    `attachment` (outbound.attachments.Attachment) is a file of ours: the pipeline uploads it
    to the provider just before sending."""
    text = (text or "").strip()
    media_url = (media_url or "").strip()
    kind = _validate(text=text, media_url=media_url, media_kind=media_kind, attachment=attachment)
    local = _attachment_fields(attachment)
    now = timezone.now()
    later = scheduled_for is not None and scheduled_for > now
    with transaction.atomic():
        conversation = conversation_get_or_create(
            customer=_customer(customer, phone), channel=channel
        )
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
            marketing=marketing,
            **local,
        )
        _conversation_touch(conversation, message)
        message_created_publish(conversation_id=conversation.id, message_id=message.id)
        if not later:
            message_enqueue_on_commit(message.id)
    return message


def text_check(text: str) -> str:
    """The stripped text of a text-only send, or SendRejected (what message_send would say)."""
    text = (text or "").strip()
    _validate(text=text, media_url="", media_kind=None)
    return text


def _conversations_for(customer_ids: set[int], channel: str = DEFAULT_CHANNEL) -> dict[int, int]:
    """customer id -> conversation id on the channel, creating the missing ones (a concurrent
    creator wins through the unique constraint; its row is read back)."""
    rows = Conversation.objects.filter(customer_id__in=customer_ids, channel_id=channel)
    found = dict(rows.values_list("customer_id", "id"))
    missing = customer_ids - found.keys()
    if missing and connection.vendor == "postgresql":
        # Sorted: two creators lock the unique index's entries in the same order.
        varying = {"customer_id": sorted(missing)}
        bulk_insert_like(Conversation, Conversation(channel_id=channel), varying)
    elif missing:
        Conversation.objects.bulk_create(
            [Conversation(customer_id=pk, channel_id=channel) for pk in missing],
            ignore_conflicts=True,
        )
    if missing:
        rows = Conversation.objects.filter(customer_id__in=missing, channel_id=channel)
        found.update(rows.values_list("customer_id", "id"))
    return found


def _conversations_touch_bulk(messages: list[Message]) -> None:
    """One UPDATE for the batch (bulk_update's CASE costs about a millisecond a row). Like
    conversation_last_message_note, a conversation with a newer message keeps it."""
    latest = {m.conversation_id: m for m in messages}
    previews = [(pk, (m.body or m.get_kind_display())[:160]) for pk, m in latest.items()]
    values = ", ".join(["(%s, %s)"] * len(previews))
    table = Conversation._meta.db_table
    at = messages[0].created_at
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET last_message_at = %s, "  # noqa: S608
            f"last_message_preview = v.column2 FROM (VALUES {values}) AS v "
            f"WHERE {table}.id = v.column1 "
            f"AND ({table}.last_message_at IS NULL OR {table}.last_message_at <= %s)",
            [at, *(x for row in previews for x in row), at],
        )


def messages_send_bulk(
    *,
    sends: list[tuple[int, str]],
    author_kind: str,
    marketing: bool = False,
    channel: str = DEFAULT_CHANNEL,
) -> list[Message]:
    """`message_send` of many texts at once (a campaign batch), given (customer id, text)
    with texts that passed `text_check`: the same rows, previews, events and jobs, in a few
    queries for the whole batch instead of several per message. Returned in `sends` order
    (all with the same created_at, which the previews' one UPDATE relies on)."""
    now = timezone.now()
    if not sends:
        return []
    with transaction.atomic():
        conversations = _conversations_for({customer_id for customer_id, _ in sends}, channel)
        messages = bulk_insert(
            Message,
            [
                Message(
                    conversation_id=conversations[customer_id],
                    direction=Message.Direction.OUT,
                    author_kind=author_kind,
                    kind=Message.Kind.TEXT,
                    body=text,
                    status=Message.Status.QUEUED,
                    created_at=now,
                    marketing=marketing,
                )
                for customer_id, text in sends
            ],
        )
        _conversations_touch_bulk(messages)
        messages_created_publish([(m.conversation_id, m.id) for m in messages])
        ids = [m.id for m in messages]
        transaction.on_commit(lambda: messages_enqueue(ids))
    return messages


def messages_enqueue(message_ids: list[int]) -> None:
    send_many(message_deliver, ((message_id,) for message_id in message_ids))


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


def marketing_messages_cancel(*, customer: Customer) -> int:
    """The customer opted out: their marketing messages not yet taken by a worker (queued,
    retrying or scheduled) are cancelled now, each with the reason shown on its line. A
    message being sent at this instant finishes (its claim read the opt-out before it)."""
    waiting = Message.objects.filter(
        conversation__customer=customer,
        marketing=True,
        status__in=[Message.Status.QUEUED, Message.Status.SCHEDULED],
    )
    cancelled = 0
    for message in waiting.only("pk", "conversation_id"):
        if Message.objects.filter(pk=message.pk, status__in=WAITING).update(
            status=Message.Status.CANCELLED, failure_reason=_(OPTED_OUT_REASON)
        ):
            status_publish(message, Message.Status.CANCELLED)
            cancelled += 1
    return cancelled
