"""Faults on the way out: Redis restarted mid-burst and mid-campaign, a worker SIGKILLed
mid-campaign, and a provider answering 429 storms, 5xx, timeouts and slow responses.

Every message has its own recipient, so the simulator's sends-per-recipient count is a
per-message count of what reached the provider. The invariant: every queued message ends
`sent` (and reached the provider exactly once), `failed`, or `unknown` (counted and printed;
never sent twice); no campaign recipient gets two sends.
"""

import re
import signal
import time

import pytest

from tests.faults.services import Stack
from tests.procs import stop

pytestmark = [pytest.mark.faults, pytest.mark.integration]

FINAL = {"sent", "failed", "unknown"}
QUEUE_CODE = """
from outbound.services import message_send
ids = [
    message_send(phone=f"+59398{{i:07d}}", text=f"Hola {{i}}", author_kind="api").id
    for i in range({start}, {start} + {count})
]
print("IDS", ",".join(map(str, ids)))
"""
CAMPAIGN_CODE = """
from datetime import time
from django.utils import timezone
from customers.models import Customer
from outbound.campaigns import campaign_create
from outbound.models import Campaign
Customer.objects.bulk_create(
    Customer(name=f"Cliente {{i}}", phone=f"+5939870{{i:05d}}") for i in range({count})
)
campaign = campaign_create(
    title="Promo fallos", body="Hola {{nombre}}, tenemos una promo para ti", filters={{}},
    window_start=time(0, 0), window_end=time(23, 59, 59),
)
# Due now: the scheduler's tick launches it.
Campaign.objects.filter(pk=campaign.pk).update(state="scheduled", scheduled_at=timezone.now())
print("CAMPAIGN", campaign.pk)
"""


def queue_messages(stack: Stack, count: int, start: int = 0) -> list[int]:
    out = stack.shell(QUEUE_CODE.format(start=start, count=count))
    return [int(n) for n in re.search(r"IDS ([\d,]+)", out)[1].split(",")]


def outbox(stack: Stack, ids: list[int]) -> dict[int, tuple[str, str, int]]:
    """id -> (status, phone, attempts)."""
    rows = stack.sql(
        "SELECT m.id, m.status, cu.phone, m.attempts FROM inbox_message m "
        "JOIN inbox_conversation c ON c.id = m.conversation_id "
        "JOIN customers_customer cu ON cu.id = c.customer_id WHERE m.id = ANY(%s)",
        ids,
    )
    return {row[0]: row[1:] for row in rows}


