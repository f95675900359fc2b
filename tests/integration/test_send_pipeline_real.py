"""The send pipeline for real: `dramatiq chatdesk.worker` processes, Redis, and the WaSender
simulator over HTTP on loopback. Every message has its own recipient, so the simulator's
sends-per-recipient count is a per-message count of what actually went out.

A timeout, a cut connection or a 5xx may come after the provider accepted the send (WaSender
has no idempotency key): such a send is unconfirmed, never resent, and without webhooks here
(no echo) it ends unknown after SEND_UNCONFIRMED_SECONDS. The fault suite (tests/faults)
covers each fault after acceptance with the echo, and 5xx and timeouts before it.
"""

import os
import signal
import time

import httpx
import pytest
import redis

from inbox.models import Message
from outbound import pipeline, sweeper
from outbound.services import message_send
from tests.conftest import require
from tests.procs import (
    PYTHON,
    ROOT,
    dramatiq_args,
    free_port,
    process_env,
    redis_url_for_tests,
    running,
    stop,
)
from tests.waiting import wait_until

pytestmark = pytest.mark.services

FINAL = {"sent", "failed", "unknown"}
LOGS = ROOT / "var" / "test-logs"


@pytest.fixture
def services(transactional_db, monkeypatch):
    """A clean Redis database, and our actors enqueueing to it instead of the stub broker."""
    require("REDIS_URL" in os.environ, "needs Redis (REDIS_URL) for the real worker")
    url = redis_url_for_tests()
    redis.Redis.from_url(url).flushdb()
    from dramatiq.brokers.redis import RedisBroker

    broker = RedisBroker(url=url, namespace="chatdesk")
    for actor in (pipeline.message_deliver, sweeper.outbox_sweep):
        broker.declare_actor(actor)
        monkeypatch.setattr(actor, "broker", broker)
    LOGS.mkdir(parents=True, exist_ok=True)
    return url


@pytest.fixture
def simulator(services):
    port = free_port()
    args = [
        PYTHON,
        "manage.py",
        "wasender_sim",
        "--skip-checks",
        "--port",
        str(port),
        "--webhook-url",
        "",
        "--seed",
        "7",
    ]
    with running(
        args, env=process_env(), ready_url=f"http://127.0.0.1:{port}/", log=LOGS / "sim.log"
    ):
        yield f"http://127.0.0.1:{port}"


def sim_config(sim: str, **knobs) -> None:
    httpx.post(f"{sim}/_sim/config", json=knobs).raise_for_status()
    httpx.post(f"{sim}/_sim/reset").raise_for_status()


def sim_stats(sim: str) -> dict:
    return httpx.get(f"{sim}/_sim/stats").json()


def worker_env(redis_url: str, sim: str, rate: int):
    return process_env(
        REDIS_URL=redis_url,
        DRAMATIQ_BROKER="redis",
        WASENDER_API_KEY="",
        WASENDER_BASE_URL=f"{sim}/api",
        WASENDER_TIMEOUT=1.5,
        SEND_RATE_PER_MINUTE=rate,
        SEND_RETRY_BASE_SECONDS=0.3,
        SEND_RETRY_MAX_SECONDS=2,
        SEND_MAX_ATTEMPTS=12,
        SEND_STUCK_SENDING_SECONDS=4,
        SEND_UNCONFIRMED_SECONDS=5,
        SEND_STUCK_QUEUED_SECONDS=6,
        LOG_LEVEL="WARNING",
    )


def worker(env, name):
    return running(dramatiq_args(processes=1, threads=4), env=env, log=LOGS / f"{name}.log")


def queue_messages(count: int, *, base: int) -> list[int]:
    phones = [f"+59399{base + i:07d}" for i in range(count)]
    return [
        message_send(phone=p, text=f"Hola {i}", author_kind="api").id for i, p in enumerate(phones)
    ]


def statuses(ids) -> dict:
    return dict(Message.objects.filter(id__in=ids).values_list("id", "status"))


def wait_final(ids, *, timeout: float, tick=None) -> dict:
    def final() -> dict | None:
        current = statuses(ids)
        return current if all(s in FINAL for s in current.values()) else None

    def pending() -> str:
        left = {k: v for k, v in statuses(ids).items() if v not in FINAL}
        return f"{len(left)} not final, {list(left.items())[:10]}"

    return wait_until(
        final, timeout=timeout, what="every message final", every=1.0, tick=tick, detail=pending
    )


def per_recipient(sim: str, ids) -> dict:
    by_recipient = sim_stats(sim)["sends_by_recipient"]
    rows = Message.objects.filter(id__in=ids).select_related("conversation__customer")
    return {m.id: (m.status, by_recipient.get(m.conversation.customer.phone, 0)) for m in rows}


def test_steady_pace_exactly_once_and_no_429(services, simulator):
    # The provider allows 300/min with a bucket of 2: any burst above the pace would be a 429.
    sim_config(simulator, rate_per_minute=300, burst=2)
    ids = queue_messages(200, base=0)
    with worker(worker_env(services, simulator, 300), "steady"):
        final = wait_final(ids, timeout=120)
    assert set(final.values()) == {"sent"}
    counts = per_recipient(simulator, ids)
    assert all(n == 1 for _, n in counts.values()), counts
    stats = sim_stats(simulator)
    assert stats["sends_accepted"] == 200
    assert stats["responses_429"] == 0
    times = sorted(Message.objects.filter(id__in=ids).values_list("sent_at", flat=True))
    rate = (len(times) - 1) * 60 / (times[-1] - times[0]).total_seconds()
    print(f"\nsteady: 200 sent, 0 x 429, achieved {rate:.1f}/min for 300/min configured")
    assert abs(rate - 300) / 300 <= 0.05


def test_sigkill_mid_run_sends_nothing_twice_and_loses_nothing(services, simulator):
    # A third of the sends are accepted but answered a second late: a kill then falls between
    # the provider's "yes" and our commit, the case that must never be resent.
    sim_config(simulator, rate_per_minute=600, latency_ms=50, lost_answers=0.3, timeout_seconds=1.0)
    ids = queue_messages(100, base=20_000)
    env = worker_env(services, simulator, 600)
    with worker(env, "killed") as proc:
        wait_until(
            lambda: Message.objects.filter(id__in=ids, status="sent").count() >= 30,
            timeout=60,
            every=0.05,
            what="the worker getting going (30 sent)",
        )
        stop(proc, signal.SIGKILL)
    at_kill = {s: list(statuses(ids).values()).count(s) for s in ("sent", "sending", "queued")}

    last_tick = [0.0]

    def scheduler_tick():  # what the scheduler process does every SEND_SWEEP_EVERY_SECONDS
        if time.monotonic() - last_tick[0] >= 3:
            last_tick[0] = time.monotonic()
            sweeper.outbox_sweep.send()

    with worker(env, "restarted"):
        final = wait_final(ids, timeout=120, tick=scheduler_tick)
    counts = per_recipient(simulator, ids)
    unknown = [n for status, n in counts.values() if status == "unknown"]
    print(
        f"\nsigkill: at the kill {at_kill}; after restart and sweeps: "
        f"{list(final.values()).count('sent')} sent, {len(unknown)} unknown "
        f"({sum(unknown)} of them had reached the provider)"
    )
    assert set(final.values()) <= {"sent", "unknown"}
    assert all(n == 1 for status, n in counts.values() if status == "sent")
    assert all(n <= 1 for _, n in counts.values())
    assert (
        Message.objects.filter(id__in=ids, status="unknown")
        .exclude(failure_reason__startswith="Estado desconocido")
        .count()
        == 0
    )
