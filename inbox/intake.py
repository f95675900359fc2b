"""Webhook intake: a WebhookEvent is parsed and applied in one transaction.

A fresh event is applied in the request that brought it, stored in the same commit
(webhook_event_receive): the live inbox hears of a message milliseconds after WaSender sent
it. When this process is busy (another webhook in hand: a burst), the raw body is committed
alone and a worker applies it (webhook_event_accept): WaSender asks for a quick 200, and one
web process then acknowledges bursts at close to the rate of a bare insert. The worker takes
those raw events in batches (webhook_events_apply), in a few statements per batch, so that it
keeps up with what the web processes acknowledge. From the commit on, nothing is lost.
Processing is idempotent, so a retry after a crash or a failure is always safe. Outcomes:
- processed: applied (or already applied: a duplicate delivery);
- ignored: nothing to do, with the reason (unreadable, a group, an unknown event...);
- pending: it names a message we do not know yet (a status before message.sent); retried with
  backoff for PENDING_WINDOW, then ignored;
- failed: an exception; retried with backoff up to MAX_ATTEMPTS.
"""

import logging
import threading
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

import dramatiq
from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.utils import timezone
from dramatiq_crontab import interval

from chatdesk.bulk import insert_select
from customers.phones import InvalidPhone, phone_normalize_reported
from customers.services import customer_get_or_create_reported
from inbox import channels, services
from inbox.media import MEDIA_MAX_BYTES, media_download
from inbox.models import DEFAULT_CHANNEL, Channel, Message, WebhookEvent
from inbox.services import conversation_get_or_create
from provider.cloudapi.codes import MARKETING_CAP
from provider.records import (
    Envelope,
    IgnoredEvent,
    MessagesEvent,
    ParseError,
    SentEvent,
    SessionEvent,
    StatusEvent,
    StatusUpdate,
    TemplateStatusEvent,
    WaMessage,
)
from provider.wasender import payloads as wasender_payloads

log = logging.getLogger(__name__)

State = WebhookEvent.State
PENDING_WINDOW = timedelta(minutes=10)
MAX_ATTEMPTS = 12
RETRY_BASE_SECONDS = 5.0
RETRY_MAX_SECONDS = 3600.0
# A stored event that nobody finished (the process died mid-request) is due again after this;
# a claimed retry holds the event this long.
STALE_AFTER = timedelta(seconds=60)
LEASE = timedelta(seconds=120)
ERROR_REASON = "WhatsApp informó un error al entregar el mensaje."
DUPLICATE = "ya registrado"


@dataclass(frozen=True)
class Outcome:
    state: str
    note: str = ""


def _processed(note: str = "") -> Outcome:
    return Outcome(State.PROCESSED, note)


def _ignored(note: str) -> Outcome:
    return Outcome(State.IGNORED, note)


def _pending(note: str) -> Outcome:
    return Outcome(State.PENDING, note)


def retry_delay(attempts: int) -> float:
    return min(RETRY_BASE_SECONDS * 2 ** max(attempts - 1, 0), RETRY_MAX_SECONDS)


# --- storing and running events ----------------------------------------------------------------


def _event_name(payload: dict) -> str:
    name = payload.get("event")
    return name[:64] if isinstance(name, str) else ""


def webhook_event_store(
    *, payload: dict, provider: str = Channel.Provider.WASENDER
) -> WebhookEvent:
    """The raw event alone, pending: due for the sweep after STALE_AFTER if nobody finishes it."""
    return WebhookEvent.objects.create(
        event=_event_name(payload),
        provider=provider,
        payload=payload,
        retry_at=timezone.now() + STALE_AFTER,
    )


class _Load:
    """How many webhooks this web process is handling now. Shared by the request threads.
    Self-regulating: when applying webhooks in their requests makes them overlap, the
    overlapping ones are stored raw, which is cheaper, until they stop overlapping."""

    def __init__(self):
        self.lock, self.in_hand = threading.Lock(), 0

    @contextmanager
    def enter(self):
        """Yields True when the process is busy: another webhook in hand."""
        with self.lock:
            self.in_hand += 1
            busy = self.in_hand > 1
        try:
            yield busy
        finally:
            with self.lock:
                self.in_hand -= 1


_load = _Load()


