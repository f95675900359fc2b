"""The periodic sweep of the outbox: nothing is left behind, nothing is sent twice.

- `sending` for longer than SEND_STUCK_SENDING_SECONDS: a worker died between asking WaSender
  and recording the answer. With the provider's id we ask message info; without it nobody can
  know yet whether WhatsApp got it, so the row becomes `unconfirmed`, never resent.
- `unconfirmed` (an ambiguous answer, or the above): with the provider's id, message info
  settles it; otherwise the echo webhook does (inbox.services.outbound_echo_link). After
  SEND_UNCONFIRMED_SECONDS from the claim with no evidence, it becomes `unknown`.
- `queued` for longer than SEND_STUCK_QUEUED_SECONDS: its broker message was lost (a Redis
  restart, an embedded process restart). Re-enqueued; the claim makes a duplicate harmless.
- `scheduled` and due: becomes `queued` and is enqueued.

Message info is WaSender's: each row is asked through its channel's client
(inbox.channels.client_for). Meta's Cloud API has no such endpoint: a Cloud API row is never
asked; it settles by its status webhooks, else becomes `unknown` after the wait.
"""

import logging
from datetime import timedelta

import dramatiq
from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _
from dramatiq_crontab import interval

from inbox import channels
from inbox.models import Channel, Message
from inbox.services import message_wa_id_link
from outbound.pipeline import message_enqueue, message_unconfirmed, status_publish
from provider.errors import ProviderError

logger = logging.getLogger(__name__)

Status = Message.Status
BATCH = 500
# WaSender's message-info codes: 0 error, 1 pending, 2 sent, 3 delivered, 4 read, 5 played.
INFO_STATUS = {
    0: Status.FAILED,
    1: Status.SENT,
    2: Status.SENT,
    3: Status.DELIVERED,
    4: Status.READ,
    5: Status.PLAYED,
}
STAMP = {
    Status.SENT: "sent_at",
    Status.DELIVERED: "delivered_at",
    Status.READ: "read_at",
    Status.PLAYED: "played_at",
    Status.FAILED: "failed_at",
}


@interval(seconds=settings.SEND_SWEEP_EVERY_SECONDS)
@dramatiq.actor(
    actor_name="outbound.outbox_sweep", queue_name="outbound", max_retries=0, time_limit=120_000
)
def outbox_sweep() -> None:
    counts = sweep()
    if any(counts.values()):
        logger.info("outbox sweep: %s", counts)


def sweep(*, client=None, now=None) -> dict:
    """`client` answers message info for every WaSender row (tests); by default each row's
    channel's own client."""
    now = now or timezone.now()
    return {
        "unconfirmed_or_resolved": sending_sweep(
            client=client, before=now - timedelta(seconds=settings.SEND_STUCK_SENDING_SECONDS)
        ),
        "unknown_or_resolved": unconfirmed_sweep(
            client=client, before=now - timedelta(seconds=settings.SEND_UNCONFIRMED_SECONDS)
        ),
        "requeued": queued_sweep(
            before=now - timedelta(seconds=settings.SEND_STUCK_QUEUED_SECONDS)
        ),
        "promoted": scheduled_promote(now=now),
    }


def info_client(channel_key: str, *, given=None):
    """The client that asks message info for this channel's rows; None for a Cloud API
    number (no message info at Meta) or a channel that is gone."""
    try:
        channel = channels.channel_cached(channel_key)
    except Channel.DoesNotExist:
        return None
    if channel.is_cloudapi:
        return None
    return given or channels.client_for(channel)


def _with_channel(messages):
    return messages.annotate(channel_key=F("conversation__channel_id"))


def sending_sweep(*, client=None, before) -> int:
    stuck = _with_channel(Message.objects.filter(status=Status.SENDING, sending_at__lt=before))
    done = 0
    for message in stuck[:BATCH]:
        asker = info_client(message.channel_key, given=client)
        known = message.provider_msg_id and asker and sending_resolve(message, client=asker)
        interrupted = _("el envío se interrumpió")
        done += bool(known or message_unconfirmed(message, interrupted))
    return done


def unconfirmed_sweep(*, client=None, before) -> int:
    """Unconfirmed sends: settled by message info where the id is known (WaSender rows);
    past the wait with no evidence, unknown."""
    waiting = Message.objects.filter(status=Status.UNCONFIRMED).order_by("sending_at")
    done = 0
    cloudapi = Channel.objects.filter(provider=Channel.Provider.CLOUDAPI).values("key")
    askable = waiting.exclude(provider_msg_id=None).exclude(conversation__channel_id__in=cloudapi)
    for message in _with_channel(askable)[:BATCH]:
        asker = info_client(message.channel_key, given=client)
        done += bool(asker) and sending_resolve(message, client=asker)
    for message in waiting.filter(sending_at__lt=before)[:BATCH]:
        done += message_unknown(message)
    return done


def sending_resolve(message: Message, *, client) -> bool:
    """Ask WaSender what became of a send whose id we know; False when it cannot say."""
    if message.provider_msg_id is None:  # callers pass rows with an id only
        return False
    try:
        info = client.message_info(message.provider_msg_id)
    except ProviderError as error:
        logger.warning("message info for %s failed: %s", message.id, error)
        return False
    status = INFO_STATUS.get(info.status, Status.SENT)
    fields = {"status": status, STAMP[status]: timezone.now()}
    if status == Status.FAILED:
        fields["failure_reason"] = _("WhatsApp rechazó el mensaje.")
    unsettled = [Status.SENDING, Status.UNCONFIRMED]
    updated = Message.objects.filter(id=message.id, status__in=unsettled).update(**fields)
    if updated and info.wa_id:
        # The intake's link merges the echo row the webhook may already have stored.
        with transaction.atomic():
            message_wa_id_link(provider_msg_id=message.provider_msg_id, wa_id=info.wa_id)
    if updated:
        status_publish(message, status)
    return bool(updated)


def message_unknown(message: Message) -> bool:
    minutes = max(round(settings.SEND_UNCONFIRMED_SECONDS / 60), 1)
    reason = _(
        "Estado desconocido: WhatsApp no confirmó el envío en %(minutes)s min; no se reenvió "
        "para evitar duplicados (el cliente pudo recibirlo)."
    ) % {"minutes": minutes}
    updated = Message.objects.filter(id=message.id, status=Status.UNCONFIRMED).update(
        status=Status.UNKNOWN, failure_reason=reason[:300]
    )
    if updated:
        status_publish(message, Status.UNKNOWN)
    return bool(updated)


def queued_sweep(*, before) -> int:
    # The last sign of life is the creation, the due time or the last attempt (retries wait
    # up to SEND_RETRY_MAX_SECONDS, so keep SEND_STUCK_QUEUED_SECONDS above it).
    stuck = Message.objects.filter(
        Q(sending_at__isnull=True) | Q(sending_at__lt=before),
        Q(scheduled_for__isnull=True) | Q(scheduled_for__lt=before),
        status=Status.QUEUED,
        created_at__lt=before,
    ).order_by("created_at")
    ids = list(stuck.values_list("id", flat=True)[:BATCH])
    for message_id in ids:
        message_enqueue(message_id)
    return len(ids)


def scheduled_promote(*, now) -> int:
    due = Message.objects.filter(status=Status.SCHEDULED, scheduled_for__lte=now)
    promoted = 0
    for message in due.order_by("scheduled_for")[:BATCH]:
        if Message.objects.filter(id=message.id, status=Status.SCHEDULED).update(
            status=Status.QUEUED
        ):
            status_publish(message, Status.QUEUED)
            message_enqueue(message.id)
            promoted += 1
    return promoted
