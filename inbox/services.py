"""Writes to conversations and messages (the webhook intake and the send pipeline use these)."""

import functools
from collections.abc import Sequence
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.db import IntegrityError, connection, transaction
from django.db.models import Case, DateTimeField, F, Q, Value, When
from django.utils import timezone

from customers.models import Customer
from inbox.events import (
    EventType,
    conversation_updated_publish,
    events_publish,
    message_created_publish,
    message_status_publish,
)
from inbox.models import DEFAULT_CHANNEL, Conversation, Message, SessionState
from inbox.rows import list_fragments


def conversation_get_or_create(
    *, customer: Customer, channel: str = DEFAULT_CHANNEL
) -> Conversation:
    """The customer's conversation on this channel (by its key)."""
    conversation = Conversation.objects.filter(customer=customer, channel_id=channel).first()
    if conversation:
        return conversation
    try:
        with transaction.atomic():
            return Conversation.objects.create(customer=customer, channel_id=channel)
    except IntegrityError:
        return Conversation.objects.get(customer=customer, channel_id=channel)


def conversation_id_by_phone(phone: str, channel: str = DEFAULT_CHANNEL) -> int | None:
    """The customer's conversation on this number, by the digits WhatsApp gives."""
    if not phone:
        return None
    return (
        Conversation.objects.filter(customer__phone="+" + phone, channel_id=channel)
        .values_list("pk", flat=True)
        .first()
    )


# --- the webhook intake's writers ---------------------------------------------------------------
# Every writer here is safe to run twice and in any order: rows are deduplicated by the unique
# wa_id, statuses move with conditional UPDATEs, so repeated or late webhooks are no-ops.

STATUS_STEPS: list[str] = list(Message.STEPS)
# Outbound states a status webhook may lift to a step: the echo may link a row still waiting
# for the send's answer ("sending"), or whose answer was lost ("unconfirmed"), or that the
# sweeper gave up on ("unknown").
BEFORE_STEPS = list(Message.UNSETTLED_STATUSES)
FAILABLE = [*BEFORE_STEPS, Message.Status.SENT]
# Our own send's echo is matched to its row by WhatsApp's id when known, else by recipient,
# kind and text: the row must still lack its WhatsApp id, be in one of these states, and have
# been claimed for sending within ECHO_WINDOW of the echo's time.
AWAITING_ECHO = [*BEFORE_STEPS, Message.Status.SENT]
ECHO_WINDOW = timedelta(minutes=30)
ECHO_CANDIDATES = 20
# Meta echoes none of our sends: a status for an id we never learned settles an ambiguous send
# of ours (outbound_status_link) when the rules there make the match certain.
STATUS_LINK_STEPS = ("sent", "delivered", "read")
STATUS_LINK_FROM = [Message.Status.UNCONFIRMED, Message.Status.UNKNOWN]
STATUS_LINK_WINDOW = ECHO_WINDOW
STATUS_LINK_SKEW = timedelta(minutes=1)


def message_preview(*, kind: str, body: str) -> str:
    text = " ".join(body.split())
    return (text or f"[{Message.Kind(kind).label}]")[:160]


def customer_by_lid(lid: str) -> Customer | None:
    return Customer.objects.filter(whatsapp_lid=lid).first() if lid else None


def customer_whatsapp_learn(*, customer: Customer, name: str = "", lid: str = "") -> None:
    """Fill what WhatsApp tells us and the book lacks: an empty name from pushName, and the
    first LID seen beside the phone (so later LID-only messages find this customer).
    TODO(customers): belongs in customers.services; there is no service for it yet."""
    if name and not customer.name:
        Customer.objects.filter(pk=customer.pk, name="").update(name=name[:120])
    if lid and not customer.whatsapp_lid:
        try:
            with transaction.atomic():
                Customer.objects.filter(pk=customer.pk, whatsapp_lid__isnull=True).update(
                    whatsapp_lid=lid[:64]
                )
        except IntegrityError:
            pass  # that LID already belongs to another customer: the first mapping stays


def _message_create_once(*, wa_id: str, **fields) -> tuple[Message, bool]:
    """One row per WhatsApp message: the unique wa_id decides, even between racing workers.
    The callers have looked for the wa_id already; the insert is what settles a race."""
    try:
        with transaction.atomic():
            return Message.objects.create(wa_id=wa_id, **fields), True
    except IntegrityError:
        return Message.objects.get(wa_id=wa_id), False


