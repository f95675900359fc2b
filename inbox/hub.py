"""One member of the inbox group per process: the hub hands each event to every local socket.

Every agent socket hears the inbox group. As 50 members of it, a process received every event
50 times from the channel layer (channels-redis pops one message per Redis round trip) and
dispatched each copy: with 50 agents at 50 webhooks a second, daphne spent both cores on it
(issue 19). So a process joins the group once: its hub holds one layer channel in the group,
takes each event once and puts it in every local socket's queue, in memory.

- The hub starts with the first socket of its event loop and stops with the last one.
- Each socket has its own queue and task: a slow socket (a render, a full TCP buffer) delays
  only itself, and gets its events in order. The task takes every event already waiting (up
  to BATCH_MAX) at once, never waiting for more than the rest of FRAME_GAP (below): a socket
  behind in a burst catches up in one websocket frame instead of one per event
  (inbox/consumers.py), and its process spends less of the event loop on sends that the
  webhooks' answers wait behind. A queue holds as
  many events as the layer's channel did (its capacity); beyond that the socket loses the
  newest, as it did on its own channel, and the numbers of inbox/gaps.py have the page
  re-fetch what it shows.
- Two deliveries to a socket are FRAME_GAP apart at least: the first event after a quiet spell
  goes at once, what comes sooner waits and leaves with the rest in one frame (a full batch
  waiting leaves at once).
- A socket's handler that raises is that socket's business (inbox/consumers.py); the hub logs
  it and goes on, for that socket and the others.
- Channels-redis drops a group member group_expiry after it joined (a day), the in-memory
  layer drops one whose messages expired, and a Redis that restarted forgets the group: the
  hub joins again every REJOIN_SECONDS (one Redis call).

- An event this process sends to the group reaches its own sockets at once, in memory
  (hub_local), and the copy the layer brings back is skipped by its event_id: the webhook
  that a socket on the same process waits for saves a trip through Redis (issue 19). The other
  processes get it from the layer as before.

Conversation groups (an open thread, presence) stay per socket: few sockets share one.
"""

import asyncio
import contextlib
import logging
import weakref
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

REJOIN_SECONDS = 60.0
RECEIVE_RETRY_SECONDS = 1.0
DEFAULT_CAPACITY = 100
# The most events handed over at once: a frame of 25 list updates is some 20 KB, and the
# first of them waits for the others' renders.
BATCH_MAX = 25
# The least time between two deliveries to one socket. The first event after a quiet spell
# goes at once; those that come sooner wait the rest of it and leave together, in one frame.
# In a burst a socket then costs at most 1/FRAME_GAP frames a second, whatever the webhook
# rate: each frame is a send through daphne's websocket protocol on the loop the webhooks'
# answers wait on, and they were most of daphne's time with 50 agents (bench/RESULTS.md).
FRAME_GAP = 0.05
# The event ids this process handed to its sockets itself, whose copy from the layer is still to
# come (and be skipped). A copy that never comes (the send failed) is forgotten past this many.
SENT_HERE_MAX = 10_000

Deliver = Callable[[list[dict]], Awaitable[None]]


class _Member:
    """A socket's queue and the task that hands it its events, in order: one when one waits,
    all those already waiting (up to BATCH_MAX) when it fell behind."""

    def __init__(self, deliver: Deliver, capacity: int):
        self.queue: asyncio.Queue[dict] = asyncio.Queue(maxsize=capacity)
        self.task = asyncio.get_running_loop().create_task(self._run(deliver))

    async def _run(self, deliver: Deliver) -> None:
        loop = asyncio.get_running_loop()
        delivered = -FRAME_GAP
        while True:
            messages = [await self.queue.get()]
            wait = delivered + FRAME_GAP - loop.time()
            # A full batch already waiting leaves at once: the gap must not cap the rate.
            if wait > 0 and self.queue.qsize() < BATCH_MAX - 1:
                await asyncio.sleep(wait)
            while len(messages) < BATCH_MAX and not self.queue.empty():
                messages.append(self.queue.get_nowait())
            try:
                await deliver(messages)
            except Exception:
                kinds = sorted({str(message.get("type")) for message in messages})
                log.exception("an inbox socket failed on %s", ", ".join(kinds))
            delivered = loop.time()


