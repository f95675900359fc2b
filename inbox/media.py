"""Inbound media: downloaded while WhatsApp's link still works (decrypt-media URLs last an
hour) into our own storage, once; transient provider errors come back later with backoff,
permanent ones leave a note on the message. The download actor lives here, beside it."""

import logging
import mimetypes
import re
from pathlib import Path

import dramatiq
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone
from django.utils.translation import gettext as _

from inbox.events import message_status_publish
from inbox.models import Message
from provider import wasender
from provider.errors import ProviderError

log = logging.getLogger(__name__)

MEDIA_MAX_BYTES = {
    "image": 16 * 1024 * 1024,
    "video": 16 * 1024 * 1024,
    "audio": 16 * 1024 * 1024,
    "sticker": 2 * 1024 * 1024,
    "document": 100 * 1024 * 1024,
}

MEDIA_MAX_ATTEMPTS = 6
MEDIA_RETRY_BASE_SECONDS = 10.0
MEDIA_RETRY_MAX_SECONDS = 600.0


def _media_name(message: Message, mime: str) -> str:
    suffix = Path(message.media_filename).suffix.lower()
    if not re.fullmatch(r"\.[a-z0-9]{1,8}", suffix):
        suffix = mimetypes.guess_extension(mime or message.media_mime or "") or ""
    return f"media/{timezone.now():%Y/%m}/{message.pk}{suffix}"


def message_media_fetch(*, message_id: int, provider) -> bool:
    """Download an inbound attachment through decrypt-media into our storage, once. Raises
    the provider's ProviderError; the caller decides between retrying and giving up."""
    message = Message.objects.filter(pk=message_id).first()
    if message is None or message.media_file or not message.media_source:
        return False
    limit = MEDIA_MAX_BYTES.get(message.kind, MEDIA_MAX_BYTES["image"])
    url = provider.decrypt_media(message.media_source)
    content, mime = provider.download(url, max_bytes=limit)
    if len(content) > limit:
        raise ProviderError(
            "media larger than allowed",
            permanent=True,
            reason=_("El archivo supera el tamaño máximo permitido."),
        )
    name = default_storage.save(_media_name(message, mime), ContentFile(content))
    saved = Message.objects.filter(pk=message_id, media_file="").update(
        media_file=name,
        media_mime=(mime or message.media_mime)[:100],
        media_size=len(content),
        media_error="",
    )
    if not saved:  # a concurrent run got there first
        default_storage.delete(name)
        return False
    message_status_publish(conversation_id=message.conversation_id, message_id=message_id)
    return True


def message_media_failed(*, message_id: int, reason: str) -> None:
    message = Message.objects.filter(pk=message_id, media_file="").first()
    if message is None:
        return
    note = _("No se pudo descargar el archivo: %(reason)s") % {"reason": reason}
    Message.objects.filter(pk=message_id).update(media_error=note[:300])
    message_status_publish(conversation_id=message.conversation_id, message_id=message_id)


def media_retry_delay(attempt: int, retry_after: float | None) -> float:
    backoff = min(MEDIA_RETRY_BASE_SECONDS * 2**attempt, MEDIA_RETRY_MAX_SECONDS)
    return max(backoff, retry_after or 0.0)


@dramatiq.actor(actor_name="inbox_media_download", max_retries=0)
def media_download(message_id: int, attempt: int = 0) -> None:
    media_download_run(message_id, attempt=attempt, provider=wasender.client())


def media_download_run(message_id: int, *, attempt: int, provider) -> None:
    """Transient provider errors come back later with backoff; permanent ones (or too many
    tries) leave a note on the message and stop."""
    try:
        message_media_fetch(message_id=message_id, provider=provider)
    except ProviderError as exc:
        if exc.permanent or attempt + 1 >= MEDIA_MAX_ATTEMPTS:
            log.warning("media of message %s not downloaded: %s", message_id, exc)
            message_media_failed(message_id=message_id, reason=exc.reason)
            return
        delay = media_retry_delay(attempt, exc.retry_after)
        media_download.send_with_options(args=(message_id, attempt + 1), delay=int(delay * 1000))
