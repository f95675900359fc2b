"""A campaign to 1,000 customers under the faults a real provider has after it accepted a send,
counted at the simulator's end: no customer messaged twice, nothing lost (every recipient
ends sent, failed or opted out with a reason, or unknown), the campaign completed.

The production processes run on private PostgreSQL and Redis (tests/faults/services.py): one
daphne taking the webhooks, a Dramatiq worker, the scheduler, and the simulator over HTTP.
Each test prints its tally; bench/RESULTS.md keeps the figures.
"""

import time

import pytest

from tests.faults.sends import (
    Supervisor,
    assert_never_twice_nothing_lost,
    campaign_make,
    campaign_state,
    campaign_tally,
    wait_until,
)

pytestmark = [pytest.mark.faults, pytest.mark.integration]

RECIPIENTS = 1000
FAULTS = {
    "10% answers lost": {"lost_answers": 0.1, "timeout_seconds": 3},
    "10% 5xx after acceptance": {"accept_then_5xx": 0.1},
    "10% connections cut after the request": {"accept_then_drop": 0.1},
    "10% answers without msgId": {"answer_without_id": 0.1},
    "every echo before the answer": {"echo_first": 1.0},
    "statuses out of order and duplicated": {"out_of_order": 0.5, "duplicates": 0.3},
}


def run_campaign(stack, knobs: dict) -> int:
    stack.settings.update(SEND_RATE_PER_MINUTE="6000", SEND_UNCONFIRMED_SECONDS="8")
    stack.daphne()
    stack.simulator(rate_per_minute=100_000, status_delays=[0.2, 0.5, 1.0], **knobs)
    campaign = campaign_make(stack, RECIPIENTS)
    stack.worker(threads=8)
    scheduler = Supervisor(stack)
    started = time.monotonic()
    wait_until(lambda: stack.sim_stats()["sends_accepted"], timeout=60, what="a first send",
               tick=scheduler)  # fmt: skip
    first = time.monotonic() - started
    wait_until(lambda: stack.sim_stats()["sends_accepted"] >= RECIPIENTS, timeout=240,
               what="every send", tick=scheduler)  # fmt: skip
    sent = time.monotonic() - started
    wait_until(lambda: campaign_state(stack, campaign) == "completed", timeout=240,
               what="the campaign to complete", tick=scheduler)  # fmt: skip
    done = time.monotonic() - started
    print(f"\nfirst send {first:.1f}s, all sent {sent:.1f}s, completed {done:.1f}s")
    return campaign


@pytest.mark.parametrize("knobs", FAULTS.values(), ids=FAULTS.keys())
def test_a_campaign_under_faults_after_acceptance_reaches_each_customer_once(stack, knobs):
    campaign = run_campaign(stack, knobs)
    tally = campaign_tally(stack, campaign)
    label = next(name for name, k in FAULTS.items() if k == knobs)
    print("\n" + tally.line(label))
    assert tally.recipients == RECIPIENTS
    assert_never_twice_nothing_lost(stack, campaign, tally)
    # The echo settles almost every lost answer: the customer has the message, and so
    # does the history; only what the echo could not reach in time is unknown.
    assert tally.sends == RECIPIENTS
    assert tally.statuses.get("unknown", 0) <= tally.ambiguous // 10


BAJA_CODE = """
from inbox.models import Message
rows = Message.objects.filter(author_kind="campaign", status="queued", attempts__gte=1)
print("PHONES", ",".join(rows.values_list("conversation__customer__phone", flat=True)[:{n}]))
"""


def test_a_customer_who_says_baja_while_their_message_is_retrying_never_gets_it(stack):
    """A 429 storm keeps the campaign's first messages retrying; some of those customers
    write BAJA; once the storm passes, nobody who asked out receives the promotion."""
    stack.settings.update(SEND_RATE_PER_MINUTE="6000", SEND_RETRY_MAX_SECONDS="3")
    stack.daphne()
    stack.simulator(rate_per_minute=1, burst=1)
    campaign = campaign_make(stack, RECIPIENTS)
    stack.worker(threads=8)
    scheduler = Supervisor(stack)

    def retrying():
        out = stack.shell(BAJA_CODE.format(n=8))
        phones = [p for p in out.split("PHONES ", 1)[1].strip().split(",") if p]
        return phones if len(phones) >= 5 else None

    phones = wait_until(retrying, timeout=90, what="messages retrying", tick=scheduler)
    for phone in phones:
        stack.sim_inbound(phone=phone, text="BAJA")
    cancelled = (
        "SELECT count(*) FROM inbox_message m JOIN inbox_conversation c ON c.id = "
        "m.conversation_id JOIN customers_customer cu ON cu.id = c.customer_id "
        "WHERE m.author_kind = 'campaign' AND m.status = 'cancelled' AND cu.phone = ANY(%s)"
    )
    wait_until(lambda: stack.sql(cancelled, phones)[0][0] == len(phones), timeout=60,
               what="their messages cancelled", tick=scheduler)  # fmt: skip
    stack.sim_config(rate_per_minute=100_000, burst=0, reset=False)
    wait_until(lambda: campaign_state(stack, campaign) == "completed", timeout=240,
               what="the campaign to complete", tick=scheduler)  # fmt: skip
    tally = campaign_tally(stack, campaign)
    print("\n" + tally.line(f"BAJA from {len(phones)} customers while retrying"))
    promos = [m["to"] for m in stack.sim_messages() if "promo" in m["text"]]
    assert not set(phones) & set(promos)
    assert len(promos) == len(set(promos)) == RECIPIENTS - len(phones)
    assert tally.states.get("opted_out") == len(phones)
    assert_never_twice_nothing_lost(stack, campaign, tally)
