"""The send pipeline: one outbox row (a queued Message) becomes at most one WaSender send.

Order of a delivery: load -> wait for a rate-limit token -> claim (queued -> sending, a
conditional update: one claimer wins; a marketing message whose customer has opted out is
cancelled instead, in the same statement's check) -> send -> record. The token comes before
the claim so a row is `sending` only while the provider is actually being asked. A duplicate
broker message costs at most a token.

At most once: a send whose outcome is ambiguous (the request left and no clear answer came
back: a read timeout, a dropped connection, a 5xx, an answer without msgId) is never sent
again. It becomes `unconfirmed`, and the evidence settles it: the echo webhook of our own
send (inbox.services.outbound_echo_link), message info once an id is known, or, after
SEND_UNCONFIRMED_SECONDS without either, `unknown` (outbound/sweeper.py). A crash while
`sending` ends the same way.

Retries are ours, not Dramatiq's (max_retries=0), and only for errors that prove nothing was
sent (the connection never opened, 429, a failed upload of our attachment): the row goes back
to `queued` and is re-enqueued with a delay. Permanent errors and too many attempts mark it
`failed` with a reason a person can read.
"""

import logging
import random
import time

import dramatiq
from django.conf import settings
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from inbox import channels
from inbox.events import message_status_publish
from inbox.models import Message
from outbound import meta_templates, ratelimit
from provider.errors import ProviderError
from provider.sending import Quote, SendRequest, SendResult

logger = logging.getLogger(__name__)

Status = Message.Status
# Longest wait for a token before the message goes back to the broker. Short: a worker thread
# waiting here is a thread the intake cannot use (webhooks stored during a burst, auto-replies),
# and those come first (the actors' priorities) as soon as a thread is free.
TOKEN_MAX_WAIT = 2.0
# Dramatiq takes lower numbers first from a worker's queue: sends after everything else.
SEND_PRIORITY = 50
REASON_MAX = 300
OPTED_OUT_REASON = gettext_noop("Cancelado: el cliente se dio de baja de la publicidad.")


@dramatiq.actor(
    actor_name="outbound.message_deliver",
    queue_name="outbound",
    max_retries=0,
    time_limit=150_000,
    priority=SEND_PRIORITY,
)
def message_deliver(message_id: int) -> None:
    deliver(message_id)


def message_enqueue(message_id: int, *, delay: float = 0.0) -> None:
    # delay=None is send_with_options' default: at once.
    message_deliver.send_with_options(
        args=(message_id,), delay=int(delay * 1000) if delay > 0 else None
    )


def deliver(message_id: int, *, client=None, bucket=None, sleep=time.sleep) -> str:
    """What happened, for logs and tests: sent, unconfirmed, retry, failed, cancelled, skipped
    or deferred. The provider's client and pace are the conversation's channel's unless given."""
    message = (
        Message.objects.select_related("conversation__customer", "reply_to")
        .filter(id=message_id, status=Status.QUEUED)
        .first()
    )
    if message is None:
        return "skipped"  # sent, cancelled, or another worker has it
    key: str = message.conversation.channel_id  # type: ignore[assignment]  # FK default: never None
    if client is None or bucket is None:
        channel = channels.channel_cached(key)
        client = client or channels.client_for(channel)
        bucket = bucket or ratelimit.bucket(channel.pace)
    if not ratelimit.token_wait(bucket, key, max_wait=TOKEN_MAX_WAIT, sleep=sleep):
        message_enqueue(message_id)
        return "deferred"
    if not message_claim(message):
        return "cancelled" if message_opted_out_cancel(message) else "skipped"
    try:
        if message.media_file and not message.media_url:
            media_upload(message, client=client)
    except ProviderError as error:
        # Nothing was sent yet: an upload can always be asked for again.
        return failure_record(message, error, bucket=bucket, sent_maybe=False)
    try:
        result = client.send(send_request(message))
    except ProviderError as error:
        return failure_record(message, error, bucket=bucket, sent_maybe=error.ambiguous)
    sent_record(message, result)
    return "sent"


# A marketing message is claimed only while its customer receives marketing: the opt-out is
# read by the same UPDATE that claims the row.
RECEIVES_MARKETING = Q(marketing=False) | Q(conversation__customer__marketing_opt_out_at=None)


def message_claim(message: Message) -> bool:
    claimed = Message.objects.filter(
        RECEIVES_MARKETING, id=message.id, status=Status.QUEUED
    ).update(status=Status.SENDING, sending_at=timezone.now(), attempts=F("attempts") + 1)
    if claimed:
        status_publish(message, Status.SENDING)
    return bool(claimed)


def message_opted_out_cancel(message: Message) -> bool:
    """A queued marketing message whose customer opted out since it was queued: cancelled."""
    if not message.marketing:
        return False
    cancelled = Message.objects.filter(
        id=message.id,
        status=Status.QUEUED,
        marketing=True,
        conversation__customer__marketing_opt_out_at__isnull=False,
    ).update(status=Status.CANCELLED, failure_reason=_(OPTED_OUT_REASON))
    if cancelled:
        status_publish(message, Status.CANCELLED)
    return bool(cancelled)


