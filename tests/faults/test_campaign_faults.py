"""A campaign to 1,000 customers under the faults a real provider has after it accepted a send,
counted at the simulator's end: no customer messaged twice, nothing lost (every recipient
ends sent, failed or opted out with a reason, or unknown), the campaign completed.

The production processes run once for the module on private PostgreSQL and Redis
(tests/faults/services.py): one daphne taking the webhooks, a Dramatiq worker, the scheduler,
and the simulator over HTTP. Each test sets the simulator's knobs (which resets its counts) and
sends its own campaign to 1,000 customers of its own. Each prints its tally; bench/RESULTS.md
keeps the figures.
"""

import itertools
import time

import pytest

from tests.faults.sends import (
    Supervisor,
    assert_never_twice_nothing_lost,
    campaign_make,
    campaign_state,
    campaign_tally,
    unknown_explained,
)
from tests.waiting import wait_until

RECIPIENTS = 1000
# Every fault knob off: each test turns on its own (the simulator keeps knobs across resets).
FAULT_KNOBS = (
    "lost_answers",
    "accept_then_5xx",
    "accept_then_drop",
    "answer_without_id",
    "echo_first",
    "out_of_order",
    "duplicates",
)
CALM = {**dict.fromkeys(FAULT_KNOBS, 0), "rate_per_minute": 100_000, "burst": 0}
# Statuses beyond "sent" only where they are the fault: a webhook less per send and step.
QUIET = {"status_until": 2, "status_delays": [0.2]}
FAULTS = {
    "10% answers lost": {"lost_answers": 0.1, "timeout_seconds": 3, **QUIET},
    "10% 5xx after acceptance": {"accept_then_5xx": 0.1, **QUIET},
    "10% connections cut after the request": {"accept_then_drop": 0.1, **QUIET},
    "10% answers without msgId": {"answer_without_id": 0.1, **QUIET},
    "every echo before the answer": {"echo_first": 1.0, **QUIET},
    "statuses out of order and duplicated": {
        "out_of_order": 0.5,
        "duplicates": 0.3,
        "status_until": 4,
        "status_delays": [0.2, 0.4, 0.6],
    },
}
_batches = itertools.count()


@pytest.fixture(scope="module")
def running(module_stack):
    """daphne, the worker (two processes: the webhooks keep one busy), the scheduler under a
    supervisor, and the simulator, started once."""
    stack = module_stack
    # 50 sends a second (WaSender's paid plan is 256 a minute): fast, yet slow enough that the
    # webhooks each send brings back (up to six with statuses and duplicates) keep up on a
    # small machine, as they must for the echo to settle an unconfirmed send in time.
    stack.settings.update(
        SEND_RATE_PER_MINUTE="3000", SEND_RETRY_MAX_SECONDS="3", SEND_UNCONFIRMED_SECONDS="20"
    )
    stack.daphne()
    stack.simulator(rate_per_minute=100_000)
    stack.worker(threads=8, processes=2)
    return stack, Supervisor(stack)


def campaign_run(running, knobs: dict) -> int:
    stack, scheduler = running
    stack.sim_config(**{**CALM, **knobs})
    campaign = campaign_make(stack, RECIPIENTS, start=next(_batches) * RECIPIENTS)
    started = time.monotonic()
    wait_until(
        lambda: campaign_state(stack, campaign) == "completed",
        timeout=240,
        what="the campaign to complete",
        tick=scheduler,
    )
    print(f"\ncompleted in {time.monotonic() - started:.1f}s")
    # Count once every webhook of the campaign's messages has been pushed and applied.
    wait_until(
        stack.sim_settled,
        timeout=180,
        what="the simulator's last webhooks",
        tick=scheduler,
    )
    unapplied = "SELECT count(*) FROM inbox_webhookevent WHERE state IN ('pending', 'failed')"
    wait_until(
        lambda: stack.sql(unapplied)[0][0] == 0,
        timeout=120,
        what="every webhook applied",
        tick=scheduler,
    )
    return campaign


@pytest.mark.parametrize("knobs", FAULTS.values(), ids=FAULTS.keys())
def test_a_campaign_under_faults_after_acceptance_reaches_each_customer_once(running, knobs):
    stack, _ = running
    campaign = campaign_run(running, knobs)
    tally = campaign_tally(stack, campaign)
    label = next(name for name, k in FAULTS.items() if k == knobs)
    print(tally.line(label))
    if tally.statuses.get("unknown"):
        print(unknown_explained(stack, campaign))
    assert tally.recipients == RECIPIENTS
    assert_never_twice_nothing_lost(stack, campaign, tally)
    # The echo settles almost every lost answer: the customer has the message, and so does
    # the history; only what the echo could not settle in time is unknown.
    assert tally.sends == RECIPIENTS
    assert tally.statuses.get("unknown", 0) <= tally.ambiguous // 10


RETRYING_CODE = """
from inbox.models import Message
rows = Message.objects.filter(author_kind="campaign", status="queued", attempts__gte=1)
print("PHONES", ",".join(rows.values_list("conversation__customer__phone", flat=True)[:{n}]))
"""


def test_a_customer_who_says_baja_while_their_message_is_retrying_never_gets_it(running):
    """A 429 storm (the provider allows 12 a minute, one at a time) keeps the campaign's first
    messages retrying; some of those customers write BAJA; once the storm passes, nobody who
    asked out receives the promotion."""
    stack, scheduler = running
    stack.sim_config(**{**CALM, **QUIET, "rate_per_minute": 12, "burst": 1})
    campaign = campaign_make(stack, RECIPIENTS, start=next(_batches) * RECIPIENTS)

    def retrying():
        out = stack.shell(RETRYING_CODE.format(n=8))
        phones = [p for p in out.split("PHONES ", 1)[1].strip().split(",") if p]
        return phones if len(phones) >= 4 else None

    phones = wait_until(retrying, timeout=90, what="messages retrying", tick=scheduler)
    for phone in phones:
        stack.sim_inbound(phone=phone, text="BAJA")
    cancelled = (
        "SELECT count(*) FROM inbox_message m JOIN inbox_conversation c ON c.id = "
        "m.conversation_id JOIN customers_customer cu ON cu.id = c.customer_id "
        "WHERE m.author_kind = 'campaign' AND m.status = 'cancelled' AND cu.phone = ANY(%s)"
    )
    wait_until(
        lambda: stack.sql(cancelled, phones)[0][0] == len(phones),
        timeout=60,
        what="their messages cancelled",
        tick=scheduler,
    )
    stack.sim_config(rate_per_minute=100_000, burst=0, reset=False)
    wait_until(
        lambda: campaign_state(stack, campaign) == "completed",
        timeout=240,
        what="the campaign to complete",
        tick=scheduler,
    )
    tally = campaign_tally(stack, campaign)
    print("\n" + tally.line(f"BAJA from {len(phones)} customers while retrying"))
    # The bot's confirmation goes to them too: only the campaign's own text counts here.
    promos = [m["to"] for m in stack.sim_messages() if m["text"].startswith("Hola Cliente")]
    assert not set(phones) & set(promos)
    assert len(promos) == len(set(promos)) == RECIPIENTS - len(phones)
    assert tally.states.get("opted_out") == len(phones)
    assert_never_twice_nothing_lost(stack, campaign, tally)