def _media_fields(media, source: dict | None) -> dict:
    if media is None:
        return {}
    url = media.url if media.url.startswith("https://") and len(media.url) <= 1000 else ""
    return {
        "media_url": url,
        "media_mime": media.mimetype[:100],
        "media_filename": media.file_name[:255],
        "media_size": media.file_length if 0 <= (media.file_length or 0) < 2**62 else None,
        "media_source": source,
    }


def message_inbound_create(
    *,
    conversation: Conversation,
    wa_id: str,
    kind: str,
    body: str,
    created_at: datetime,
    media=None,
    media_source: dict | None = None,
) -> tuple[Message, bool]:
    message, created = _message_create_once(
        wa_id=wa_id,
        conversation=conversation,
        direction=Message.Direction.IN,
        author_kind=Message.Author.CUSTOMER,
        status=Message.Status.RECEIVED,
        kind=kind,
        body=body,
        created_at=created_at,
        **_media_fields(media, media_source),
    )
    if created:
        conversation_inbound_note(
            conversation_id=conversation.pk,
            at=created_at,
            preview=message_preview(kind=kind, body=body),
        )
        message_created_publish(conversation_id=conversation.pk, message_id=message.pk)
    return message, created


def message_inbound_create_known(
    *,
    phone: str,
    channel: str,
    wa_id: str,
    kind: str,
    body: str,
    created_at: datetime,
    media=None,
    media_source: dict | None = None,
    also: Sequence[tuple[str, str, list]] = (),
) -> tuple[Message, bool, list] | None:
    """A customer's message to the conversation they already have on this number (by E.164
    phone), stored with the conversation's note in one statement on PostgreSQL: the lookup, the
    insert (ON CONFLICT on the unique wa_id: a duplicate, or a copy racing this one, is never
    stored twice, and no savepoint is needed) and message_inbound_create's conversation
    update, one round trip where they were five. The message comes back with its
    conversation and customer (their id, name and LID: what the intake learns from). None
    when the phone has no conversation on this number (the intake's general path).

    `also`: more rows stored by the same statement, [(name, INSERT ... RETURNING ... AS id,
    params)], each run only when the conversation exists and free to read `m` (the stored
    message: id, conversation_id; empty for a duplicate) and `conv` (the conversation). Their
    ids come back third, in order. Out of a transaction, the statement commits alone: the
    intake's one round trip (PostgreSQL only: elsewhere `also` must be empty)."""
    if connection.vendor != "postgresql":
        conversation = (
            Conversation.objects.select_related("customer")
            .filter(customer__phone=phone, channel_id=channel)
            .first()
        )
        if conversation is None:
            return None
        message, created = message_inbound_create(
            conversation=conversation,
            wa_id=wa_id,
            kind=kind,
            body=body,
            created_at=created_at,
            media=media,
            media_source=media_source,
        )
        message.conversation = conversation
        return message, created, []
    message = Message(
        wa_id=wa_id,
        direction=Message.Direction.IN,
        author_kind=Message.Author.CUSTOMER,
        status=Message.Status.RECEIVED,
        kind=kind,
        body=body,
        created_at=created_at,
        **_media_fields(media, media_source),
    )
    row = _inbound_insert(message, phone=phone, channel=channel, also=also)
    if row is None:
        return None
    message_id, conversation_id, customer_id, name, lid = row[:5]
    also_ids = list(row[5 : 5 + len(also)])
    customer = Customer(pk=customer_id, phone=phone, name=name, whatsapp_lid=lid)
    message.conversation = Conversation(pk=conversation_id, customer=customer, channel_id=channel)
    if message_id is None:
        return message, False, also_ids
    message.pk = message_id
    message._state.adding, message._state.db = False, connection.alias
    # The conversation as the statement left it, and its assignee: the list's row, rendered
    # here once (inbox/rows.py) instead of read again by every process's sockets.
    first, last, username, *columns = row[5 + len(also) :]
    names = [f.attname for f in Conversation._meta.concrete_fields]
    conversation = Conversation.from_db(connection.alias, names, columns)
    conversation.customer = customer
    if conversation.assignee_id is not None:
        conversation.assignee = get_user_model()(
            pk=conversation.assignee_id, first_name=first, last_name=last, username=username
        )
    message.conversation = conversation
    message_created_publish(
        conversation_id=conversation_id,
        message_id=message_id,
        fragments=list_fragments(message),
    )
    return message, True, also_ids