def webhook_event_accept(
    *, payload: dict, provider: str = Channel.Provider.WASENDER
) -> WebhookEvent:
    """The webhook's entry: applied now when this process is free (or deferring is off),
    otherwise committed raw and handed to a worker (the sweep is the safety net)."""
    with _load.enter() as busy:
        if not settings.WEBHOOK_DEFER_WHEN_BUSY or not busy:
            return webhook_event_receive(payload=payload, provider=provider)
        event = webhook_event_store(payload=payload, provider=provider)
    _process_enqueue(event.pk)
    return event


def webhook_event_receive(
    *, payload: dict, now: datetime | None = None, provider: str = Channel.Provider.WASENDER
) -> WebhookEvent:
    """A fresh event, applied and stored in one transaction: one commit before the 200. If
    applying it fails, that transaction is rolled back and the raw event is stored alone,
    failed, for a retry: what reached us is kept either way. Raises only when even that cannot
    be stored (the database is down: the sender gets a 5xx)."""
    now = now or timezone.now()
    event = WebhookEvent(
        event=_event_name(payload), provider=provider, payload=payload, received_at=now
    )
    try:
        if _known_inbound_alone(event, now):
            return event
        with transaction.atomic():
            _finish(event, _outcome(event), now)
    except Exception as exc:
        log.exception("webhook event not applied; stored for a retry")
        _store_failed(event, exc, now)
    return event


def _known_inbound_alone(event: WebhookEvent, now: datetime) -> bool:
    """The common webhook, in one statement and no transaction around it (PostgreSQL): one
    customer's message on a conversation we know. The message (ON CONFLICT on its wa_id), the
    conversation's note, the pending reaction and the raw event, processed, commit together
    in one round trip where the general path takes nine; the push leaves right after. False
    (nothing written) for anything else, which takes the general path."""
    if connection.vendor != "postgresql" or (known := _known_candidate(event)) is None:
        return False
    m, e164, channel, at = known
    # Late import: outbound's rules import inbox (the one call up a floor, ARCHITECTURE.md).
    from outbound.rules import inbound_react_enqueue, inbound_react_later_sql

    event.state, event.processed_at, event.retry_at, event.error = State.PROCESSED, now, None, ""
    raw_event = insert_select(
        event,
        source="conv",
        exprs={"error": ("CASE WHEN EXISTS (SELECT 1 FROM m) THEN '' ELSE %s END", [DUPLICATE])},
    )
    found = _known_store(
        m,
        e164,
        channel,
        at,
        also=[("raw_event", *raw_event), ("reaction", *inbound_react_later_sql("m"))],
    )
    if found is None:
        event.state, event.processed_at = State.PENDING, None
        return False
    message, created, (event.pk, _reaction) = found
    event._state.adding, event._state.db = False, connection.alias
    if not created:
        event.error = DUPLICATE
        return True
    # Committed: what follows must not fail the webhook (its event says processed).
    try:
        customer = message.conversation.customer
        services.customer_whatsapp_learn(customer=customer, name=m.push_name, lid=m.lid)
    except DatabaseError:
        log.exception("customer %s: name or LID not learned", message.conversation.customer.pk)
    if message.media_source and message.kind in MEDIA_MAX_BYTES:
        transaction.on_commit(lambda: media_download.send(message.pk), robust=True)
    inbound_react_enqueue(message.pk)
    return True


def _wasender_envelope(event: WebhookEvent) -> Envelope | None:
    """The one thing a WaSender webhook says (it sends one per webhook), or None for another
    provider's event or one that does not parse (the general path records why)."""
    if event.provider != Channel.Provider.WASENDER:
        return None
    try:
        (envelope,) = _envelopes(event)
    except (ParseError, ValueError):
        return None
    return envelope


def _known_candidate(event: WebhookEvent) -> tuple[WaMessage, str, str, datetime] | None:
    """(the message, its sender's E.164 phone, the channel, the webhook's time) when the event
    is one customer's WaSender message, the shape the one-statement path stores; else None."""
    if (envelope := _wasender_envelope(event)) is None:
        return None
    content = envelope.content
    if not isinstance(content, MessagesEvent) or len(content.messages) != 1:
        return None
    m = content.messages[0]
    if m.skip or m.from_me or not m.phone:
        return None
    channel = _channel_key(event.provider, envelope)
    try:
        e164, _valid = phone_normalize_reported(m.phone)
    except InvalidPhone:
        return None
    if channel is None:
        return None
    return m, e164, channel, envelope.at or event.received_at


