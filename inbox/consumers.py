"""/ws/inbox/: the agents' live socket. It turns the high-level events of inbox/events.py into
HTML fragments the htmx ws extension swaps in (out of band), and relays presence.

The page tells the socket what it shows ({"type": "watch", "conversation": id, "view", "q",
"channel"}): the list filter decides whether a changed conversation belongs in this agent's
list, and the open conversation's group brings its thread lines, ticks and who else is looking
at it.

Fragments that need placing (a list row in date order, a thread line) go into
#live-staging wrapped in `.live-op` elements (inbox/live.py); static/js/inbox.js puts them in
their place at once (insert in order, keep the furthest of two copies, or remove). Everything
else is a plain out-of-band swap by id. docs/live.md is the whole protocol.

An agent limited to some channels (inbox/channels.py) gets nothing of a conversation on
another channel: its events are dropped here, before any render, and its thread cannot be
watched, and the unread total every list update carries counts their channels only (as the
page's first render does). Which channel a conversation is on never changes, so it is looked up
once per process.

The layer drops events for a socket that falls behind, without telling anyone. What goes to the
inbox group is numbered by its publisher (inbox/events.py). When a number is still missing
GAP_GRACE seconds after a later one arrived (numbers may arrive a little out of order: a
process sends from several threads), the socket has the page re-fetch its list and thread
(#live-resync), as after a reconnect.

The inbox group's events come from this process's hub (inbox/hub.py: one member of the group
per process, not one per socket), through the same dispatch as the socket's own messages, one
at a time per socket. Conversation groups are joined by each socket itself.

A socket behind in a burst gets the events waiting for it together (the hub takes what is
already queued, waiting at most the rest of its FRAME_GAP): each is handled as ever, and what
they send leaves as one websocket frame (_Frame), in order. Sending a frame per event per
socket was daphne's largest cost left in a webhook burst (bench/RESULTS.md), on the event loop
the webhooks' answers wait on. In that frame the list's totals (#unread-total, #nav-unread)
come once, the last event's: they are absolute counts, and the last is what the page would have
shown after the separate frames (for rows the publisher rendered, read once after the frame's
events). Every other fragment stays, a #notify per message: the page notifies on each swap of
it, not once per frame (static/js/inbox.js).
"""

import asyncio
import functools
import logging

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import EmptyResultSet
from django.db import connection
from django.db.models import F, Func, Subquery
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from chatdesk.roles import SUPPORT, has_role
from customers.models import Customer
from inbox import channels, live, rows, selectors
from inbox.context_processors import BADGE, unread_badge_context
from inbox.events import INBOX_GROUP, EventType, conversation_group
from inbox.gaps import Gaps
from inbox.hub import hub_join, hub_leave
from inbox.models import Conversation, Message
from inbox.socket_access import socket_forget, socket_watch

CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
LIST_STALE = '<div id="list-stale" hx-swap-oob="true" hidden></div>'
RESYNC = '<div id="live-resync" hx-swap-oob="true" hidden></div>'
# A list update's totals: in a frame of several, only the last one's are sent.
COUNTERS = "counters"
# A list update's parts: the row's op (in #live-staging), the totals, the notification.
ListUpdate = tuple[str, str, str]
log = logging.getLogger(__name__)


class _Frame:
    """Fragments for one websocket frame, in the order they were sent. A fragment with a key
    is kept at its last occurrence only. `counters_due`: the totals to read once the frame's
    events are handled (the event id that shares the read, the agent's channels)."""

    def __init__(self):
        self.parts: list[tuple[str, str]] = []
        self.counters_due: tuple | None = None

    def add(self, html: str, key: str = "") -> None:
        if html:
            self.parts.append((html, key))

    def text(self) -> str:
        last = {key: i for i, (_, key) in enumerate(self.parts) if key}
        return "".join(
            html for i, (html, key) in enumerate(self.parts) if not key or last[key] == i
        )


