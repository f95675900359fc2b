"""Faults on the way out: Redis restarted mid-burst and mid-campaign, workers SIGKILLed
mid-campaign, and a provider answering 429 storms, 5xx, timeouts and slow responses.

Every message has its own recipient, so the simulator's sends-per-recipient count is a
per-message count of what reached the provider. The invariant: every queued message ends
`sent` (and reached the provider exactly once), `failed`, or `unknown` (counted and printed;
never sent twice); no campaign recipient gets two sends. Faults after the provider accepted a
send are in test_campaign_faults.py.
"""

import signal

from tests.faults.sends import (
    Supervisor,
    all_final,
    assert_never_twice_nothing_lost,
    campaign_make,
    campaign_state,
    campaign_tally,
    queue_messages,
)
from tests.faults.services import Stack
from tests.procs import stop
from tests.waiting import wait_until


def check_each_sent_once(stack: Stack, rows: dict, label: str) -> dict:
    by_recipient = stack.sim_stats()["sends_by_recipient"]
    counts = {"sent": 0, "failed": 0, "unknown": 0}
    unknown_reached = 0
    for status, phone, _ in rows.values():
        status = "sent" if status in ("delivered", "read", "played") else status
        counts[status] += 1
        unknown_reached += status == "unknown" and by_recipient.get(phone, 0) > 0
    attempts = sum(a for _, _, a in rows.values())
    print(
        f"\n{label}: {counts}; {unknown_reached} of the unknown had reached the provider; "
        f"{attempts} attempts for {len(rows)} messages"
    )
    assert set(counts) == {"sent", "failed", "unknown"}
    assert all(
        by_recipient.get(phone) == 1
        for status, phone, _ in rows.values()
        if status in ("sent", "delivered", "read", "played")
    )
    assert all(by_recipient.get(phone, 0) <= 1 for _, phone, _ in rows.values())
    return counts


def test_every_queued_message_is_sent_at_most_once_across_a_redis_restart_mid_send_burst(stack):
    stack.settings.update(SEND_RATE_PER_MINUTE="600")
    stack.simulator(rate_per_minute=100_000, latency_ms=40)
    ids = queue_messages(stack, 150)
    stack.worker()
    scheduler = Supervisor(stack)
    wait_until(lambda: stack.sim_stats()["sends_accepted"] >= 40, timeout=60, what="40 sends")
    stack.redis.restart(1.0)
    at_restart = stack.sim_stats()["sends_accepted"]
    rows = wait_until(
        lambda: all_final(stack, ids), timeout=120, what="every message final", tick=scheduler
    )
    counts = check_each_sent_once(stack, rows, "redis restart mid-send-burst")
    print(f"  {at_restart} sent when Redis restarted; scheduler restarted {scheduler.restarts}x")
    assert counts["failed"] == 0


def test_no_campaign_recipient_gets_two_sends_across_two_worker_sigkills_and_a_redis_restart(
    stack,
):
    stack.settings.update(SEND_RATE_PER_MINUTE="6000")
    stack.simulator(rate_per_minute=100_000, latency_ms=30)
    campaign = campaign_make(stack, 1000)
    scheduler = Supervisor(stack)
    worker = stack.worker("worker-1", threads=8)
    marks = []
    for n, (threshold, fault) in enumerate([(200, "kill"), (450, "kill"), (700, "redis")]):
        wait_until(
            lambda t=threshold: stack.sim_stats()["sends_accepted"] >= t,
            timeout=90,
            what=f"{threshold} campaign sends",
            tick=scheduler,
        )
        marks.append(stack.sim_stats()["sends_accepted"])
        if fault == "kill":
            stop(worker, signal.SIGKILL)
            worker = stack.worker(f"worker-{n + 2}", threads=8)
        else:
            stack.redis.restart(1.0)
    wait_until(
        lambda: campaign_state(stack, campaign) == "completed",
        timeout=180,
        what="the campaign to complete",
        tick=scheduler,
    )
    tally = campaign_tally(stack, campaign)
    print("\n" + tally.line("SIGKILL x2 and a Redis restart"))
    print(f"  faults at {marks} sends; scheduler restarted {scheduler.restarts}x")
    assert tally.recipients == 1000
    assert_never_twice_nothing_lost(stack, campaign, tally)


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


def test_5xx_and_timeouts_before_acceptance_never_send_twice(stack):
    """The simulator's own 5xx and timeouts strike before it does anything, but from here they
    look like any 5xx or timeout: the send may have happened. None is sent again; those end
    unknown (nothing reached the phone), the others sent once."""
    stack.settings.update(SEND_UNCONFIRMED_SECONDS="4")
    stack.simulator(
        rate_per_minute=100_000, fail_5xx=0.2, timeouts=0.1, timeout_seconds=2.5, latency_ms=400
    )
    ids = queue_messages(stack, 60)
    stack.worker(threads=8)
    scheduler = Supervisor(stack)
    rows = wait_until(
        lambda: all_final(stack, ids), timeout=120, what="every message final", tick=scheduler
    )
    stats = stack.sim_stats()
    counts = check_each_sent_once(stack, rows, "5xx 20%, timeouts 10%, latency 200-600 ms")
    print(f"  {stats['injected_5xx']} x 5xx, {stats['injected_timeouts']} timeouts injected")
    sent = stats["sends_accepted"]
    assert counts == {"sent": sent, "failed": 0, "unknown": 60 - sent}
    assert stats["injected_5xx"] > 0 and stats["injected_timeouts"] > 0