def _store_failed(event: WebhookEvent, exc: Exception, now: datetime) -> None:
    """The raw event alone, failed once, its retry on the way."""
    event.pk, event.state, event.attempts, event.processed_at = None, State.FAILED, 1, None
    delay = retry_delay(event.attempts)
    event.retry_at = now + timedelta(seconds=delay)
    event.error = f"{type(exc).__name__}: {exc}"[:2000]
    event.save()
    _retry_enqueue(event.pk, delay)


def webhook_event_handle(event_id: int, *, now: datetime | None = None) -> str:
    """Process one stored event; never raises (a failure is recorded on the event and retried)."""
    now = now or timezone.now()
    try:
        return _process(event_id, now)
    except Exception as exc:
        log.exception("webhook event %s failed", event_id)
        return _fail(event_id, exc, now)


def webhook_event_retry(event_id: int, *, now: datetime | None = None) -> bool:
    """Claim a due event (a conditional update: one worker wins) and process it again."""
    now = now or timezone.now()
    claimed = WebhookEvent.objects.filter(
        pk=event_id, state__in=[State.PENDING, State.FAILED], retry_at__lte=now
    ).update(retry_at=now + LEASE)
    if claimed:
        webhook_event_handle(event_id, now=now)
    return bool(claimed)


def webhook_events_retry_due(*, now: datetime | None = None, limit: int = 200) -> int:
    now = now or timezone.now()
    due = WebhookEvent.objects.filter(
        state__in=[State.PENDING, State.FAILED], retry_at__lte=now
    ).order_by("retry_at")
    ids = list(due.values_list("pk", flat=True)[:limit])
    return sum(webhook_event_retry(pk, now=now) for pk in ids)


def _process(event_id: int, now: datetime) -> str:
    with transaction.atomic():
        event = WebhookEvent.objects.select_for_update().filter(pk=event_id).first()
        if event is None or event.state in (State.PROCESSED, State.IGNORED):
            return event.state if event else State.IGNORED
        outcome = _outcome(event)
        _finish(event, outcome, now)
    return event.state


def _finish(event: WebhookEvent, outcome: Outcome, now: datetime) -> None:
    """Record the outcome on the event (inserting a fresh one), and schedule its retry."""
    retry = _settle(event, outcome, now)
    if event.pk is None:
        event.save()
    else:
        event.save(update_fields=SETTLED_FIELDS)
    if retry is not None:
        _retry_enqueue(event.pk, retry)


SETTLED_FIELDS = ["state", "error", "attempts", "processed_at", "retry_at"]


def _settle(event: WebhookEvent, outcome: Outcome, now: datetime) -> float | None:
    """The outcome on the event's fields (not saved); answers the retry's delay, if any."""
    event.error = outcome.note[:2000]
    retry = None
    if outcome.state != State.PENDING:
        event.state, event.processed_at, event.retry_at = outcome.state, now, None
    elif now - event.received_at > PENDING_WINDOW:
        event.state, event.processed_at, event.retry_at = State.IGNORED, now, None
        event.error = f"{outcome.note} (sin novedades tras {PENDING_WINDOW})"[:2000]
    else:
        event.state, event.attempts = State.PENDING, event.attempts + 1
        retry = retry_delay(event.attempts)
        event.retry_at = now + timedelta(seconds=retry)
    return retry


def _fail(event_id: int, exc: Exception, now: datetime) -> str:
    try:
        event = WebhookEvent.objects.get(pk=event_id)
        attempts = event.attempts + 1
        delay = retry_delay(attempts)
        retry_at = now + timedelta(seconds=delay) if attempts < MAX_ATTEMPTS else None
        WebhookEvent.objects.filter(pk=event_id, state__in=[State.PENDING, State.FAILED]).update(
            state=State.FAILED,
            attempts=attempts,
            retry_at=retry_at,
            error=f"{type(exc).__name__}: {exc}"[:2000],
        )
        if retry_at:
            _retry_enqueue(event_id, delay)
    except DatabaseError:
        # The event stays pending with its stale-after retry time: the sweep picks it up.
        log.exception("could not record the failure of webhook event %s", event_id)
    return State.FAILED