def _language(scope) -> str:
    chosen = scope.get("cookies", {}).get(settings.LANGUAGE_COOKIE_NAME, "")
    return chosen if chosen in dict(settings.LANGUAGES) else settings.LANGUAGE_CODE


class InboxConsumer(AsyncJsonWebsocketConsumer):
    user = None
    revoked = False
    watching: int | None = None
    # None: every channel (admins, and everyone while no agent is limited).
    channel_keys: set[str] | None = None
    gap_watch: asyncio.Task | None = None
    # While the hub's events of a burst are handled: what they send, for one frame.
    frame: _Frame | None = None

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # The hub's events and the socket's own messages (a watch, presence) are handled one
        # at a time, as when they all came through Channels' one loop per consumer.
        self.serial = asyncio.Lock()

    async def connect(self):
        # Accept, then close with a code: the browser learns why, and the ws extension does
        # not retry a 44xx close (it would retry a refused handshake forever).
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.accept()
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        if not await database_sync_to_async(has_role)(user, *SUPPORT):
            await self.accept()
            await self.close(code=CLOSE_FORBIDDEN)
            return
        self.user = user
        self.user_name = user.get_full_name() or user.get_username()
        self.language = _language(self.scope)
        self.filters = selectors.ListFilters()
        self.viewers: dict[int, str] = {}
        self.gaps = Gaps()
        self.channel_keys = await database_sync_to_async(channels.channel_keys_for)(user)
        await hub_join(self.channel_layer, INBOX_GROUP, self, self.inbox_events)
        await self.accept()
        self._access_watch()

    async def disconnect(self, code):
        if self.user is None:
            return
        socket_forget(self)
        if self.gap_watch is not None:
            self.gap_watch.cancel()
        # First: the hub holds this socket until told (daphne cancels a disconnect that takes
        # too long, say on a Redis that does not answer).
        await hub_leave(self.channel_layer, INBOX_GROUP, self)
        await self._unwatch()

    # --- access: re-checked while the socket is open (inbox/socket_access.py) ------------------

    def _access_watch(self):
        session = self.scope.get("session")
        socket_watch(
            self, session_key=getattr(session, "session_key", "") or "", user_id=self.user.pk
        )

    async def access_lost(self, code: int):
        """The user logged out, was deactivated or lost the role: leave every group, send
        nothing more, close with the reason."""
        await self.disconnect(code)
        self.user, self.revoked = None, True
        await self.close(code=code)

    async def inbox_events(self, messages: list[dict]):
        """Events of the inbox group, from the hub: one, or those that waited for this socket
        (a burst), each handled as ever, what they send leaving as one frame."""
        if len(messages) == 1:
            await self.inbox_event(messages[0])
            return
        frame = self.frame = _Frame()
        try:
            for message in messages:
                await self.inbox_event(message)
            if frame.counters_due is not None:
                try:
                    frame.add(await self._counters(*frame.counters_due), COUNTERS)
                except Exception:  # the frame's rows still go; the page re-fetches the rest
                    log.exception("inbox socket failed on the totals of a frame")
                    frame.add(RESYNC)
        finally:
            text, self.frame = frame.text(), None
        # A socket that lost access meanwhile gets nothing more.
        if text and not self.revoked:
            await super().send(text)

    async def send(self, text_data=None, bytes_data=None, close=False):
        """Into the frame being gathered, if any (whoever sends meanwhile: its place in the
        frame is its place in time)."""
        if self.frame is None or text_data is None or bytes_data is not None or close:
            await super().send(text_data, bytes_data, close)
            return
        self.frame.add(text_data)

    async def _send_list(self, update: ListUpdate):
        """A list update (its ops, its totals, its notification): alone, one frame as ever;
        in a frame of several, the totals only once (_Frame)."""
        placed, counters, notify = update
        if self.frame is None:
            await self.send(placed + counters + notify)
            return
        if counters:  # newer than any read still due for the frame's earlier rows
            self.frame.counters_due = None
        self.frame.add(placed)
        self.frame.add(counters, COUNTERS)
        self.frame.add(notify)

    async def inbox_event(self, message):
        """An event of the inbox group, from the hub. A handler that fails costs this socket
        that event only: the page re-fetches what it shows, as when a number goes missing."""
        try:
            await self.dispatch(message)
        except Exception:
            log.exception("inbox socket failed on %s", message.get("type"))
            await self.send(RESYNC)

    async def dispatch(self, message):
        async with self.serial:
            await self._dispatch(message)

    async def _dispatch(self, message):
        if self.revoked and not message["type"].startswith("websocket."):
            return
        if self.user is not None and "seq" in message:
            self.gaps.see(message.get("source"), message.get("seq"))
            if self.gaps.open and (self.gap_watch is None or self.gap_watch.done()):
                self.gap_watch = asyncio.ensure_future(self._watch_gaps())
        if message["type"].startswith("websocket."):
            await super().dispatch(message)
            return
        # Channels closes old database connections before every handler, in the one thread
        # every socket of the process shares: 50 sockets, 50 hops into it per event, queued
        # behind the renders. Our handlers reach the database only through
        # database_sync_to_async, which closes them itself: the events skip it.
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def _watch_gaps(self):
        """Until every missing number has come or one is past its deadline: then resync."""
        while self.gaps.open:
            await asyncio.sleep(self.gaps.wait() + 0.01)
            if self.gaps.lost():
                await self.send(RESYNC)

    # --- from the page ---------------------------------------------------------------------

    async def receive_json(self, content, **kwargs):
        if self.user is None or not isinstance(content, dict):
            return
        kind = content.get("type")
        if kind == "watch":
            # The frame comes from the browser: only short strings go further.
            self.filters = selectors.ListFilters.from_params(
                {key: str(content.get(key) or "")[:100] for key in ("view", "q", "channel")}
            )
            raw = str(content.get("conversation") or "")
            conversation = int(raw) if raw.isdigit() and len(raw) < 19 else None
            # The page says what it shows on every navigation: the channels an admin gave or
            # took away since the socket opened apply from there.
            self.channel_keys = await database_sync_to_async(channels.channel_keys_for)(self.user)
            if conversation is not None and await self._hidden(conversation):
                conversation = None
            if conversation != self.watching:
                await self._unwatch()
                if conversation is not None:
                    await self._watch(conversation)
        elif kind == "typing" and self.watching is not None:
            await self._presence("presence.typing")

    async def _watch(self, conversation_id: int):
        self.watching = conversation_id
        self.viewers = {}
        await self.channel_layer.group_add(conversation_group(conversation_id), self.channel_name)
        await self._presence("presence.view", reply_to=self.channel_name)

    async def _unwatch(self):
        if self.watching is None:
            return
        await self._presence("presence.leave")
        await self.channel_layer.group_discard(conversation_group(self.watching), self.channel_name)
        self.watching = None
        self.viewers = {}

    async def _presence(self, kind: str, **extra):
        await self.channel_layer.group_send(
            conversation_group(self.watching),
            {
                "type": kind,
                "conversation_id": self.watching,
                "user_id": self.user.pk,
                "name": self.user_name,
                **extra,
            },
        )

    # --- presence, between agents' sockets ------------------------------------------------------

    def _other(self, event) -> bool:
        return event.get("user_id") != self.user.pk and event.get("conversation_id") == (
            self.watching
        )

    async def presence_view(self, event):
        if not self._other(event):
            return
        self.viewers[event["user_id"]] = event["name"]
        # Tell the newcomer that we are here too.
        await self.channel_layer.send(
            event["reply_to"],
            {
                "type": "presence.here",
                "conversation_id": self.watching,
                "user_id": self.user.pk,
                "name": self.user_name,
            },
        )
        await self._send_presence()

    async def presence_here(self, event):
        if self._other(event):
            self.viewers[event["user_id"]] = event["name"]
            await self._send_presence()

    async def presence_leave(self, event):
        if self._other(event) and self.viewers.pop(event["user_id"], None) is not None:
            await self._send_presence()

    async def presence_typing(self, event):
        if not self._other(event):
            return
        with translation.override(self.language):
            text = translation.gettext("%(name)s está escribiendo…") % {"name": event["name"]}
        await self.send(
            format_html(
                '<div id="typing" class="typing" aria-live="polite">{}</div>',
                text,
            )
        )

    async def _send_presence(self):
        with translation.override(self.language):
            names = sorted(self.viewers.values())
            text = ""
            if len(names) == 1:
                text = translation.gettext("%(name)s está viendo esta conversación") % {
                    "name": names[0]
                }
            elif names:
                text = translation.gettext("%(names)s están viendo esta conversación") % {
                    "names": ", ".join(names)
                }
        await self.send(
            format_html(
                '<div id="presence" class="presence" aria-live="polite">{}</div>',
                text,
            )
        )

    # --- events from inbox/events.py --------------------------------------------------------
    # A fragment depends on the event, the language and (for the list) the filter and the
    # agent's channels, never on the socket: every socket of this process with the same
    # audience shares one render.

    async def _hidden(self, conversation_id) -> bool:
        """The conversation is on a channel this agent does not work on."""
        if self.channel_keys is None or not isinstance(conversation_id, int):
            return False
        return await _channel_of(conversation_id) not in self.channel_keys

    async def message_created(self, event):
        fragments = event.get("fragments")
        if event.get("group") == "inbox" and self._takes(fragments):
            await self._list_from(event, fragments)
            return
        if await self._hidden(event.get("conversation_id")):
            return
        if event.get("group") == "inbox":
            update = await self._list_update(event, event.get("message_id"))
            if update is not None:
                await self._send_list(update)
        elif event.get("conversation_id") == self.watching:
            html = await self._thread_line(event)
            if html:
                await self.send(html)

    async def message_status(self, event):
        if await self._hidden(event.get("conversation_id")):
            return
        if event.get("group") == "conversation" and event.get("conversation_id") == self.watching:
            html = await self._thread_line(event)
            if html:
                await self.send(html)

    async def conversation_updated(self, event):
        if await self._hidden(event.get("conversation_id")):
            return
        if event.get("group") == "inbox":
            update = await self._list_update(event)
            if update is not None:
                await self._send_list(update)
        elif event.get("conversation_id") == self.watching:
            html = await _shared(
                ("head", event.get("event_id"), self.language),
                lambda: _thread_head(self.language, event["conversation_id"]),
            )
            if html:
                await self.send(html)

    async def list_stale(self, event):
        """Too many changes to send one by one (a flood): the page re-fetches its list."""
        await self.send(LIST_STALE)

    async def events_batch(self, event):
        """Many messages at once (a campaign batch): the page re-fetches its list, and the
        open thread gets its own lines, if it is in the batch. A limited agent hears of it
        only when a conversation of theirs is in it."""
        items = event.get("items", [])
        if self.channel_keys is not None:
            items = [item for item in items if not await self._hidden(item[0])]
            if not items:
                return
        await self.send(LIST_STALE)
        for conversation_id, message_id in items:
            if conversation_id != self.watching or message_id is None:
                continue
            one = {
                "type": event.get("event_type"),
                "message_id": message_id,
                "event_id": f"{event.get('event_id')}.{message_id}",
            }
            html = await self._thread_line(one)
            if html:
                await self.send(html)

    def _takes(self, fragments) -> bool:
        """The event's own row and notification fit this socket: its language, the whole
        list, no search, and the conversation on a channel this agent works on."""
        return (
            isinstance(fragments, dict)
            and isinstance(fragments.get("placed"), str)
            and isinstance(fragments.get("notify"), str)
            and fragments.get("language") == self.language
            and self.filters.view == "all"
            and not self.filters.q
            and (self.channel_keys is None or fragments.get("channel") in self.channel_keys)
        )

    async def _list_from(self, event, fragments: dict):
        """The row and notification as the publisher rendered them, sent at once; the totals
        (this agent's channels) follow when read: alone, in a frame of their own; in a frame
        of several events, read once when they are all handled."""
        conversation_id = event["conversation_id"]
        # HTML our publisher rendered (inbox/rows.py, customer text escaped there); through
        # Redis it arrives as plain text, no longer marked safe.
        placed, notify = mark_safe(fragments["placed"]), mark_safe(fragments["notify"])  # noqa: S308
        if self.filters.channel not in ("", fragments["channel"]):
            # The list shows another number: the row leaves it, nobody is notified.
            placed, notify = live.staging([_removal(conversation_id)]), ""
        await self._send_list((placed, "", notify))
        keys = None if self.channel_keys is None else frozenset(self.channel_keys)
        if self.frame is not None:
            self.frame.counters_due = (event.get("event_id"), keys)
            return
        await self._send_list(("", await self._counters(event.get("event_id"), keys), ""))

    async def _counters(self, event_id, keys: frozenset[str] | None) -> str:
        return await _shared(
            ("counters", event_id, self.language, keys), lambda: _counters(self.language, keys)
        )

    async def _list_update(self, event, message_id: int | None = None) -> ListUpdate | None:
        filters = self.filters
        user = self.user
        # Only "mine" depends on who is asking; the unread total on the channels they work on.
        who = user.pk if filters.view == "mine" else None
        keys = None if self.channel_keys is None else frozenset(self.channel_keys)
        key = (
            "list",
            event.get("event_id"),
            self.language,
            filters.view,
            filters.q,
            filters.channel,
            who,
            keys,
        )
        return await _shared(
            key,
            lambda: _list_update(
                self.language, user, keys, filters, event["conversation_id"], message_id
            ),
        )

    async def _thread_line(self, event) -> str:
        return await _shared(
            ("line", event.get("event_id"), self.language),
            lambda: _thread_line(self.language, event["message_id"], event.get("type")),
        )


