"""The pipelined Redis broker: a batch enqueued in one round trip arrives as if each message had
been sent on its own (same queue, order, middleware options), and the stub broker takes the
same call one message at a time."""

import os
import uuid

import dramatiq
import pytest
from dramatiq.brokers.stub import StubBroker

from chatdesk.broker import PipelinedRedisBroker, send_many
from chatdesk.logging import RequestIdDramatiq, request_id_var
from tests.conftest import require


@pytest.fixture
def redis_broker():
    require(bool(os.environ.get("REDIS_URL")), "REDIS_URL is not set")
    from tests.procs import redis_url_for_tests

    namespace = f"chatdesk-broker-test-{uuid.uuid4().hex[:8]}"
    broker = PipelinedRedisBroker(url=redis_url_for_tests(), namespace=namespace)
    broker.add_middleware(RequestIdDramatiq())
    broker.PIPELINE = 7  # several pipelines for the batches below
    yield broker
    keys = list(broker.client.scan_iter(match=namespace + ":*"))
    if keys:
        broker.client.delete(*keys)
    broker.close()


def _consume_all(broker, queue: str, count: int) -> list[dramatiq.Message]:
    consumer = broker.consume(queue, prefetch=count, timeout=1000)
    taken = []
    for message in consumer:
        if message is None:
            break
        taken.append(message)
        consumer.ack(message)
        if len(taken) == count:
            break
    consumer.close()
    return taken


def test_a_pipelined_batch_reaches_the_queue_in_order_with_the_middlewares_options(redis_broker):
    @dramatiq.actor(broker=redis_broker, queue_name="batch")
    def deliver(message_id):
        pass

    token = request_id_var.set("campaign-7")
    try:
        send_many(deliver, ((n,) for n in range(20)))
    finally:
        request_id_var.reset(token)
    assert redis_broker.client.llen(f"{redis_broker.namespace}:batch") == 20
    taken = _consume_all(redis_broker, "batch", 20)
    assert [m.args for m in taken] == [(n,) for n in range(20)]
    assert {m.actor_name for m in taken} == {"deliver"}
    assert {m.options["request_id"] for m in taken} == {"campaign-7"}
    assert len({m.options["redis_message_id"] for m in taken}) == 20


def test_an_empty_batch_enqueues_nothing(redis_broker):
    @dramatiq.actor(broker=redis_broker, queue_name="empty")
    def deliver(message_id):
        pass

    send_many(deliver, [])
    assert redis_broker.client.llen(f"{redis_broker.namespace}:empty") == 0


def test_the_stub_broker_takes_a_batch_one_message_at_a_time():
    broker = StubBroker()
    broker.emit_after("process_boot")

    @dramatiq.actor(broker=broker, queue_name="stubbed")
    def deliver(message_id):
        pass

    send_many(deliver, [(1,), (2,), (3,)])
    queued = [dramatiq.Message.decode(body) for body in list(broker.queues["stubbed"].queue)]
    assert [m.args for m in queued] == [(1,), (2,), (3,)]