def media_upload(message: Message, *, client) -> None:
    """A file an agent attached is ours: WaSender needs a public URL (valid 24 h), so it is
    uploaded here, after the claim and just before the send, never in the web request."""
    try:
        with message.media_file.open("rb") as f:
            content = f.read()
    except OSError as error:
        raise ProviderError(
            f"attachment {message.media_file.name} unreadable: {error!r}",
            permanent=True,
            reason=_("El archivo adjunto ya no está disponible."),
        ) from error
    url = client.upload(
        content=content, content_type=message.media_mime or "application/octet-stream"
    )
    Message.objects.filter(id=message.id).update(media_url=url[:1000])
    message.media_url = url[:1000]


def send_request(message: Message) -> SendRequest:
    """The outbox row as any provider's client takes it."""
    quote = None
    if message.reply_to:
        provider_id = message.reply_to.provider_msg_id
        quote = Quote(provider_id=str(provider_id or ""), wa_id=message.reply_to.wa_id or "")
    media = message.kind != Message.Kind.TEXT and bool(message.media_url)
    return SendRequest(
        to=message.conversation.customer.phone,
        text=message.body,
        media_kind=message.kind if media else "",
        media_ref=message.media_url if media else "",
        file_name=message.media_filename,
        quote=quote,
        # On a Cloud API number, a template reply, campaign or reminder goes out as the Meta
        # template it is linked to (raises a permanent ProviderError when it cannot).
        template=meta_templates.template_send_for(message),
    )


def _ids(result: SendResult) -> dict:
    """WaSender answers its integer msgId (WhatsApp's id comes later, by webhook); Meta
    answers WhatsApp's id itself."""
    ids: dict[str, int | str] = {}
    if result.provider_id.isdigit():
        ids["provider_msg_id"] = int(result.provider_id)
    if result.wa_id:
        ids["wa_id"] = result.wa_id
    return ids


def sent_record(message: Message, result: SendResult) -> None:
    ids = _ids(result)
    updated = Message.objects.filter(id=message.id, status__in=Message.UNSETTLED_STATUSES).update(
        status=Status.SENT, sent_at=timezone.now(), failure_reason="", **ids
    )
    if updated:
        status_publish(message, Status.SENT)
        return
    # The echo or a status webhook got there first: keep its status, remember the id.
    if "provider_msg_id" in ids:
        Message.objects.filter(id=message.id, provider_msg_id__isnull=True).update(
            provider_msg_id=ids["provider_msg_id"]
        )


def failure_record(message: Message, error: ProviderError, *, bucket, sent_maybe: bool) -> str:
    if sent_maybe:
        message_unconfirmed(message, error.reason)
        return "unconfirmed"
    if meta_templates.is_marketing_cap(error.code):
        # Meta held a marketing template for this customer: never this row again, a new one
        # later (outbound/meta_templates.py).
        return meta_templates.marketing_capped(message_id=message.id, reason=error.reason)
    if error.permanent:
        message_fail(message, error.reason)
        return "failed"
    attempts = Message.objects.values_list("attempts", flat=True).get(id=message.id)
    if attempts >= settings.SEND_MAX_ATTEMPTS:
        reason = _("No se pudo enviar tras %(n)s intentos: %(reason)s") % {
            "n": attempts,
            "reason": error.reason,
        }
        message_fail(message, reason)
        return "failed"
    if error.retry_after and not error.per_recipient:
        # The provider's limit is per number: every worker pauses, not only this one (a limit
        # on one customer, Meta's pair rate, waits for that message alone).
        bucket.hold(message.conversation.channel_id, error.retry_after)
    requeued = Message.objects.filter(id=message.id, status=Status.SENDING).update(
        status=Status.QUEUED, failure_reason=error.reason[:REASON_MAX]
    )
    if requeued:
        status_publish(message, Status.QUEUED)
        message_enqueue(message.id, delay=backoff_delay(attempts, error.retry_after))
    logger.info("send %s attempt %s failed, retrying: %s", message.id, attempts, error)
    return "retry"


def message_fail(message: Message, reason: str) -> None:
    updated = Message.objects.filter(id=message.id, status__in=Message.UNSETTLED_STATUSES).update(
        status=Status.FAILED, failed_at=timezone.now(), failure_reason=reason[:REASON_MAX]
    )
    if updated:
        status_publish(message, Status.FAILED)


def message_unconfirmed(message: Message, reason: str) -> bool:
    """sending -> unconfirmed: WhatsApp may have the message; it is not sent again. The wait
    for evidence counts from the claim (sending_at)."""
    note = _(
        "Sin confirmar (%(reason)s): no se reenvía para no duplicarlo; "
        "se espera la confirmación de WhatsApp."
    ) % {"reason": reason.rstrip(".")}
    updated = Message.objects.filter(id=message.id, status=Status.SENDING).update(
        status=Status.UNCONFIRMED, failure_reason=note[:REASON_MAX]
    )
    if updated:
        status_publish(message, Status.UNCONFIRMED)
        logger.info("send %s unconfirmed: %s", message.id, reason)
    return bool(updated)


def backoff_delay(attempts: int, retry_after: float | None = None, *, rand=random.random) -> float:
    """Exponential from SEND_RETRY_BASE_SECONDS, up to 20% jitter, capped; never sooner than
    the provider's retry_after."""
    delay = settings.SEND_RETRY_BASE_SECONDS * 2 ** max(attempts - 1, 0) * (1 + 0.2 * rand())
    delay = min(delay, settings.SEND_RETRY_MAX_SECONDS)
    return max(delay, retry_after or 0.0)


def status_publish(message: Message, status: str) -> None:
    message_status_publish(
        conversation_id=message.conversation_id, message_id=message.id, status=status
    )
