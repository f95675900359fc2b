"""The one place that publishes live events to agent browsers, and only after commit.

Every event goes to the "inbox" group (all agents: the conversation list) and, when it concerns
a conversation, to that conversation's group (the agents who have its thread open). A consumer
in both groups receives both copies; `group` says which one it is holding, so the list copy
updates the list and the thread copy updates the thread.

Event types: message.created, message.status (both with message_id), conversation.updated.
Each carries a unique `event_id`, so the sockets of one process render its fragment once.
A batch of more than LIST_BATCH events (a campaign's) goes out as one events.batch to the
inbox group instead of one event per message and group: each open list re-fetches itself (one
request per agent, not a row render per message and agent), and a socket whose open thread is
in the batch renders those lines. One Redis trip for the batch, not two per message.

In a flood (this process has sent more than FLOOD_PER_SECOND list copies in the current
second: a webhook storm), list copies stop: the open threads still get every line, and the
lists are told to re-fetch themselves (list.stale) at most once a second. A page waits a few
seconds before it re-fetches, so the events of the second it was told about are in it, and a
later second tells it again. Unread counts and browser notifications wait for that re-fetch.

The layer is at most once, and so is a process's hub (inbox/hub.py): a socket that falls behind
(its queue full) loses events without anyone being told. So everything sent to the inbox group
carries this process's `source` and a `seq` counting up: a socket that sees a number go missing
has the page re-fetch what it shows (inbox/consumers.py). Every event reaches the inbox group,
as a list copy, a batch or a list.stale, so a socket that falls behind misses some of these
numbers.
"""

import asyncio
import logging
import os
import threading
import time
import uuid
from enum import StrEnum

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from inbox.hub import hub_local

INBOX_GROUP = "inbox"
log = logging.getLogger(__name__)
GATHER = 100
LIST_BATCH = 20
FLOOD_PER_SECOND = 60
STALE_EVERY = 1.0


class _ListBudget:
    """List copies this process sent in the current second, and when it last sent list.stale.
    Shared by the threads (and their event loops) of one process."""

    def __init__(self, clock=time.monotonic):
        self.lock, self.clock = threading.Lock(), clock
        self.second, self.count, self.stale_at = 0, 0, float("-inf")

    def take(self, n: int) -> bool:
        now = self.clock()
        with self.lock:
            if int(now) != self.second:
                self.second, self.count = int(now), 0
            self.count += n
            return self.count <= FLOOD_PER_SECOND

    def stale_due(self) -> bool:
        now = self.clock()
        with self.lock:
            due = now - self.stale_at >= STALE_EVERY
            if due:
                self.stale_at = now
            return due


_budget = _ListBudget()


class _Sequence:
    """This process's numbering of what it sends to the inbox group: (source, seq). A forked
    process (a Dramatiq worker's) gets its own source, so two never share a count."""

    def __init__(self):
        self.lock, self.pid, self.source, self.count = threading.Lock(), None, "", 0

    def stamp(self, message: dict) -> dict:
        with self.lock:
            if self.pid != os.getpid():
                self.pid, self.source, self.count = os.getpid(), uuid.uuid4().hex, 0
            self.count += 1
            return {**message, "source": self.source, "seq": self.count}


_sequence = _Sequence()


class _Departures:
    """Sends to the layer from a request's thread, without that thread waiting for them.

    A web request (a webhook, an agent's reply) ran its sends on the server's event loop and
    waited there for their Redis round trips, some 1.5 ms, before answering: time the answer
    did not need (the data is committed; the layer is at most once anyway). In a process whose
    server loop is known (server_loop_note: daphne), the sends are handed to that loop and the
    thread goes on; in order, since the loop starts them in the order they were handed over.
    Anywhere else (a worker, a command, a test without a server) the caller waits, as before.
    At most MAX_PENDING wait on the loop: past that the caller waits too (a Redis that stopped
    answering holds the requests back instead of piling up sends in memory)."""

    MAX_PENDING = 1000

    def __init__(self):
        self.loop: asyncio.AbstractEventLoop | None = None
        self.lock, self.pending = threading.Lock(), 0

    def send(self, coro) -> None:
        loop = self.loop
        if loop is not None and loop.is_running() and self._take():
            asyncio.run_coroutine_threadsafe(coro, loop).add_done_callback(self._done)
        else:
            async_to_sync(_awaited)(coro)

    def _take(self) -> bool:
        """A place among the MAX_PENDING sends that may wait on the loop."""
        with self.lock:
            if self.pending >= self.MAX_PENDING:
                return False
            self.pending += 1
            return True

    def _done(self, future) -> None:
        with self.lock:
            self.pending -= 1
        if not future.cancelled() and future.exception() is not None:
            log.warning("a live event was not sent", exc_info=future.exception())


_departures = _Departures()


async def _awaited(coro) -> None:
    await coro


def server_loop_note(app):
    """The ASGI application `app`, noting the loop it is served on (chatdesk/asgi.py): from
    then on this process's sends leave without their callers waiting (_Departures)."""

    async def noted(scope, receive, send):
        _departures.loop = asyncio.get_running_loop()
        return await app(scope, receive, send)

    return noted