def _process_enqueue(event_id: int) -> None:
    try:
        webhook_event_process.send(event_id)
    except Exception:  # the broker is down: the event is committed, the sweep will find it
        log.exception("webhook event %s not queued; the sweep will process it", event_id)


def _retry_enqueue(event_id: int, delay_seconds: float) -> None:
    transaction.on_commit(
        lambda: webhook_event_retry_later.send_with_options(
            args=(event_id,), delay=int(delay_seconds * 1000)
        ),
        robust=True,
    )


# --- what an event means ----------------------------------------------------------------------


def _envelopes(event: WebhookEvent) -> list[Envelope]:
    """What the event says, in its provider's shape: WaSender sends one thing per webhook,
    Meta batches several (entries, changes, messages and statuses). Parsed once per event
    object: a webhook the one-statement path declines (a status, a new customer) is read
    again by the general path."""
    try:
        return event._envelopes  # type: ignore[attr-defined]
    except AttributeError:
        pass
    if event.provider == Channel.Provider.CLOUDAPI:
        from provider.cloudapi import payloads as cloudapi_payloads

        envelopes = list(cloudapi_payloads.event_parse(event.payload))
    else:
        envelopes = [wasender_payloads.event_parse(event.payload)]
    event._envelopes = envelopes  # type: ignore[attr-defined]
    return envelopes


def _outcome(event: WebhookEvent) -> Outcome:
    try:
        envelopes = _envelopes(event)
    except ParseError as exc:
        return _ignored(f"No se pudo leer el evento: {exc}")
    if not envelopes:
        return _ignored("evento sin contenido")
    return _combine([_envelope_outcome(event, envelope) for envelope in envelopes])


def _channel_key(provider: str, envelope: Envelope) -> str | None:
    """The channel the envelope belongs to: Meta names its number (phone_number_id); a
    WaSender webhook is the default number's unless a WaSender channel names its session."""
    account = getattr(envelope, "account", "") or ""
    if provider == Channel.Provider.CLOUDAPI:
        channel = channels.channel_by_account(provider, account)
        return channel.key if channel else None
    if envelope.session and envelope.session != DEFAULT_CHANNEL:
        channel = channels.channel_by_account(provider, envelope.session)
        if channel:
            return channel.key
    return DEFAULT_CHANNEL


def _envelope_outcome(event: WebhookEvent, envelope: Envelope) -> Outcome:
    at = envelope.at or event.received_at
    content = envelope.content
    if isinstance(content, MessagesEvent):
        channel = _channel_key(event.provider, envelope)
        if channel is None:
            account = getattr(envelope, "account", "")
            return _ignored(f"número de WhatsApp sin canal configurado ({account[:40]})")
        return _combine([_message(m, envelope, at, channel) for m in content.messages])
    if isinstance(content, StatusEvent):
        # Statuses need no channel, but on a Cloud API number one may settle a lost send.
        meta = event.provider == Channel.Provider.CLOUDAPI
        channel = _channel_key(event.provider, envelope) if meta else None
        return _combine([_status(u, at, channel) for u in content.updates])
    if isinstance(content, SentEvent):
        return _sent(content)
    if isinstance(content, SessionEvent):
        services.session_state_set(session=envelope.session, status=content.status, at=at)
        return _processed()
    if isinstance(content, TemplateStatusEvent):
        from outbound.rules import template_status_react  # the seam (ARCHITECTURE.md)

        return _processed(template_status_react(content))
    assert isinstance(content, IgnoredEvent)
    return _ignored(content.reason)


def _combine(outcomes: list[Outcome]) -> Outcome:
    note = "; ".join(o.note for o in outcomes if o.note)
    states = {o.state for o in outcomes}
    for state in (State.PENDING, State.PROCESSED):
        if state in states:
            return Outcome(state, note)
    return _ignored(note)


