"""The Dramatiq broker, chosen once at start-up before any actor module is imported."""

from collections.abc import Iterable
from uuid import uuid4

import dramatiq
from django.db import close_old_connections
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker
from dramatiq.common import current_millis
from dramatiq.middleware import Middleware

from chatdesk.logging import RequestIdDramatiq


class DbConnections(Middleware):
    """Worker threads outlive requests: hand their connection back after every message, so a
    connection broken by a database restart is not reused forever."""

    def before_process_message(self, broker, message):
        close_old_connections()

    def after_process_message(self, broker, message, *, result=None, exception=None):
        close_old_connections()

    after_skip_message = after_process_message


class PipelinedRedisBroker(RedisBroker):
    """Dramatiq's Redis broker, plus `enqueue_many`: a batch of messages in one round trip.
    `enqueue` runs one Lua script call per message, a round trip each (about 0.2 ms on
    loopback, 20 s for a 100,000-customer campaign); this sends the same script calls, with
    the same arguments and middleware hooks, through one pipeline per PIPELINE messages."""

    PIPELINE = 500

    def enqueue_many(self, messages: Iterable[dramatiq.Message]) -> list[dramatiq.Message]:
        messages, enqueued = list(messages), []
        for start in range(0, len(messages), self.PIPELINE):
            enqueued += self._enqueue_pipelined(messages[start : start + self.PIPELINE])
        return enqueued

    def _enqueue_pipelined(self, messages: list[dramatiq.Message]) -> list[dramatiq.Message]:
        # As RedisBroker.enqueue (no delay) and its do_dispatch("enqueue"), per message.
        dispatch, keys = self.scripts["dispatch"], [self.namespace]
        ready = []
        with self.client.pipeline(transaction=False) as pipe:
            for message in messages:
                message = message.copy(options={"redis_message_id": str(uuid4())})
                self.emit_before("enqueue", message, None)
                args = [
                    "enqueue",
                    current_millis(),
                    message.queue_name,
                    self.broker_id,
                    self.heartbeat_timeout,
                    self.dead_message_ttl,
                    self._should_do_maintenance("enqueue"),
                    self._max_unpack_size(),
                    message.options["redis_message_id"],
                    message.encode(),
                ]
                dispatch(keys=keys, args=args, client=pipe)
                ready.append(message)
            pipe.execute()
        for message in ready:
            self.emit_after("enqueue", message, None)
        return ready


def send_many(actor: dramatiq.Actor, calls: Iterable[tuple]) -> None:
    """`actor.send(*args)` for every args tuple in `calls`; pipelined on Redis."""
    messages = [actor.message(*args) for args in calls]
    if isinstance(actor.broker, PipelinedRedisBroker):
        actor.broker.enqueue_many(messages)
        return
    for message in messages:
        actor.broker.enqueue(message)


def broker_setup(*, kind: str, redis_url: str) -> dramatiq.Broker:
    if kind == "redis":
        broker = PipelinedRedisBroker(url=redis_url, namespace="chatdesk")
    else:
        broker = StubBroker()
        broker.emit_after("process_boot")
    broker.add_middleware(DbConnections())
    broker.add_middleware(RequestIdDramatiq())
    dramatiq.set_broker(broker)
    return broker