# --- which channel a conversation is on (it never changes) ---------------------------------------

CHANNEL_OF_MAX = 50_000
_channel_of_cache: dict[int, str] = {}


async def _channel_of(conversation_id: int) -> str:
    key = _channel_of_cache.get(conversation_id)
    if key is None:
        key = await _channel_lookup(conversation_id)
        if len(_channel_of_cache) >= CHANNEL_OF_MAX:
            _channel_of_cache.clear()
        if key:
            _channel_of_cache[conversation_id] = key
    return key


@database_sync_to_async
def _channel_lookup(conversation_id: int) -> str:
    """Blank for a conversation that is gone (no channel: hidden from a limited agent)."""
    found = Conversation.objects.filter(id=conversation_id).values_list("channel_id", flat=True)
    return found.first() or ""


# --- rendering (ORM and templates: in a thread, once per event and audience) ---------------------

SHARED_SECONDS = 10.0
_renders: dict[tuple, asyncio.Task] = {}


async def _shared(key: tuple, render):
    """The first socket to ask renders; the others await the same task. Keyed by the event's
    unique id, kept a few seconds (the layer delivers an event to every socket at once)."""
    if key[1] is None:  # an event from an older publisher: no id, no sharing
        return await render()
    task = _renders.get(key)
    if task is None:
        task = asyncio.ensure_future(render())
        _renders[key] = task
        asyncio.get_running_loop().call_later(SHARED_SECONDS, _renders.pop, key, None)
    # A socket that goes away mid-render must not cancel the render for the others.
    return await asyncio.shield(task)