def _customer(m: WaMessage):
    """By phone when the payload has one (learning the LID beside it), else by a known LID.
    Answers (customer, reason): no customer is created for a message we will not store."""
    name = "" if m.from_me else m.push_name  # on our own messages pushName is our name
    if m.phone:
        try:
            customer, _created = customer_get_or_create_reported(phone=m.phone, name=name)
        except InvalidPhone:
            customer = None
        if customer:
            services.customer_whatsapp_learn(customer=customer, name=name, lid=m.lid)
            return customer, ""
    customer = services.customer_by_lid(m.lid)
    if customer:
        services.customer_whatsapp_learn(customer=customer, name=name)
        return customer, ""
    if m.lid:
        return None, f"remitente solo con LID desconocido ({m.lid}): no se puede saber el número"
    if m.phone:
        return None, f"remitente con un número imposible ({m.phone[:20]})"
    return None, "mensaje sin remitente"


def _known_store(m: WaMessage, e164: str, channel: str, at: datetime, also: Sequence = ()):
    """services.message_inbound_create_known for this message (`at` when it has no time of its
    own): both paths of a known customer's message store it alike."""
    return services.message_inbound_create_known(
        phone=e164,
        channel=channel,
        wa_id=m.wa_id,
        kind=m.kind,
        body=m.body,
        created_at=m.at or at,
        media=m.media,
        media_source=m.source,
        also=also,
    )


def _known_inbound(m: WaMessage, at: datetime, channel: str) -> Outcome | None:
    """A customer's message to the conversation they already have (someone who wrote
    before): the path every such message takes before the live push. The lookup, the insert
    (the unique wa_id settles a duplicate, no lookup first) and the conversation's note are one
    statement (services.message_inbound_create_known); only a stored message teaches us the
    sender's name and LID. None when there is no such conversation."""
    if not m.phone:
        return None
    try:
        e164, _valid = phone_normalize_reported(m.phone)
    except InvalidPhone:
        return None
    found = _known_store(m, e164, channel, at)
    if found is None:
        return None
    message, created, _ = found
    if not created:
        return _processed("ya registrado")
    customer = message.conversation.customer
    services.customer_whatsapp_learn(customer=customer, name=m.push_name, lid=m.lid)
    _after_inbound(message)
    return _processed()


def _message(
    m: WaMessage, envelope: Envelope, at: datetime, channel: str = DEFAULT_CHANNEL
) -> Outcome:
    if m.skip:
        return _ignored(m.skip)
    if not m.from_me and (outcome := _known_inbound(m, at, channel)):
        return outcome
    # Three columns, not the whole row: this runs for every message webhook.
    existing = (
        Message.objects.filter(wa_id=m.wa_id).values("conversation_id", "kind", "body").first()
    )
    if existing:  # a duplicate delivery, or the echo of a send already linked
        if m.from_me:
            # The echo carries WhatsApp's time for our send: the conversation ends up the same
            # whether the echo came before message.sent (stored, then merged) or after.
            services.conversation_last_message_note(
                conversation_id=existing["conversation_id"],
                at=m.at or at,
                preview=services.message_preview(kind=existing["kind"], body=existing["body"]),
            )
        return _processed("ya registrado")
    customer, reason = _customer(m)
    if customer is None:
        return _ignored(reason)
    conversation = conversation_get_or_create(customer=customer, channel=channel)
    fields = {
        "conversation": conversation,
        "wa_id": m.wa_id,
        "kind": m.kind,
        "body": m.body,
        "created_at": m.at or at,
        "media": m.media,
    }
    if m.from_me:
        linked = services.outbound_echo_link(
            conversation_id=conversation.pk, wa_id=m.wa_id, kind=m.kind, body=m.body, at=m.at or at
        )
        if linked:
            return _processed(f"eco de nuestro envío {linked.pk}")
        services.message_phone_create(**fields)
        return _processed()
    message, created = services.message_inbound_create(**fields, media_source=m.source)
    if created:
        _after_inbound(message)
    return _processed()


def _after_inbound(message: Message) -> None:
    # Late import: outbound's rules import inbox (the one call up a floor, ARCHITECTURE.md).
    from outbound.rules import inbound_react_later

    if message.media_source and message.kind in MEDIA_MAX_BYTES:
        transaction.on_commit(lambda: media_download.send(message.pk), robust=True)
    # The one call against the layers: outbound's rules (auto-replies, opt-out) react.
    inbound_react_later(message=message)