@functools.cache
def _inbound_insert_sql() -> tuple[str, tuple]:
    """The statement and the fields it inserts, made once per process (from the models)."""
    meta = Message._meta
    fields = tuple(f for f in meta.concrete_fields if f is not meta.pk and f.name != "conversation")
    quote = connection.ops.quote_name
    names = ", ".join(quote(str(f.column)) for f in fields)
    # Typed: in an INSERT ... SELECT a bare literal is text, whatever the column.
    values = ", ".join(f"CAST(%s AS {f.cast_db_type(connection)})" for f in fields)
    conversations = quote(Conversation._meta.db_table)
    returned = ", ".join(f"c.{quote(str(f.column))}" for f in Conversation._meta.concrete_fields)
    users = quote(get_user_model()._meta.db_table)
    sql = f"""
        WITH conv AS (
            SELECT c.id, cu.id AS customer_id, cu.name, cu.whatsapp_lid
            FROM {conversations} c
            JOIN {quote(Customer._meta.db_table)} cu ON cu.id = c.customer_id
            WHERE cu.phone = %s AND c.channel_id = %s
        ), m AS (
            INSERT INTO {quote(meta.db_table)} (conversation_id, {names})
            SELECT conv.id, {values} FROM conv
            ON CONFLICT (wa_id) DO NOTHING
            RETURNING id, conversation_id
        ), note AS (
            UPDATE {conversations} c SET
                status = %s,
                unread_count = c.unread_count + 1,
                last_message_at = CASE WHEN c.last_message_at IS NULL
                    OR c.last_message_at <= %s THEN %s ELSE c.last_message_at END,
                last_message_preview = CASE WHEN c.last_message_at IS NULL
                    OR c.last_message_at <= %s THEN %s ELSE c.last_message_preview END
            FROM m WHERE c.id = m.conversation_id
            RETURNING {returned}
        ){{also}}
        SELECT (SELECT id FROM m), conv.id, conv.customer_id, conv.name, conv.whatsapp_lid{{ids}},
            u.first_name, u.last_name, u.username, note.*
        FROM conv
        LEFT JOIN note ON true
        LEFT JOIN {users} u ON u.id = note.assignee_id
    """  # noqa: S608 (names from the models' metadata, values as parameters)
    return sql, fields


def _inbound_insert(
    message: Message, *, phone: str, channel: str, also: Sequence[tuple[str, str, list]] = ()
):
    """(message id or None for a duplicate, conversation id, customer id, name, LID, the ids
    of `also`), or None when there is no such conversation. The UPDATE is
    conversation_inbound_note's, run only when the insert stored a row."""
    sql, fields = _inbound_insert_sql()
    params = [f.get_db_prep_save(f.pre_save(message, True), connection) for f in fields]
    at = message.created_at
    preview = message_preview(kind=message.kind, body=message.body)[:160]
    extra = "".join(f", {name} AS ({statement})" for name, statement, _ in also)
    ids = "".join(f", (SELECT id FROM {name})" for name, _, _ in also)  # noqa: S608 (names from code)
    sql = sql.replace("{also}", extra).replace("{ids}", ids)
    note: list = [Conversation.Status.NEW, at, at, at, preview]
    also_params: list = [p for _, _, statement_params in also for p in statement_params]
    with connection.cursor() as cursor:
        cursor.execute(sql, [phone, channel, *params, *note, *also_params])
        return cursor.fetchone()


def _same_text(a: str, b: str) -> bool:
    return " ".join(a.split()) == " ".join(b.split())


def _echo_candidates(*, conversation_id: int, kind: str, at: datetime):
    return (
        Message.objects.filter(
            conversation_id=conversation_id,
            direction=Message.Direction.OUT,
            wa_id__isnull=True,
            status__in=AWAITING_ECHO,
            kind=kind,
            sending_at__gte=at - ECHO_WINDOW,
            sending_at__lte=at + ECHO_WINDOW,
        )
        .exclude(author_kind=Message.Author.PHONE)
        .order_by("sending_at", "pk")
    )