@database_sync_to_async
def _list_update(
    language: str,
    user,
    channel_keys: frozenset[str] | None,
    filters: selectors.ListFilters,
    conversation_id: int,
    message_id: int | None,
) -> ListUpdate | None:
    """The row's op, the totals, the notification (blank if none): apart, so that a frame of
    several list updates carries the totals once."""
    message, conversation, unread = _message_and_row(conversation_id, message_id, channel_keys)
    if conversation is None:
        return None
    if _matches(user, channel_keys, filters, conversation):
        op = rows.row_op(language, conversation)
    else:
        op = _removal(conversation_id)
    notify = ""
    # No notification for a number the list is filtered away from (the agent chose not to
    # watch it); conversations on a number the agent does not work on never got this far.
    on_shown_number = filters.channel in ("", conversation.channel_id)
    if message is not None and message.direction == Message.Direction.IN and on_shown_number:
        notify = rows.notify_html(language, message, conversation)
    return live.staging([op]), _counters_html(language, unread), notify


def _removal(conversation_id: int) -> str:
    return live.op("remove", format_html('<span data-id="conv-{}"></span>', conversation_id))


@functools.lru_cache(maxsize=512)
def _counters_html(language: str, unread: int) -> str:
    """The list's totals: the unread count the page's title shows, and the nav badge (the same
    for every event with that count: rendered once per count and language)."""
    with translation.override(language):
        badge = render_to_string(BADGE, unread_badge_context(unread, oob=True))
    return format_html('<span id="unread-total" data-count="{}" hidden></span>', unread) + badge


