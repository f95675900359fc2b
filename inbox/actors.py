"""The intake's background work: webhook events retried with backoff, and inbound media
downloaded while WhatsApp's link still works (decrypt-media URLs last an hour). Thin: each
actor calls intake or a service."""

import logging

import dramatiq
from dramatiq_crontab import interval

from inbox import intake, services
from provider import wasender
from provider.errors import ProviderError

log = logging.getLogger(__name__)

MEDIA_MAX_ATTEMPTS = 6
MEDIA_RETRY_BASE_SECONDS = 10.0
MEDIA_RETRY_MAX_SECONDS = 600.0


@interval(seconds=30)
@dramatiq.actor(actor_name="inbox_webhook_events_sweep", max_retries=0)
def webhook_events_sweep() -> None:
    """Every due pending or failed event (and any a dead process left half-done)."""
    intake.webhook_events_retry_due()


@dramatiq.actor(actor_name="inbox_webhook_event_process", queue_name="intake", max_retries=0)
def webhook_event_process(event_id: int) -> None:
    """An event the web process stored during a burst, without applying it."""
    intake.webhook_event_handle(event_id)


@dramatiq.actor(actor_name="inbox_webhook_event_retry", max_retries=0)
def webhook_event_retry_later(event_id: int) -> None:
    """Enqueued with a delay right after a failure; the sweep is the safety net."""
    intake.webhook_event_retry(event_id)


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
        services.message_media_fetch(message_id=message_id, provider=provider)
    except ProviderError as exc:
        if exc.permanent or attempt + 1 >= MEDIA_MAX_ATTEMPTS:
            log.warning("media of message %s not downloaded: %s", message_id, exc)
            services.message_media_failed(message_id=message_id, reason=exc.reason)
            return
        delay = media_retry_delay(attempt, exc.retry_after)
        media_download.send_with_options(args=(message_id, attempt + 1), delay=int(delay * 1000))