class EventType(StrEnum):
    """Every event type, declared once (docs/live.md). The consumer's handler for each is the
    name with "_" for "." (Channels' convention): message_created, events_batch..."""

    # Published by the services below, after commit:
    MESSAGE_CREATED = "message.created"  # a line to add: list row and open threads
    MESSAGE_STATUS = "message.status"  # a line to redraw (ticks, failure, media)
    CONVERSATION_UPDATED = "conversation.updated"  # a row and a thread head to redraw
    # Made here from those when there are many at once:
    EVENTS_BATCH = "events.batch"  # a campaign's batch: lists re-fetch, threads get lines
    LIST_STALE = "list.stale"  # a flood: lists re-fetch themselves


def conversation_group(conversation_id: int) -> str:
    return f"conversation.{conversation_id}"


def message_created_publish(
    *, conversation_id: int, message_id: int, fragments: dict | None = None
) -> None:
    """A new line (a customer's message, a reply, a bot's answer...). `fragments`: the list's
    row and notification, already rendered by the publisher (inbox/rows.py), when it has them."""
    data = {"fragments": fragments} if fragments else {}
    event_publish(
        EventType.MESSAGE_CREATED, conversation_id=conversation_id, message_id=message_id, **data
    )


def messages_created_publish(rows: list[tuple[int, int]]) -> None:
    """Many new lines after one commit: [(conversation_id, message_id)] (a campaign batch)."""
    events = [{"conversation_id": c, "message_id": m} for c, m in rows]
    events_publish(EventType.MESSAGE_CREATED, events)


def message_status_publish(*, conversation_id: int, message_id: int, status: str = "") -> None:
    """A line to redraw: its status moved, it failed, its media arrived."""
    data = {"status": status} if status else {}
    event_publish(
        EventType.MESSAGE_STATUS, conversation_id=conversation_id, message_id=message_id, **data
    )


def conversation_updated_publish(*, conversation_id: int) -> None:
    """A conversation's row and head to redraw (state, assignee, urgency, the customer)."""
    event_publish(EventType.CONVERSATION_UPDATED, conversation_id=conversation_id)


def event_publish(event_type: EventType, *, conversation_id: int | None = None, **data) -> None:
    """Send `{"type": event_type, ...data}` to the inbox group (and the conversation's group)
    once the surrounding transaction commits; never for a change that rolls back. Callers use
    the typed helpers above."""
    events_publish(event_type, [{"conversation_id": conversation_id, **data}])


def events_publish(event_type: EventType, events: list[dict]) -> None:
    """Many events of one type after one commit (a campaign batch): one trip into the event
    loop for all of them, not two per event (each costs milliseconds). In a web process the
    caller does not wait for them (_Departures)."""

    def send():
        layer = get_channel_layer()
        if layer is not None and events:
            _departures.send(_group_send_all(layer, event_type, events))

    # robust: the channel layer is at-most-once anyway (pages re-fetch on reconnect), so a Redis
    # hiccup must not fail the caller after its data is committed (the pipeline would leave a
    # claimed row unsent).
    transaction.on_commit(send, robust=True)


async def _group_send_all(layer, event_type: EventType, events: list[dict]) -> None:
    if len(events) > LIST_BATCH:
        items = [[data.get("conversation_id"), data.get("message_id")] for data in events]
        batch = {"type": EventType.EVENTS_BATCH, "event_type": event_type, "items": items}
        await _inbox_send(layer, {**batch, "event_id": uuid.uuid4().hex})
        return
    to_list = _budget.take(len(events))
    # Concurrently, a hundred at a time: each send is a few Redis round trips.
    for start in range(0, len(events), GATHER):
        chunk = events[start : start + GATHER]
        await asyncio.gather(*(_group_send(layer, event_type, data, to_list) for data in chunk))
    if not to_list and _budget.stale_due():
        await _inbox_send(layer, {"type": EventType.LIST_STALE, "event_id": uuid.uuid4().hex})


async def _inbox_send(layer, message: dict) -> None:
    """To the inbox group, numbered; this process's own sockets get it at once (hub_local)."""
    message = _sequence.stamp(message)
    hub_local(layer, INBOX_GROUP, message)
    await layer.group_send(INBOX_GROUP, message)


async def _group_send(layer, event_type: EventType, data: dict, to_list: bool = True) -> None:
    message = {"type": event_type, "conversation_id": None, "event_id": uuid.uuid4().hex}
    message.update(data)
    sends = []
    if to_list:
        sends.append(_inbox_send(layer, {**message, "group": "inbox"}))
    if message["conversation_id"] is not None:
        # The list's fragments are for the list copy only: the thread renders its own line.
        thread_copy = {key: value for key, value in message.items() if key != "fragments"}
        group = conversation_group(message["conversation_id"])
        sends.append(layer.group_send(group, {**thread_copy, "group": "conversation"}))
    # Both copies at once: each is a Redis round trip or two, and the webhook waits for them.
    await asyncio.gather(*sends)