class Hub:
    """This event loop's membership of `group`, shared by its sockets."""

    def __init__(self, layer, group: str):
        self.layer, self.group = layer, group
        self.members: dict[object, _Member] = {}
        self.channel = ""
        self.capacity = _capacity(layer)
        self.tasks: list[asyncio.Task] = []
        self.sent_here: dict[str, bool] = {}
        self.started = asyncio.get_running_loop().create_task(self._start())

    async def _start(self) -> None:
        self.channel = await self.layer.new_channel()
        await self.layer.group_add(self.group, self.channel)
        loop = asyncio.get_running_loop()
        self.tasks = [loop.create_task(self._receive()), loop.create_task(self._rejoin())]

    async def _receive(self) -> None:
        # Never a timeout on receive: channels-redis's pubsub layer takes a cancelled receive
        # for a consumer that left, and unsubscribes its channel.
        while True:
            try:
                message = await self.layer.receive(self.channel)
            except Exception:  # Redis away: the sockets' numbers will show what was lost
                log.warning("the inbox hub could not receive", exc_info=True)
                await asyncio.sleep(RECEIVE_RETRY_SECONDS)
                continue
            if self.sent_here.pop(message.get("event_id"), False):
                continue  # its sockets had it from hub_local
            self._fan_out(message)

    def local(self, message: dict) -> None:
        """`message`, which this process is sending to the group, to every local socket now."""
        self.sent_here[message["event_id"]] = True
        if len(self.sent_here) > SENT_HERE_MAX:
            del self.sent_here[next(iter(self.sent_here))]
        self._fan_out(message)

    async def _rejoin(self) -> None:
        while True:
            await asyncio.sleep(_rejoin_seconds(self.layer))
            try:
                await self.layer.group_add(self.group, self.channel)
            except Exception:  # Redis away: next time
                log.warning("the inbox hub could not rejoin its group", exc_info=True)

    def _fan_out(self, message: dict) -> None:
        for member in list(self.members.values()):
            # A socket fallen behind loses this one, as on a channel of its own.
            with contextlib.suppress(asyncio.QueueFull):
                member.queue.put_nowait(message)

    async def stop(self) -> None:
        tasks = [self.started, *self.tasks]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if not self.channel:
            return
        try:
            await self.layer.group_discard(self.group, self.channel)
        except Exception:  # Redis away: the membership expires, its events go nowhere
            log.warning("the inbox hub could not leave its group", exc_info=True)


# event loop -> {(layer, group): hub}: a process has one loop in production; tests make many.
_hubs: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict]" = weakref.WeakKeyDictionary()


async def hub_join(layer, group: str, key: object, deliver: Deliver) -> None:
    """From now on `deliver(messages)` gets each message sent to `group`, in order, once: the
    messages that waited for this member together, never more than BATCH_MAX."""
    hubs = _hubs.setdefault(asyncio.get_running_loop(), {})
    hub = hubs.get((layer, group))
    if hub is None:
        hub = hubs[(layer, group)] = Hub(layer, group)
    hub.members[key] = _Member(deliver, hub.capacity)
    try:
        await asyncio.shield(hub.started)
    except BaseException:
        await hub_leave(layer, group, key)
        raise


async def hub_leave(layer, group: str, key: object) -> None:
    """Nothing more for `key`; the last one out stops the hub (and leaves the group)."""
    hubs = _hubs.get(asyncio.get_running_loop(), {})
    hub = hubs.get((layer, group))
    if hub is None:
        return
    member = hub.members.pop(key, None)
    if member is not None and member.task is not asyncio.current_task():
        member.task.cancel()
    if not hub.members:
        hubs.pop((layer, group), None)
        # To the end even if the socket's task is cancelled meanwhile (a server shutting down,
        # a test's communicator), or the group keeps a member nobody reads for a day.
        await asyncio.shield(asyncio.get_running_loop().create_task(hub.stop()))


def hub_local(layer, group: str, message: dict) -> None:
    """Before sending `message` (which has an event_id) to `group` through the layer: this
    loop's sockets get it now, from the hub, which then skips the layer's copy of it."""
    hub = hub_of(layer, group)
    if hub is not None and hub.channel and message.get("event_id"):
        hub.local(message)


def hub_of(layer, group: str) -> Hub | None:
    """This loop's hub of `group` (for tests and benchmarks)."""
    return _hubs.get(asyncio.get_running_loop(), {}).get((layer, group))


def _capacity(layer) -> int:
    capacity = getattr(layer, "capacity", DEFAULT_CAPACITY)
    return capacity if isinstance(capacity, int) and capacity > 0 else DEFAULT_CAPACITY


def _rejoin_seconds(layer) -> float:
    """Well before the layer would forget the membership (channels-redis: group_expiry)."""
    expiry = getattr(layer, "group_expiry", None)
    if isinstance(expiry, int | float) and expiry > 0:
        return min(REJOIN_SECONDS, expiry / 2)
    return REJOIN_SECONDS