@database_sync_to_async
def _counters(language: str, channel_keys: frozenset[str] | None) -> str:
    """The totals alone (a row sent from the event's own fragments): the unread count by the
    statement compiled once per audience (_unread_total_sql)."""
    sql, params = _unread_total_sql(channel_keys)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        unread = cursor.fetchone()[0] or 0
    return _counters_html(language, unread)


def _unread_total(channel_keys: frozenset[str] | None) -> Subquery:
    """selectors.unread_conversations_count as a column, so the row's query brings it (NULL
    for an agent on no channel at all: Django's answer to an empty IN)."""
    unread = selectors.unread_conversations(channel_keys=channel_keys).order_by()
    return Subquery(unread.annotate(n=Func(F("pk"), function="COUNT")).values("n"))


def _message_and_row(
    conversation_id: int, message_id: int | None, channel_keys: frozenset[str] | None
):
    """(message, the conversation's row, the unread total on these channels): for a new
    message, all three in one query (_MessageRow); else the row and the total in one."""
    if message_id is not None:
        found = _message_row.get(message_id, conversation_id, channel_keys)
        if found is not None:
            return found
    conversation = (
        Conversation.objects.select_related("customer", "assignee")
        .annotate(unread_total=_unread_total(channel_keys))
        .filter(id=conversation_id)
        .first()
    )
    return None, conversation, (conversation.unread_total or 0) if conversation else 0