def wait_until(predicate, *, timeout: float, what: str, tick=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if tick:
            tick()
        time.sleep(0.25)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")


def all_final(stack: Stack, ids: list[int]) -> dict | None:
    rows = outbox(stack, ids)
    return rows if all(status in FINAL for status, _, _ in rows.values()) else None


def check_each_sent_once(stack: Stack, rows: dict, label: str) -> dict:
    by_recipient = stack.sim_stats()["sends_by_recipient"]
    counts = {"sent": 0, "failed": 0, "unknown": 0}
    unknown_reached = 0
    for status, phone, _ in rows.values():
        counts[status] += 1
        unknown_reached += status == "unknown" and by_recipient.get(phone, 0) > 0
    attempts = sum(a for _, _, a in rows.values())
    print(
        f"\n{label}: {counts}; {unknown_reached} of the unknown had reached the provider; "
        f"{attempts} attempts for {len(rows)} messages"
    )
    assert set(counts) == {"sent", "failed", "unknown"}
    assert all(
        by_recipient.get(phone) == 1 for status, phone, _ in rows.values() if status == "sent"
    )
    assert all(by_recipient.get(phone, 0) <= 1 for _, phone, _ in rows.values())
    return counts


class Supervisor:
    """Keeps the scheduler running as docker's `restart: unless-stopped` would, and counts how
    often it had to."""

    def __init__(self, stack: Stack):
        self.stack, self.restarts = stack, 0
        self.proc = stack.scheduler()

    def __call__(self):
        if self.proc.poll() is not None:
            self.restarts += 1
            self.proc = self.stack.scheduler(f"scheduler-{self.restarts}")


def test_every_queued_message_is_sent_at_most_once_across_a_redis_restart_mid_send_burst(stack):
    stack.settings.update(SEND_RATE_PER_MINUTE="600")
    stack.simulator(rate_per_minute=100_000, latency_ms=40)
    ids = queue_messages(stack, 150)
    stack.worker()
    scheduler = Supervisor(stack)
    wait_until(lambda: stack.sim_stats()["sends_accepted"] >= 40, timeout=60, what="40 sends")
    stack.redis.restart(1.0)
    at_restart = stack.sim_stats()["sends_accepted"]
    rows = wait_until(lambda: all_final(stack, ids), timeout=120, what="every message final",
                      tick=scheduler)  # fmt: skip
    counts = check_each_sent_once(stack, rows, "redis restart mid-send-burst")
    print(f"  {at_restart} sent when Redis restarted; scheduler restarted {scheduler.restarts}x")
    assert counts["failed"] == 0


def test_no_campaign_recipient_gets_two_sends_across_a_worker_sigkill_and_a_redis_restart(stack):
    stack.settings.update(SEND_RATE_PER_MINUTE="3000")
    stack.simulator(rate_per_minute=100_000, latency_ms=30)
    out = stack.shell(CAMPAIGN_CODE.format(count=400))
    campaign = int(re.search(r"CAMPAIGN (\d+)", out)[1])
    scheduler = Supervisor(stack)
    worker = stack.worker("worker-1", threads=8)
    wait_until(lambda: stack.sim_stats()["sends_accepted"] >= 100, timeout=60,
               what="100 campaign sends", tick=scheduler)  # fmt: skip
    stop(worker, signal.SIGKILL)
    at_kill = stack.sim_stats()["sends_accepted"]
    stack.worker("worker-2", threads=8)
    wait_until(lambda: stack.sim_stats()["sends_accepted"] >= 250, timeout=60,
               what="250 campaign sends", tick=scheduler)  # fmt: skip
    stack.redis.restart(1.0)
    at_restart = stack.sim_stats()["sends_accepted"]

    def completed():
        return stack.sql("SELECT state FROM outbound_campaign WHERE id = %s", campaign)[0][0] == (
            "completed"
        )

    wait_until(completed, timeout=150, what="the campaign to complete", tick=scheduler)
    by_recipient = stack.sim_stats()["sends_by_recipient"]
    recipients = stack.sql(
        "SELECT r.state, cu.phone FROM outbound_campaignrecipient r "
        "JOIN customers_customer cu ON cu.id = r.customer_id WHERE r.campaign_id = %s",
        campaign,
    )
    states: dict[str, int] = {}
    for state, _ in recipients:
        states[state] = states.get(state, 0) + 1
    unknown_reached = sum(1 for s, p in recipients if s == "unknown" and by_recipient.get(p))
    print(
        f"\ncampaign of 400: SIGKILL at {at_kill} sends, Redis restart at {at_restart}; "
        f"recipients {states}, {unknown_reached} unknown had reached the provider; "
        f"max sends per recipient {max(by_recipient.values())}; "
        f"scheduler restarted {scheduler.restarts}x"
    )
    assert len(recipients) == 400
    assert max(by_recipient.values()) == 1
    assert set(states) <= {"sent", "unknown"}
    assert all(by_recipient.get(phone) == 1 for state, phone in recipients if state == "sent")


def test_every_message_is_sent_once_through_a_429_storm_with_retry_after_honoured(stack):
    # The provider allows 6 a minute, one at a time; we are configured for ten times that.
    stack.settings.update(SEND_RATE_PER_MINUTE="60")
    stack.simulator(rate_per_minute=6, burst=1)
    ids = queue_messages(stack, 4)
    stack.worker()
    rows = wait_until(lambda: all_final(stack, ids), timeout=90, what="every message final")
    stats = stack.sim_stats()
    counts = check_each_sent_once(stack, rows, "429 storm (6/min, burst 1, we try 60/min)")
    print(f"  {stats['responses_429']} x 429 for 4 messages")
    assert counts == {"sent": 4, "failed": 0, "unknown": 0}
    # Honouring retry_after holds every sender until the provider has a token again: about one
    # 429 per message. Ignoring it at our pace would be about ten per message.
    assert stats["responses_429"] <= 3 * len(ids)


def test_every_message_is_sent_once_through_5xx_timeouts_and_slow_responses(stack):
    stack.simulator(
        rate_per_minute=100_000, fail_5xx=0.2, timeouts=0.1, timeout_seconds=2.5, latency_ms=400
    )
    ids = queue_messages(stack, 60)
    stack.worker(threads=8)
    rows = wait_until(lambda: all_final(stack, ids), timeout=120, what="every message final")
    stats = stack.sim_stats()
    counts = check_each_sent_once(stack, rows, "5xx 20%, timeouts 10%, latency 200-600 ms")
    print(f"  {stats['injected_5xx']} x 5xx, {stats['injected_timeouts']} timeouts injected")
    assert counts == {"sent": 60, "failed": 0, "unknown": 0}
    assert stats["injected_5xx"] > 0 and stats["injected_timeouts"] > 0
