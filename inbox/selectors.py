"""Reads for the inbox: the conversation list, a thread, the customer panel, the history, and
how customers reply (the one place that knows what a reply is)."""

import re
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from django.contrib.auth import get_user_model
from django.db.models import Count, Exists, F, OuterRef, Prefetch, Q, QuerySet, Subquery
from django.utils import timezone

from chatdesk.roles import SUPPORT
from customers.models import Customer, Subscription
from customers.selectors import phone_search_q
from inbox.models import Conversation, Message, Note

LIST_PAGE = 30
THREAD_PAGE = 40
VIEWS = ("all", "new", "answered", "resolved", "mine", "unassigned")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class ListFilters:
    view: str = "all"
    q: str = ""
    channel: str = ""  # a channel's key; blank: every channel the user works on

    @classmethod
    def from_params(cls, params) -> "ListFilters":
        view = params.get("view", "all")
        channel = params.get("channel") or ""
        return cls(
            view=view if view in VIEWS else "all",
            q=(params.get("q") or "").strip()[:100],
            channel=channel if re.fullmatch(r"[-\w]{1,64}", channel) else "",
        )


# --- keyset cursors: "<microseconds since epoch>_<id>", stable and URL-safe ---------------------


def cursor_encode(moment: datetime, pk: int) -> str:
    return f"{(moment - EPOCH) // timedelta(microseconds=1)}_{pk}"


def cursor_decode(raw: str | None) -> tuple[datetime, int] | None:
    match = re.fullmatch(r"(-?\d{1,20})_(\d{1,20})", raw or "")
    if not match:
        return None
    try:
        return EPOCH + timedelta(microseconds=int(match[1])), int(match[2])
    except OverflowError:  # digits beyond any real date: a hand-made URL
        return None


# --- the conversation list ---------------------------------------------------------------------


def _search(conversations: QuerySet[Conversation], q: str) -> QuerySet[Conversation]:
    by_text = Exists(Message.objects.filter(conversation=OuterRef("pk"), body__icontains=q))
    by_phone = phone_search_q(q, field="customer__phone")
    if by_phone is not None:
        return conversations.filter(by_phone | by_text)
    return conversations.filter(Q(customer__name__icontains=q) | by_text)


def conversations_filtered(
    *, user, channel_keys: Collection[str] | None, filters: ListFilters
) -> QuerySet[Conversation]:
    """`channel_keys`: the channels `user` works on (inbox.channels.channel_keys_for), read
    by the caller once per request or socket `watch`."""
    # A conversation appears once it has a message: that is what the list sorts on.
    conversations = Conversation.objects.filter(last_message_at__isnull=False)
    if filters.view in ("new", "answered", "resolved"):
        conversations = conversations.filter(status=filters.view)
    elif filters.view == "mine":
        conversations = conversations.filter(assignee=user)
    elif filters.view == "unassigned":
        conversations = conversations.filter(assignee__isnull=True)
    if filters.q:
        conversations = _search(conversations, filters.q)
    if filters.channel:
        conversations = conversations.filter(channel_id=filters.channel)
    return conversations_visible(conversations, channel_keys=channel_keys)


def conversations_visible(
    conversations: QuerySet[Conversation], *, channel_keys: Collection[str] | None
) -> QuerySet[Conversation]:
    """Only the conversations on channels this user works on (agents may be limited)."""
    if channel_keys is None:
        return conversations
    return conversations.filter(channel_id__in=channel_keys)


def conversation_visible(
    *, channel_keys: Collection[str] | None, conversation: Conversation
) -> bool:
    return channel_keys is None or conversation.channel_id in channel_keys


def conversation_list(
    *,
    user,
    channel_keys: Collection[str] | None,
    filters: ListFilters,
    after: str | None = None,
    limit: int = LIST_PAGE,
) -> tuple[list[Conversation], str | None]:
    """One page, newest activity first, keyset on (last_message_at, id); returns the next
    cursor when there is more."""
    conversations = conversations_filtered(user=user, channel_keys=channel_keys, filters=filters)
    position = cursor_decode(after)
    if position:
        moment, pk = position
        conversations = conversations.filter(
            Q(last_message_at__lt=moment) | Q(last_message_at=moment, id__lt=pk)
        )
    rows = list(
        conversations.select_related("customer", "assignee").order_by("-last_message_at", "-id")[
            : limit + 1
        ]
    )
    if len(rows) <= limit:
        return rows, None
    last = rows[limit - 1]
    assert last.last_message_at  # conversations_filtered keeps those with a message only
    return rows[:limit], cursor_encode(last.last_message_at, last.pk)