@functools.lru_cache(maxsize=256)
def _unread_total_sql(channel_keys: frozenset[str] | None) -> tuple[str, tuple]:
    """_unread_total's query as SQL, compiled once per set of channels (an audience)."""
    query = _unread_total(channel_keys).query
    try:
        sql, params = query.get_compiler(connection=connection).as_sql()
    except EmptyResultSet:  # an agent on no channel at all (Django's empty IN)
        return "SELECT NULL", ()
    return sql, tuple(params)


class _MessageRow:
    """A message with its conversation, customer and assignee, and the unread total, read
    by one statement made once per process (the same columns and joins as the ORM's
    select_related, built from the models) and turned into model instances: on every list
    update the ORM spent more time compiling that query (1.5-2 ms) than the database spent
    running it."""

    def __init__(self):
        self.sql = ""
        self.parts: list[tuple] = []

    def _prepare(self) -> None:
        quote = connection.ops.quote_name
        user_model = get_user_model()
        tables = [(Message, "m"), (Conversation, "c"), (Customer, "cu"), (user_model, "u")]
        columns, parts = [], []
        for model, alias in tables:
            fields = model._meta.concrete_fields
            columns += [f"{alias}.{quote(f.column)}" for f in fields]
            converters = [
                connection.ops.get_db_converters(col) + col.get_db_converters(connection)
                for col in (f.get_col(alias) for f in fields)
            ]
            parts.append((model, fields, converters))
        self.parts = parts
        tables_sql = (
            f"{quote(Message._meta.db_table)} m "
            f"JOIN {quote(Conversation._meta.db_table)} c ON c.id = m.conversation_id "
            f"JOIN {quote(Customer._meta.db_table)} cu ON cu.id = c.customer_id "
            f"LEFT JOIN {quote(user_model._meta.db_table)} u ON u.id = c.assignee_id"
        )
        select = ", ".join(columns)
        # Names from the models' metadata; the values are parameters.
        self.sql = f"SELECT {select}, ({{unread}}) FROM {tables_sql} WHERE m.id = %s AND m.conversation_id = %s"  # noqa: E501, S608

    def get(self, message_id: int, conversation_id: int, channel_keys):
        if connection.vendor != "postgresql":
            return self._orm(message_id, conversation_id, channel_keys)
        if not self.sql:
            self._prepare()
        unread_sql, unread_params = _unread_total_sql(channel_keys)
        with connection.cursor() as cursor:
            cursor.execute(
                self.sql.format(unread=unread_sql),
                [*unread_params, message_id, conversation_id],
            )
            row = cursor.fetchone()
        if row is None:
            return None
        message, conversation, customer, assignee = self._instances(row)
        conversation.customer = customer
        conversation.assignee = assignee if assignee.pk is not None else None
        message.conversation = conversation
        return message, conversation, row[-1] or 0

    def _instances(self, row) -> list:
        made, start = [], 0
        for model, fields, converters in self.parts:
            values = list(row[start : start + len(fields)])
            for i, (field, field_converters) in enumerate(zip(fields, converters, strict=True)):
                for converter in field_converters:
                    values[i] = converter(values[i], field, connection)
            made.append(model.from_db(connection.alias, None, values))
            start += len(fields)
        return made

    @staticmethod
    def _orm(message_id: int, conversation_id: int, channel_keys):
        message = (
            Message.objects.select_related("conversation__customer", "conversation__assignee")
            .annotate(unread_total=_unread_total(channel_keys))
            .filter(id=message_id, conversation_id=conversation_id)
            .first()
        )
        if message is None:
            return None
        return message, message.conversation, message.unread_total or 0


