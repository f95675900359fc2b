"""What agents do to a conversation. Each change is a conditional update (two agents clicking
at once cannot undo each other's work twice) and publishes `conversation.updated` after commit,
only when something changed."""

from django.db import transaction
from django.db.models import Min, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from customers.models import Customer
from inbox import services
from inbox.events import conversation_updated_publish, message_status_publish
from inbox.models import Conversation, Message, Note, Resolution

NOTE_MAX = 2000


def _update(conversation: Conversation, condition: Q, **changes) -> bool:
    with transaction.atomic():
        changed = Conversation.objects.filter(condition, id=conversation.id).update(**changes)
        if changed:
            for field, value in changes.items():
                setattr(conversation, field, value)
            conversation_updated_publish(conversation_id=conversation.id)
    return bool(changed)


def conversation_assign(*, conversation: Conversation, assignee) -> bool:
    """Assign to an agent, or to nobody with assignee=None."""
    if assignee is None:
        return _update(conversation, Q(assignee__isnull=False), assignee_id=None)
    return _update(conversation, ~Q(assignee_id=assignee.pk), assignee_id=assignee.pk)


def conversation_resolve(*, conversation: Conversation) -> bool:
    """Resolved, and one Resolution row for the analytics: from the first customer message
    since the previous resolution to now, credited to the assignee of this moment."""
    with transaction.atomic():
        if not _update(
            conversation,
            ~Q(status=Conversation.Status.RESOLVED),
            status=Conversation.Status.RESOLVED,
            unread_count=0,
        ):
            return False
        # Our UPDATE locks the row: the assignee and number read here are the ones resolved.
        row = Conversation.objects.values("assignee_id", "channel_id").get(id=conversation.id)
        previous = (
            Resolution.objects.filter(conversation_id=conversation.id)
            .order_by("-resolved_at")
            .values_list("resolved_at", flat=True)
            .first()
        )
        inbound = Message.objects.filter(
            conversation_id=conversation.id, direction=Message.Direction.IN
        )
        if previous is not None:
            inbound = inbound.filter(created_at__gt=previous)
        started_at = inbound.aggregate(at=Min("created_at"))["at"]
        Resolution.objects.create(
            conversation_id=conversation.id,
            channel_id=row["channel_id"],
            assignee_id=row["assignee_id"],
            started_at=started_at,
            resolved_at=timezone.now(),
        )
    return True


def conversation_reopen(*, conversation: Conversation) -> bool:
    return _update(
        conversation, Q(status=Conversation.Status.RESOLVED), status=Conversation.Status.NEW
    )


def conversation_mark_answered(*, conversation: Conversation) -> bool:
    """An agent replied: answered, and nothing left unread."""
    return _update(
        conversation,
        ~Q(status=Conversation.Status.ANSWERED) | Q(unread_count__gt=0),
        status=Conversation.Status.ANSWERED,
        unread_count=0,
    )


def conversation_mark_bot_answered(*, conversation: Conversation) -> bool:
    """The bot answered a new conversation (an auto-reply, an opt-out confirmation): answered,
    but what the customer wrote stays unread for the agents."""
    return _update(
        conversation, Q(status=Conversation.Status.NEW), status=Conversation.Status.ANSWERED
    )


def conversation_mark_urgent(*, conversation: Conversation, urgent: bool) -> bool:
    return _update(conversation, ~Q(urgent=urgent), urgent=urgent)


def conversation_mark_read(*, conversation: Conversation) -> bool:
    return _update(conversation, Q(unread_count__gt=0), unread_count=0)


def note_add(*, customer: Customer, author, body: str, conversation_id: int | None = None) -> Note:
    """A note only agents see (about the customer, shown in every conversation of theirs)."""
    body = body.strip()[:NOTE_MAX]
    if not body:
        raise ValueError("empty note")
    with transaction.atomic():
        note = Note.objects.create(customer=customer, author=author, body=body)
        if conversation_id is not None:
            conversation_updated_publish(conversation_id=conversation_id)
    return note


def message_schedule_cancel(*, message: Message) -> bool:
    """Cancel a reply scheduled for later; a no-op once the scheduler has claimed it (it moves
    the row out of "scheduled" with a conditional update of its own)."""
    with transaction.atomic():
        changed = Message.objects.filter(id=message.id, status=Message.Status.SCHEDULED).update(
            status=Message.Status.CANCELLED, failed_at=None
        )
        if changed:
            message.status = Message.Status.CANCELLED
            message_status_publish(conversation_id=message.conversation_id, message_id=message.id)
    return bool(changed)


# WaSender's message info status (0-5) as the intake's status steps.
INFO_STATUSES = {2: "sent", 3: "delivered", 4: "read", 5: "played"}
STATUS_CHECK_TIMEOUT = 5.0


def message_status_check(*, message: Message, provider, timeout: float = STATUS_CHECK_TIMEOUT):
    """Ask WaSender where an outbound message stands (an agent's "Consultar estado" on a line
    stuck in "sent", when a status webhook went missing) and move it forward only, through the
    intake's own writers. Answers whether it moved; raises the provider's ProviderError."""
    if message.direction != Message.Direction.OUT or not message.provider_msg_id:
        return False
    info = provider.message_info(message.provider_msg_id, timeout=timeout)
    with transaction.atomic():
        wa_id = message.wa_id
        if not wa_id and info.wa_id:
            linked = services.message_wa_id_link(
                provider_msg_id=message.provider_msg_id, wa_id=info.wa_id
            )
            wa_id = info.wa_id if linked == "linked" else None
        if not wa_id:
            return False
        now = timezone.now()
        if info.status == 0:
            reason = _("WhatsApp informó un error al entregar el mensaje.")
            return services.message_status_fail(wa_id=wa_id, at=now, reason=reason)
        if info.status in INFO_STATUSES:
            return services.message_status_advance(
                wa_id=wa_id, status=INFO_STATUSES[info.status], at=now
            )
    return False


def message_retry_claim(*, message: Message, duplicate_ok: bool = False) -> bool:
    """Only one "Reintentar" of a failed line wins (a double click sends one copy); call it in
    the transaction that creates the copy, so a copy that fails to be made releases the claim.
    An `unknown` line may already be on the customer's phone: only with `duplicate_ok` (the
    agent confirmed that a second copy is acceptable)."""
    statuses = [Message.Status.FAILED] + ([Message.Status.UNKNOWN] if duplicate_ok else [])
    claimed = Message.objects.filter(
        id=message.id,
        status__in=statuses,
        direction=Message.Direction.OUT,
        retried_at__isnull=True,
    ).update(retried_at=timezone.now())
    if claimed:
        # Every open thread drops the line's "Reintentar", not only the page that clicked it.
        message_status_publish(conversation_id=message.conversation_id, message_id=message.id)
    return bool(claimed)