def outbound_echo_link(
    *, conversation_id: int, wa_id: str, kind: str, body: str, at: datetime
) -> Message | None:
    """The echo of a send of ours that has no WhatsApp id yet: its answer is still on the way
    (WaSender may echo before it answers), or was lost (unconfirmed). It is linked to the
    oldest such row to this customer with the same kind and text (whitespace aside), and that
    row is sent: never a second message. Two identical texts to one customer in flight at
    once may be linked crosswise; they are the same words, so the history is still right.
    None when no row of ours waits for it: a message typed on the phone."""
    candidates = _echo_candidates(conversation_id=conversation_id, kind=kind, at=at)
    for row in candidates.only("pk", "body")[:ECHO_CANDIDATES]:
        if not _same_text(row.body, body):
            continue
        # One echo per row: a concurrent echo for the same text takes the next row.
        if Message.objects.filter(pk=row.pk, wa_id__isnull=True).update(wa_id=wa_id):
            message_status_advance(wa_id=wa_id, status="sent", at=at)
            return row
    return None


def outbound_status_link(
    *, channel: str, recipient: str, wa_id: str, status: str, at: datetime
) -> Message | None:
    """A status for a WhatsApp id we never learned, on a Cloud API number: the send's answer
    (which carries Meta's id) was lost, cut or a 5xx after Meta accepted it, and Meta echoes
    none of our sends, so its statuses are the only evidence. The row is ours when it is the
    only send of ours to `recipient` (digits) on `channel` still without an id, claimed within
    STATUS_LINK_WINDOW before the status, and it is unconfirmed or unknown: it gets the id and
    moves to `status`. Nothing when that is not certain: two candidates, or one still
    `sending` (its answer may be on the way and name this id, or another one)."""
    if status not in STATUS_LINK_STEPS or not recipient:
        return None
    if Message.objects.filter(wa_id=wa_id).exists():
        return None
    candidates = (
        Message.objects.filter(
            conversation__channel_id=channel,
            conversation__customer__phone="+" + recipient,
            direction=Message.Direction.OUT,
            wa_id__isnull=True,
            status__in=BEFORE_STEPS,
            sending_at__gte=at - STATUS_LINK_WINDOW,
            # Meta's times are whole seconds and its clock is not ours: a status may look a
            # moment older than our claim.
            sending_at__lte=at + STATUS_LINK_SKEW,
        )
        .exclude(author_kind=Message.Author.PHONE)
        .only("pk", "status", "conversation_id")[:2]
    )
    rows = list(candidates)
    if len(rows) != 1 or rows[0].status == Message.Status.SENDING:
        return None
    row = rows[0]
    try:
        with transaction.atomic():
            linked = Message.objects.filter(
                pk=row.pk, wa_id__isnull=True, status__in=STATUS_LINK_FROM
            ).update(wa_id=wa_id)
    except IntegrityError:  # another row took this id meanwhile: it is not this one's
        return None
    if not linked:
        return None
    message_status_advance(wa_id=wa_id, status=status, at=at)
    return row


def message_phone_create(
    *,
    conversation: Conversation,
    wa_id: str,
    kind: str,
    body: str,
    created_at: datetime,
    media=None,
) -> tuple[Message, bool]:
    """A message we sent that no pipeline row claims (typed on the phone, so far)."""
    message, created = _message_create_once(
        wa_id=wa_id,
        conversation=conversation,
        direction=Message.Direction.OUT,
        author_kind=Message.Author.PHONE,
        status=Message.Status.SENT,
        kind=kind,
        body=body,
        created_at=created_at,
        sent_at=created_at,
        **_media_fields(media, None),
    )
    if created:
        conversation_last_message_note(
            conversation_id=conversation.pk,
            at=created_at,
            preview=message_preview(kind=kind, body=body),
        )
        message_created_publish(conversation_id=conversation.pk, message_id=message.pk)
    return message, created


def _newer_than_last(at: datetime) -> Q:
    """WhatsApp times are whole seconds, so two messages in one second tie: the later wins."""
    return Q(last_message_at__isnull=True) | Q(last_message_at__lte=at)


def conversation_last_message_note(*, conversation_id: int, at: datetime, preview: str) -> int:
    """A newer (or same-second) message replaces the preview; late deliveries do not rewind it."""
    return Conversation.objects.filter(_newer_than_last(at), pk=conversation_id).update(
        last_message_at=at, last_message_preview=preview[:160]
    )