_message_row = _MessageRow()


def _matches(
    user,
    channel_keys: frozenset[str] | None,
    filters: selectors.ListFilters,
    conversation: Conversation,
) -> bool:
    """The list unfiltered, or filtered by number only, holds every conversation with a
    message (on that number): no query for it (the usual view), the row in hand says."""
    if filters.view == "all" and not filters.q:
        on_channel = filters.channel in ("", conversation.channel_id)
        return conversation.last_message_at is not None and on_channel
    return selectors.conversation_matches(
        user=user, channel_keys=channel_keys, filters=filters, conversation_id=conversation.pk
    )


@database_sync_to_async
def _thread_line(language: str, message_id: int, event_type: str | None) -> str:
    """The line as it is now, whatever the event: a page may get the copies of two events in
    either order, and keeps the furthest (its rank). An agent's recent reply carries its
    composer reference, so the sender's page swaps it for the line it already shows."""
    try:
        message = selectors.message_get(message_id=message_id)
    except Message.DoesNotExist:
        return ""
    live.reply_refs_attach([message])
    html = live.staging([live.op("upsert", rows.render(language, "message_line", {"m": message}))])
    if event_type == EventType.MESSAGE_CREATED and message.direction == Message.Direction.IN:
        # An inbound message makes the conversation new again (even a resolved one).
        html += _thread_head_sync(language, message.conversation_id)
    return html


@database_sync_to_async
def _thread_head(language: str, conversation_id: int) -> str:
    return _thread_head_sync(language, conversation_id)


def _thread_head_sync(language: str, conversation_id: int) -> str:
    try:
        conversation = selectors.conversation_get(conversation_id=conversation_id)
    except Conversation.DoesNotExist:
        return ""
    customer = selectors.customer_panel(customer_id=conversation.customer_id)
    context = {"conversation": conversation, "agents": selectors.agents(), "customer": customer}
    head = rows.render(language, "thread_head", context)
    notes = rows.render(language, "notes", context)
    # The ws extension swaps every top-level element by its id (#thread-head, #notes).
    return head + notes