def _status(update: StatusUpdate, at: datetime, channel: str | None = None) -> Outcome:
    if update.status == "pending":
        return _processed("estado pendiente: nada que hacer")
    if not Message.objects.filter(wa_id=update.wa_id).exists():
        if not update.from_me:
            return _ignored(f"estado de un mensaje ajeno desconocido ({update.wa_id})")
        if channel and (
            linked := services.outbound_status_link(
                channel=channel,
                recipient=update.recipient,
                wa_id=update.wa_id,
                status=update.status,
                at=update.at or at,
            )
        ):
            return _processed(f"estado de nuestro envío {linked.pk} sin confirmar")
        return _pending(f"mensaje {update.wa_id} aún desconocido")
    if update.status in ("error", "failed"):
        reason = getattr(update, "error_reason", "") or ERROR_REASON
        failed = services.message_status_fail(wa_id=update.wa_id, at=at, reason=reason)
        if failed and update.error_code == MARKETING_CAP:
            # Meta held a marketing template: outbound schedules a new try (through the
            # intake's one seam up a floor, outbound.rules).
            from outbound.rules import marketing_cap_react

            marketing_cap_react(wa_id=update.wa_id)
    else:
        services.message_status_advance(wa_id=update.wa_id, status=update.status, at=at)
    return _processed()


def _sent(sent: SentEvent) -> Outcome:
    result = services.message_wa_id_link(
        provider_msg_id=sent.msg_id,
        wa_id=sent.wa_id,
        conversation_id=services.conversation_id_by_phone(sent.phone),
    )
    if result == "unknown":
        return _pending(f"envío {sent.msg_id} aún desconocido")
    if result == "conflict":
        return _ignored(f"el envío {sent.msg_id} ya está ligado a otro mensaje de WhatsApp")
    return _processed()


# --- the worker's batches ---------------------------------------------------------------------

BATCH_SIZE = 50
STATUS_STEPS = services.STATUS_STEPS


@dataclass(frozen=True)
class _Statuses:
    """A WaSender status webhook whose every update only moves a send forward (or is
    "pending"): applied with the batch's other statuses, in two statements."""

    updates: list[StatusUpdate]
    at: datetime


def webhook_events_apply(*, now: datetime | None = None, limit: int = BATCH_SIZE) -> int:
    """The raw events busy web processes stored (fresh: pending, never tried), up to `limit`
    of the oldest, claimed with SKIP LOCKED (two workers never take the same event, and none
    waits behind another's batch) and applied in one transaction: known customers' messages
    one statement each, statuses in two for all, the rest by the general path. If anything
    fails, the batch is rolled back whole (nothing of it was applied, nothing published) and
    its events are applied one by one as before, so a bad event is recorded failed alone.
    Answers how many events were claimed. PostgreSQL only (webhook_event_process)."""
    now = now or timezone.now()
    claimed: list[int] = []
    try:
        with transaction.atomic():
            events = list(
                WebhookEvent.objects.select_for_update(skip_locked=True)
                .filter(state=State.PENDING, attempts=0)
                .order_by("retry_at", "pk")[:limit]
            )
            claimed = [event.pk for event in events]
            _batch_apply(events, now)
    except Exception:
        log.exception("webhook batch from event %s failed; one by one", claimed[:1])
        for pk in claimed:
            webhook_event_handle(pk, now=now)
    return len(claimed)


def _batch_apply(events: list[WebhookEvent], now: datetime) -> None:
    """In id order, statuses gathered until something else must see them applied. When
    nothing in the batch takes the general path, messages go first, by sender, and statuses
    last: every batch then locks conversations and messages in the same order."""
    kinds = [(event, _batch_kind(event)) for event in events]
    if all(kind is not None for _, kind in kinds):
        kinds.sort(key=lambda pair: (isinstance(pair[1], _Statuses), _sender(pair[1])))
    outcomes: list[tuple[WebhookEvent, Outcome]] = []
    statuses: list[tuple[WebhookEvent, _Statuses]] = []
    for event, kind in kinds:
        if isinstance(kind, _Statuses):
            statuses.append((event, kind))
            continue
        outcomes += _statuses_apply(statuses)
        statuses = []
        outcome = _known_batched(*kind) if kind else None
        outcomes.append((event, outcome or _outcome(event)))
    outcomes += _statuses_apply(statuses)
    for event, outcome in outcomes:
        if (retry := _settle(event, outcome, now)) is not None:
            _retry_enqueue(event.pk, retry)
    WebhookEvent.objects.bulk_update([event for event, _ in outcomes], SETTLED_FIELDS)