def conversation_matches(
    *, user, channel_keys: Collection[str] | None, filters: ListFilters, conversation_id: int
) -> bool:
    conversations = conversations_filtered(user=user, channel_keys=channel_keys, filters=filters)
    return conversations.filter(id=conversation_id).exists()


def conversation_row(*, conversation_id: int) -> Conversation | None:
    return (
        Conversation.objects.select_related("customer", "assignee")
        .filter(id=conversation_id)
        .first()
    )


def unread_conversations(*, channel_keys: Collection[str] | None) -> QuerySet[Conversation]:
    """What the tab's unread count counts: conversations with something unread on the channels
    the agent works on (None: every channel). Not the list's filter (view, search, number): it
    says how much waits for this agent, whatever the list shows (inbox/consumers.py sends the
    same count live)."""
    unread = Conversation.objects.filter(unread_count__gt=0)
    return unread if channel_keys is None else unread.filter(channel_id__in=channel_keys)


def unread_conversations_count(*, channel_keys: Collection[str] | None) -> int:
    return unread_conversations(channel_keys=channel_keys).count()


def conversation_get(*, conversation_id: int) -> Conversation:
    return Conversation.objects.select_related("customer", "assignee").get(id=conversation_id)


def agents() -> QuerySet:
    """Who a conversation can be assigned to."""
    return (
        get_user_model()
        .objects.filter(is_active=True)
        .filter(Q(groups__name__in=SUPPORT) | Q(is_superuser=True))
        .distinct()
        .order_by("first_name", "username")
    )


# --- a thread ----------------------------------------------------------------------------------


def _messages() -> QuerySet[Message]:
    return Message.objects.select_related(
        "agent",
        "conversation__customer",
        "reply_to",
        "reply_to__agent",
        "reply_to__conversation__customer",
    )