def conversation_inbound_note(*, conversation_id: int, at: datetime, preview: str) -> None:
    """A customer wrote: the conversation is new again (even if resolved), one more unread,
    and (unless it came late) its last message. One UPDATE: it runs for every webhook. No
    event of its own: the message.created that goes with it redraws the row and the head."""
    newer = _newer_than_last(at)
    Conversation.objects.filter(pk=conversation_id).update(
        status=Conversation.Status.NEW,
        unread_count=F("unread_count") + 1,
        last_message_at=Case(
            When(newer, then=Value(at, output_field=DateTimeField())), default=F("last_message_at")
        ),
        last_message_preview=Case(
            When(newer, then=Value(preview[:160])), default=F("last_message_preview")
        ),
    )


def _earliest(field: str, at: datetime):
    """Each step keeps the earliest time reported for it or a later step: order-independent."""
    take = Q(**{f"{field}__isnull": True}) | Q(**{f"{field}__gt": at})
    return Case(When(take, then=Value(at, output_field=DateTimeField())), default=F(field))


def message_status_advance(*, wa_id: str, status: str, at: datetime) -> bool:
    """Move an outbound row forward to `status` (sent < delivered < read < played); backward,
    repeated and late updates match no row. A skipped step (read without delivered) gets the
    later step's time: read implies delivered."""
    rank = STATUS_STEPS.index(status)
    rows = Message.objects.filter(wa_id=wa_id, direction=Message.Direction.OUT)
    moved = rows.filter(status__in=BEFORE_STEPS + STATUS_STEPS[:rank]).update(status=status)
    stamps = {f"{s}_at": _earliest(f"{s}_at", at) for s in STATUS_STEPS[: rank + 1]}
    rows.filter(status__in=STATUS_STEPS[rank:]).update(**stamps)
    if moved:
        _status_publish(wa_id)
    return bool(moved)


def message_status_fail(*, wa_id: str, at: datetime, reason: str) -> bool:
    """WhatsApp's error (0) is terminal, but never undoes a delivery already reported."""
    moved = Message.objects.filter(
        wa_id=wa_id, direction=Message.Direction.OUT, status__in=FAILABLE
    ).update(status=Message.Status.FAILED, failed_at=at, failure_reason=reason[:300])
    if moved:
        _status_publish(wa_id)
    return bool(moved)


def message_statuses_advance(*, steps: dict[str, tuple[str, dict[str, datetime]]]) -> set[str]:
    """message_status_advance for many messages in two statements (the worker's batches):
    `steps` maps a wa_id to the furthest step reported for it and, for each step, the earliest
    time reported for it or a later step. The rows are locked first, in wa_id order (two
    batches never wait on each other crosswise), so what is computed from them stands: a step
    only moves forward, a time only moves earlier. One message.status per moved row (an
    events.batch for many). Answers the wa_ids stored, whatever their direction or state."""
    fields = ["status", *(f"{s}_at" for s in STATUS_STEPS)]
    rows = (
        Message.objects.select_for_update()
        .filter(wa_id__in=sorted(steps))
        .order_by("wa_id")
        .only("wa_id", "conversation_id", "direction", *fields)
    )
    found: set[str] = set()
    changed, moved = [], []
    for row in rows:
        if row.wa_id is None:  # never: the filter names wa_ids (for the type checker)
            continue
        found.add(row.wa_id)
        if row.direction != Message.Direction.OUT or row.status not in BEFORE_STEPS + STATUS_STEPS:
            continue  # failed, cancelled, queued or inbound: nothing a step can change
        status, times = steps[row.wa_id]
        if _step_rank(row.status) < STATUS_STEPS.index(status):
            row.status = status
            moved.append({"conversation_id": row.conversation_id, "message_id": row.pk})
        for step, at in times.items():
            stamp = f"{step}_at"
            if getattr(row, stamp) is None or getattr(row, stamp) > at:
                setattr(row, stamp, at)
        changed.append(row)
    if changed:
        Message.objects.bulk_update(changed, fields)
    if moved:
        events_publish(EventType.MESSAGE_STATUS, moved)
    return found


def _status_publish(wa_id: str) -> None:
    row = Message.objects.filter(wa_id=wa_id).values("pk", "conversation_id").first()
    if row:
        message_status_publish(conversation_id=row["conversation_id"], message_id=row["pk"])