def _sender(kind) -> tuple[str, str]:
    return ("", "") if isinstance(kind, _Statuses) else (kind[2], kind[1])


def _batch_kind(event: WebhookEvent):
    """What batches this event: a known customer's message ((m, e164, channel, at), a
    statement of its own), statuses (_Statuses), or None for the general path."""
    if (known := _known_candidate(event)) is not None:
        return known
    if (envelope := _wasender_envelope(event)) is None:
        return None
    content = envelope.content
    if not isinstance(content, StatusEvent) or not content.updates:
        return None
    if any(u.status != "pending" and u.status not in STATUS_STEPS for u in content.updates):
        return None  # a failure: its order against the steps matters, the general path
    return _Statuses(list(content.updates), envelope.at or event.received_at)


def _known_batched(m: WaMessage, e164: str, channel: str, at: datetime) -> Outcome | None:
    """_known_inbound_alone inside the batch's transaction (the raw event is updated with
    the others, not inserted); None when the sender has no conversation here."""
    from outbound.rules import inbound_react_enqueue, inbound_react_later_sql  # the seam

    found = _known_store(m, e164, channel, at, also=[("reaction", *inbound_react_later_sql("m"))])
    if found is None:
        return None
    message, created, _ = found
    if not created:
        return _processed(DUPLICATE)
    customer = message.conversation.customer
    services.customer_whatsapp_learn(customer=customer, name=m.push_name, lid=m.lid)
    if message.media_source and message.kind in MEDIA_MAX_BYTES:
        transaction.on_commit(lambda: media_download.send(message.pk), robust=True)
    inbound_react_enqueue(message.pk)
    return _processed()


def _statuses_apply(
    statuses: list[tuple[WebhookEvent, _Statuses]],
) -> list[tuple[WebhookEvent, Outcome]]:
    """_status for many webhooks at once: each message moves to the furthest step reported
    for it, each step keeping the earliest time reported for it or a later step (what one by
    one gives, in any order). A status of a message not stored yet waits, as _status's."""
    steps: dict[str, tuple[str, dict[str, datetime]]] = {}
    for _, kind in statuses:
        for u in kind.updates:
            if u.status == "pending":
                continue
            furthest, times = steps.get(u.wa_id, (u.status, {}))
            if STATUS_STEPS.index(u.status) > STATUS_STEPS.index(furthest):
                furthest = u.status
            for step in STATUS_STEPS[: STATUS_STEPS.index(u.status) + 1]:
                times[step] = min(times.get(step, kind.at), kind.at)
            steps[u.wa_id] = (furthest, times)
    found = services.message_statuses_advance(steps=steps) if steps else set()
    return [
        (event, _combine([_status_found(u, found) for u in kind.updates]))
        for event, kind in statuses
    ]


def _status_found(update: StatusUpdate, found: set[str]) -> Outcome:
    if update.status == "pending":
        return _processed("estado pendiente: nada que hacer")
    if update.wa_id in found:
        return _processed()
    if not update.from_me:
        return _ignored(f"estado de un mensaje ajeno desconocido ({update.wa_id})")
    return _pending(f"mensaje {update.wa_id} aún desconocido")


# --- the intake's actors (the worker's side of this module) -----------------------------------


@interval(seconds=30)
@dramatiq.actor(actor_name="inbox_webhook_events_sweep", max_retries=0)
def webhook_events_sweep() -> None:
    """Every due pending or failed event (and any a dead process left half-done)."""
    webhook_events_retry_due()


@dramatiq.actor(actor_name="inbox_webhook_event_process", queue_name="intake", max_retries=0)
def webhook_event_process(event_id: int) -> None:
    """An event the web process stored during a burst, without applying it: on PostgreSQL,
    with a batch of the others waiting (this one among them, unless another worker has taken
    it: then it is that worker's to apply)."""
    if connection.vendor != "postgresql":
        webhook_event_handle(event_id)
        return
    webhook_events_apply()


@dramatiq.actor(actor_name="inbox_webhook_event_retry", max_retries=0)
def webhook_event_retry_later(event_id: int) -> None:
    """Enqueued with a delay right after a failure; the sweep is the safety net."""
    webhook_event_retry(event_id)