def thread_messages(
    *, conversation: Conversation, before: str | None = None, limit: int = THREAD_PAGE
) -> tuple[list[Message], str | None]:
    """The newest `limit` messages older than the cursor, oldest first, and the cursor of the
    page before them (None at the start of the conversation). The conversation (with its
    customer) is the one given: joining it again for every line, and for every quoted line,
    made PostgreSQL plan a seven-table join on each page."""
    messages = Message.objects.select_related("agent", "reply_to", "reply_to__agent").filter(
        conversation=conversation
    )
    position = cursor_decode(before)
    if position:
        moment, pk = position
        messages = messages.filter(Q(created_at__lt=moment) | Q(created_at=moment, id__lt=pk))
    rows = list(messages.order_by("-created_at", "-id")[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    rows.reverse()
    for row in rows:
        row.conversation = conversation
        if row.reply_to and row.reply_to.conversation_id == conversation.pk:
            row.reply_to.conversation = conversation
    return rows, (cursor_encode(rows[0].created_at, rows[0].pk) if more else None)


def message_get(*, message_id: int) -> Message:
    return _messages().get(id=message_id)


def message_key(message: Message) -> str:
    """The sort key the page uses to put a live line in its place."""
    return f"{(message.created_at - EPOCH) // timedelta(microseconds=1):020d}{message.pk:012d}"


def conversation_key(conversation: Conversation) -> str:
    moment = conversation.last_message_at or EPOCH
    return f"{(moment - EPOCH) // timedelta(microseconds=1):020d}{conversation.pk:012d}"


# --- the customer panel ------------------------------------------------------------------------


def customer_panel(*, customer_id: int) -> Customer:
    return Customer.objects.prefetch_related(
        "tags",
        Prefetch("subscriptions", queryset=Subscription.objects.select_related("service")),
        Prefetch("agent_notes", queryset=Note.objects.select_related("author")),
    ).get(id=customer_id)


def campaign_messages_received(*, customer: Customer, limit: int = 5) -> list[Message]:
    return list(
        Message.objects.filter(
            conversation__customer=customer,
            author_kind__in=[Message.Author.CAMPAIGN, Message.Author.REMINDER],
        ).order_by("-created_at", "-id")[:limit]
    )


# --- history -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class HistoryFilters:
    date_from: date | None = None
    date_to: date | None = None
    author: str = ""
    q: str = ""


def _day_start(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, datetime.min.time()))


def customer_history(*, customer: Customer, filters: HistoryFilters) -> QuerySet[Message]:
    """Everything said with this customer on every number, newest first."""
    messages = Message.objects.filter(conversation__customer=customer).select_related("agent")
    if filters.date_from:
        messages = messages.filter(created_at__gte=_day_start(filters.date_from))
    if filters.date_to and filters.date_to < date.max:
        messages = messages.filter(created_at__lt=_day_start(filters.date_to + timedelta(days=1)))
    if filters.author:
        messages = messages.filter(author_kind=filters.author)
    if filters.q:
        messages = messages.filter(body__icontains=filters.q)
    return messages.order_by("-created_at", "-id")


def history_page(
    *, messages: QuerySet[Message], before: str | None, limit: int
) -> tuple[list[Message], str | None]:
    position = cursor_decode(before)
    if position:
        moment, pk = position
        messages = messages.filter(Q(created_at__lt=moment) | Q(created_at=moment, id__lt=pk))
    rows = list(messages[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (cursor_encode(rows[-1].created_at, rows[-1].pk) if more else None)


# --- how customers reply (read by outbound's segments and insights' behaviour groups) ------------

HABITS = ("fast", "slow", "never")
HABIT_WINDOW = timedelta(days=90)
FAST_REPLY = timedelta(hours=1)


def replies_since(since: datetime) -> QuerySet[Message]:
    """Customers' replies: inbound messages whose previous message in the conversation is one
    of ours that reached the phone (a failed or unsent one asks nothing), annotated with that
    message's time (`previous_at`): the reply's delay is the time since."""
    previous = (
        Message.objects.filter(
            conversation=OuterRef("conversation"), created_at__lt=OuterRef("created_at")
        )
        .filter(Q(direction=Message.Direction.IN) | Q(status__in=Message.REACHED_STATUSES))
        .order_by("-created_at", "-id")
    )
    return (
        Message.objects.filter(direction=Message.Direction.IN, created_at__gte=since)
        .annotate(
            previous_direction=Subquery(previous.values("direction")[:1]),
            previous_at=Subquery(previous.values("created_at")[:1]),
        )
        .filter(previous_direction=Message.Direction.OUT)
    )


def reply_habit_condition(habit: str, *, now: datetime) -> Q:
    """Customers (a condition on Customer) by how they replied over HABIT_WINDOW:
    "fast"  the median reply delay is under FAST_REPLY: more than half of their replies came
            within the hour (for an even count, the upper of the two middle delays decides);
    "slow"  they replied, and the median delay is FAST_REPLY or more;
    "never" our messages reached them and they replied to none."""
    since = now - HABIT_WINDOW
    replies = replies_since(since)
    if habit == "never":
        reached = Message.objects.filter(
            conversation__customer=OuterRef("pk"),
            direction=Message.Direction.OUT,
            status__in=Message.REACHED_STATUSES,
            created_at__gte=since,
        )
        return Exists(reached) & ~Exists(replies.filter(conversation__customer=OuterRef("pk")))
    quick = Q(created_at__lt=F("previous_at") + FAST_REPLY)
    per_customer = (
        replies.order_by()
        .values("conversation__customer_id")
        .annotate(replies=Count("pk"), fast=Count("pk", filter=quick))
    )
    # The median is under the hour when more than half of the replies are.
    if habit == "fast":
        per_customer = per_customer.filter(fast__gt=F("replies") / 2.0)
    else:
        per_customer = per_customer.filter(fast__lte=F("replies") / 2.0)
    return Q(pk__in=per_customer.values("conversation__customer_id"))


def contacted_condition(*, since: datetime) -> Exists:
    """Customers (a condition on Customer) with a message either way since `since`."""
    return Exists(
        Message.objects.filter(conversation__customer=OuterRef("pk"), created_at__gte=since)
    )