def _step_rank(status: str) -> int:
    return STATUS_STEPS.index(status) if status in STATUS_STEPS else -1


def _echo_merge(*, row: Message, echo: Message) -> None:
    """The echo of our own send came before message.sent told us its wa_id, and was stored as
    a phone message: fold it into the pipeline's row (keeping the furthest status and the
    earliest step times), then drop it."""
    fields: dict[str, object] = {"sent_at": row.sent_at or echo.sent_at}
    if row.status != Message.Status.FAILED and _step_rank(echo.status) > _step_rank(row.status):
        fields["status"] = echo.status
    for step in STATUS_STEPS[1:]:
        times = [t for t in (getattr(row, f"{step}_at"), getattr(echo, f"{step}_at")) if t]
        fields[f"{step}_at"] = min(times) if times else None
    echo.delete()
    Message.objects.filter(pk=row.pk).update(**fields)
    conversation_updated_publish(conversation_id=echo.conversation_id)


def message_wa_id_link(
    *, provider_msg_id: int, wa_id: str, conversation_id: int | None = None
) -> str:
    """Tie WaSender's msgId to WhatsApp's key.id on our outbound row (from message.sent, or
    message info for the sweeper), and mark it sent. Answers "linked", "unknown" (no row with
    that msgId yet) or "conflict" (the row or the wa_id already belong elsewhere; nothing
    changed). Without a row for the msgId (the send's answer was lost, or has not been
    recorded yet), a row already linked to the wa_id by the echo learns its msgId; and when
    `conversation_id` is given and exactly one unconfirmed row of ours waits there, that is
    the one: message.sent only reports sends of this session's API."""
    row = (
        Message.objects.select_for_update()
        .filter(provider_msg_id=provider_msg_id, direction=Message.Direction.OUT)
        .order_by("pk")
        .first()
    )
    if row is None:
        return _msg_id_learn(
            provider_msg_id=provider_msg_id, wa_id=wa_id, conversation_id=conversation_id
        )
    if row.wa_id:
        return "linked" if row.wa_id == wa_id else "conflict"
    echo = Message.objects.filter(wa_id=wa_id).first()
    if echo and (echo.direction, echo.author_kind) != ("out", Message.Author.PHONE):
        return "conflict"
    if echo:
        _echo_merge(row=row, echo=echo)
    Message.objects.filter(pk=row.pk, wa_id__isnull=True).update(wa_id=wa_id)
    if not message_status_advance(wa_id=wa_id, status="sent", at=timezone.now()):
        message_status_publish(conversation_id=row.conversation_id, message_id=row.pk)
    return "linked"


def _msg_id_learn(*, provider_msg_id: int, wa_id: str, conversation_id: int | None) -> str:
    ours = Message.objects.filter(
        direction=Message.Direction.OUT, provider_msg_id__isnull=True
    ).exclude(author_kind=Message.Author.PHONE)
    if ours.filter(wa_id=wa_id).update(provider_msg_id=provider_msg_id):
        return "linked"
    if conversation_id is None:
        return "unknown"
    waiting = list(
        ours.filter(
            conversation_id=conversation_id, wa_id__isnull=True, status="unconfirmed"
        ).values_list("pk", flat=True)[:2]
    )
    if len(waiting) != 1 or Message.objects.filter(wa_id=wa_id).exists():
        return "unknown"
    try:
        with transaction.atomic():
            linked = Message.objects.filter(pk=waiting[0], wa_id__isnull=True).update(
                wa_id=wa_id, provider_msg_id=provider_msg_id
            )
    except IntegrityError:  # the echo stored it meanwhile: message.sent is retried
        return "unknown"
    if linked:
        message_status_advance(wa_id=wa_id, status="sent", at=timezone.now())
    return "linked" if linked else "unknown"


def session_state_set(*, session: str, status: str, at: datetime) -> None:
    """The latest report wins, whatever order they arrive in."""
    updated = SessionState.objects.filter(session=session, changed_at__lte=at).update(
        status=status[:20], changed_at=at
    )
    if updated or SessionState.objects.filter(session=session).exists():
        return
    try:
        with transaction.atomic():
            SessionState.objects.create(session=session, status=status[:20], changed_at=at)
    except IntegrityError:
        SessionState.objects.filter(session=session, changed_at__lte=at).update(
            status=status[:20], changed_at=at
        )
