"""What an operator asks: is it ready (readiness_checks), and is work flowing (ops_status).

Read-only. The same selectors feed /readyz, the /ops/ page and `manage.py ops_status`.
"""

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from importlib import import_module

import dramatiq
import redis
from django.conf import settings
from django.db import connection
from django.db.models import Count
from django.utils import timezone
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker
from dramatiq.common import dq_name, q_name, xq_name

from inbox.models import Message, SessionState, WebhookEvent

log = logging.getLogger(__name__)

PROBE_TIMEOUT_SECONDS = 2.0
STUCK_MINUTES_DEFAULT = 10


# --- readiness ---------------------------------------------------------------------------------


def _database_ok() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def _redis_ok() -> None:
    client = redis.Redis.from_url(
        settings.REDIS_URL,
        socket_timeout=PROBE_TIMEOUT_SECONDS,
        socket_connect_timeout=PROBE_TIMEOUT_SECONDS,
    )
    try:
        client.ping()
    finally:
        client.close()


def _broker_ok() -> None:
    broker = dramatiq.get_broker()
    if isinstance(broker, RedisBroker):
        broker.client.ping()
    elif not isinstance(broker, StubBroker):
        raise RuntimeError(f"unknown broker {type(broker).__name__}")


def readiness_checks() -> dict[str, str]:
    """{"database": "ok"|"error", "redis": ..., "broker": ...}. Redis is checked only when
    REDIS_URL is set (embedded mode has none). The error itself goes to the log, never to
    the answer: a driver's message can carry a host or a URL."""
    checks = {"database": _database_ok, "broker": _broker_ok}
    if settings.REDIS_URL:
        checks["redis"] = _redis_ok
    results = {}
    for name, check in checks.items():
        try:
            check()
        except Exception as exc:  # any failure at all means "not ready"
            log.warning("readyz: %s failed: %s", name, type(exc).__name__)
            results[name] = "error"
        else:
            results[name] = "ok"
    return results


# --- queues ------------------------------------------------------------------------------------


@dataclass
class QueueDepth:
    name: str
    ready: int = 0
    delayed: int = 0
    in_progress: int = 0
    dead: int = 0


def _declared_queues(broker) -> set[str]:
    # The web process has not necessarily imported every actor: the worker's list is the truth.
    for module in settings.ACTOR_MODULES:
        import_module(module)
    return {q_name(name) for name in broker.get_declared_queues()}


def _redis_queue_names(broker: RedisBroker) -> set[str]:
    prefix = broker.namespace + ":"
    names = set()
    for key in broker.client.scan_iter(match=prefix + "*", count=500):
        key = key.decode()[len(prefix) :]
        if key.startswith("__"):
            continue
        names.add(q_name(key.removesuffix(".msgs")))
    return names


def queue_depths(broker=None) -> list[QueueDepth]:
    """Per Dramatiq queue: waiting, delayed (retries and scheduled), taken by a worker but not
    acknowledged, and dead-lettered. Redis: the broker's own keys (a list per queue and per
    delay queue, a hash of message bodies, a sorted set for the dead letters)."""
    broker = broker or dramatiq.get_broker()
    names = _declared_queues(broker) if broker is dramatiq.get_broker() else set()
    if isinstance(broker, RedisBroker):
        names |= _redis_queue_names(broker)
        client, ns = broker.client, broker.namespace
        depths = []
        for name in sorted(names):
            pipe = client.pipeline(transaction=False)
            pipe.llen(f"{ns}:{name}")
            pipe.hlen(f"{ns}:{name}.msgs")
            pipe.llen(f"{ns}:{dq_name(name)}")
            pipe.hlen(f"{ns}:{dq_name(name)}.msgs")
            pipe.zcard(f"{ns}:{xq_name(name)}")
            ready, bodies, delayed, delayed_bodies, dead = pipe.execute()
            depths.append(
                QueueDepth(
                    name=name,
                    ready=ready,
                    delayed=delayed,
                    in_progress=max(bodies - ready, 0) + max(delayed_bodies - delayed, 0),
                    dead=dead,
                )
            )
        return depths
    if isinstance(broker, StubBroker):
        names |= {q_name(name) for name in broker.queues}
        return [
            QueueDepth(
                name=name,
                ready=broker.queues[name].qsize() if name in broker.queues else 0,
                delayed=broker.queues[dq_name(name)].qsize()
                if dq_name(name) in broker.queues
                else 0,
                dead=len(broker.dead_letters_by_queue.get(name, [])),
            )
            for name in sorted(names)
        ]
    return []


# --- the whole picture ---------------------------------------------------------------------------


@dataclass
class OpsStatus:
    checked_at: datetime
    stuck_minutes: int
    queues: list[QueueDepth] = field(default_factory=list)
    queues_error: str = ""
    stuck_queued: int = 0
    stuck_sending: int = 0
    stuck_oldest: list[Message] = field(default_factory=list)
    unconfirmed_count: int = 0
    unconfirmed_oldest: list[Message] = field(default_factory=list)
    ignored_recent: list[WebhookEvent] = field(default_factory=list)
    last_webhook: WebhookEvent | None = None
    webhook_counts: dict[str, int] = field(default_factory=dict)
    sessions: list[SessionState] = field(default_factory=list)

    @property
    def dead_letters(self) -> int:
        return sum(q.dead for q in self.queues)

    @property
    def webhooks_failed(self) -> int:
        return self.webhook_counts.get(WebhookEvent.State.FAILED, 0)


def stuck_messages(*, minutes: int, now: datetime):
    """Outgoing messages waiting longer than they should: queued (and due) or sending for more
    than `minutes`. The sweeper deals with them; a growing number means it is not running."""
    before = now - timedelta(minutes=minutes)
    queued = Message.objects.filter(
        direction=Message.Direction.OUT, status=Message.Status.QUEUED, created_at__lt=before
    ).exclude(scheduled_for__gte=before)
    sending = Message.objects.filter(
        direction=Message.Direction.OUT, status=Message.Status.SENDING, sending_at__lt=before
    )
    return queued, sending


def ops_status(*, stuck_minutes: int = STUCK_MINUTES_DEFAULT, broker=None) -> OpsStatus:
    now = timezone.now()
    status = OpsStatus(checked_at=now, stuck_minutes=stuck_minutes)
    try:
        status.queues = queue_depths(broker)
    except redis.RedisError as exc:
        log.warning("ops_status: queues unreadable: %s", type(exc).__name__)
        status.queues_error = type(exc).__name__
    queued, sending = stuck_messages(minutes=stuck_minutes, now=now)
    status.stuck_queued = queued.count()
    status.stuck_sending = sending.count()
    status.stuck_oldest = list(
        (queued | sending).select_related("conversation__customer").order_by("created_at")[:10]
    )
    unconfirmed = Message.objects.filter(status=Message.Status.UNCONFIRMED)
    status.unconfirmed_count = unconfirmed.count()
    status.unconfirmed_oldest = list(
        unconfirmed.select_related("conversation__customer").order_by("sending_at")[:10]
    )
    # What the intake stored but could not use (no sender, a group...), with its reason.
    status.ignored_recent = list(
        WebhookEvent.objects.filter(state=WebhookEvent.State.IGNORED)
        .order_by("-received_at", "-id")
        .only("id", "received_at", "event", "error")[:10]
    )
    status.last_webhook = WebhookEvent.objects.order_by("-received_at", "-id").first()
    status.webhook_counts = dict(
        WebhookEvent.objects.values_list("state").annotate(n=Count("id")).order_by()
    )
    status.sessions = list(SessionState.objects.order_by("session"))
    return status
