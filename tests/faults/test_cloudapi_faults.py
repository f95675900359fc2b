"""Replies on a Cloud API number under the faults Meta and a network have, counted at the
Cloud API simulator's end: every customer gets their reply at most once, nothing is left
`sending`, and a send whose answer was lost, broken or cut after Meta accepted it is settled by
its status webhooks (Meta echoes none of our sends: inbox.services.outbound_status_link), onto
the very wamid the simulator gave it.

The production processes run once for the module on private PostgreSQL and Redis
(tests/faults/services.py) with a Cloud API number configured from the environment: one daphne
taking the webhooks, a Dramatiq worker, the scheduler, and `manage.py cloudapi_sim` over HTTP
(tests/faults/cloudapi.py). Each test sets the simulator's knobs (which resets its counts), has
its own customers write in (their 24-hour window opens), and queues one reply to each, as an
agent's reply or an API call does (outbound.services.message_send on the number).
"""

import itertools
import time

import pytest

from tests.faults.cloudapi import (
    AFTER_ACCEPTANCE,
    REACHED,
    CloudApi,
    phones_for,
    settled,
)
from tests.faults.sends import Supervisor
from tests.waiting import wait_until

CUSTOMERS = 150
# Every knob that is a fault off, and Meta's limits out of the way: each test turns on its own
# (the simulator keeps knobs across resets). One status ("sent") per send unless the statuses
# are the fault.
CALM = {
    "lost_answers": 0,
    "accept_then_5xx": 0,
    "accept_then_drop": 0,
    "answer_without_id": 0,
    "echo_first": 0,
    "fail_5xx": 0,
    "timeouts": 0,
    "out_of_order": 0,
    "duplicates": 0,
    "batch": 0,
    "throughput_per_second": 10_000,
    "burst": 0,
    "pair_rate_seconds": 0,
    "status_until": 2,
    "status_delays": [0.2],
}
# Longer than the client's META_TIMEOUT: a lost answer is a read timeout to chatdesk.
LOST = {"lost_answers": 0.1, "timeout_seconds": 3}
FAULTS = {
    "10% answers lost": LOST,
    "10% 5xx after acceptance": {"accept_then_5xx": 0.1},
    "10% connections cut after the request": {"accept_then_drop": 0.1},
    "10% answers without a wamid": {"answer_without_id": 0.1},
    "statuses out of order and duplicated, 10% answers lost": {
        **LOST,
        "out_of_order": 0.5,
        "duplicates": 0.3,
        "batch": 0.2,
        "status_until": 4,
        "status_delays": [0.2, 0.4, 0.6],
    },
}
_batches = itertools.count(1)
AWAY_OFF = """
from outbound.models import AutomationSettings
AutomationSettings.objects.update_or_create(pk=1, defaults={"away_enabled": False})
"""


@pytest.fixture(scope="module")
def running(module_stack):
    """daphne, Meta's simulator, the worker (two processes) and the scheduler, started once;
    the number paced at 50 sends a second (Meta's default is 80), the client's timeout 2 s."""
    stack = module_stack
    meta = CloudApi(stack)
    meta.configure(META_SENDS_PER_SECOND="50", META_TIMEOUT="2")
    stack.settings.update(SEND_MAX_ATTEMPTS="40", SEND_RETRY_MAX_SECONDS="3")
    stack.daphne()
    meta.start()
    stack.worker(threads=8, processes=2)
    # The away message off: only the replies are sends (and outbound/rules.py sends its bot
    # replies on the default number, whatever number the customer wrote to).
    stack.shell(AWAY_OFF)
    return stack, meta, Supervisor(stack)


def replies_run(running, knobs: dict) -> tuple[list[str], dict]:
    """Customers of their own write in, one reply to each is queued; the rows once settled."""
    stack, meta, scheduler = running
    meta.config(**{**CALM, **knobs})
    phones = phones_for(next(_batches), CUSTOMERS)
    meta.customers_write(phones)
    wait_until(
        lambda: meta.conversations(phones) == CUSTOMERS,
        timeout=120,
        what="every customer's conversation on the Cloud API number",
        tick=scheduler,
    )
    ids = meta.replies_queue(phones)
    started = time.monotonic()
    found = wait_until(
        lambda: settled(stack, meta, ids),
        timeout=300,
        what="every reply settled and every webhook applied",
        tick=scheduler,
    )
    print(f"\nsettled in {time.monotonic() - started:.1f}s")
    return phones, found


def tally_line(label: str, found: dict, stats: dict) -> str:
    statuses: dict[str, int] = {}
    for status, _, _ in found.values():
        statuses[status] = statuses.get(status, 0) + 1
    ambiguous = sum(stats.get(k, 0) for k in AFTER_ACCEPTANCE)
    return (
        f"{label}: {len(found)} replies, {stats['sends_accepted']} sends counted by the "
        f"simulator, {ambiguous} answers lost or broken after acceptance, "
        f"{stats['errors_by_code']} errors answered; statuses {statuses}"
    )


def assert_each_once_and_settled_onto_its_wamid(meta: CloudApi, phones: list, found: dict):
    """Nobody got two; every reply reached its customer once, with the simulator's own wamid
    for that customer (the answer's, or the one its statuses named); none left unsettled."""
    by_recipient = meta.stats()["sends_by_recipient"]
    assert max(by_recipient.values()) == 1, "a customer got a reply twice"
    assert set(by_recipient) == {p[1:] for p in phones}
    wamid_of = {m["to"]: m["id"] for m in meta.messages()}
    for status, phone, wa_id in found.values():
        assert status in REACHED, (phone, status)
        assert wa_id == wamid_of[phone[1:]], (phone, wa_id)


@pytest.mark.parametrize("knobs", FAULTS.values(), ids=FAULTS.keys())
def test_replies_under_faults_after_acceptance_reach_each_customer_once(running, knobs):
    _, meta, _ = running
    phones, found = replies_run(running, knobs)
    stats = meta.stats()
    label = next(name for name, k in FAULTS.items() if k == knobs)
    print(tally_line(label, found, stats))
    assert len(found) == CUSTOMERS
    # The fault struck: some answers never told chatdesk the wamid.
    assert sum(stats[k] for k in AFTER_ACCEPTANCE) > 0
    assert stats["sends_accepted"] == CUSTOMERS
    assert_each_once_and_settled_onto_its_wamid(meta, phones, found)


def test_a_130429_storm_slows_the_replies_and_sends_each_once(running):
    """The number's throughput at Meta is far below chatdesk's pace for it: most attempts are
    answered 130429 (nothing sent), the number pauses and retries, and every reply still
    reaches its customer once."""
    _, meta, _ = running
    phones, found = replies_run(running, {"throughput_per_second": 10, "burst": 5})
    stats = meta.stats()
    print(tally_line("130429 storm", found, stats))
    assert stats["errors_by_code"].get("130429", 0) > 0
    assert stats["sends_accepted"] == CUSTOMERS
    assert_each_once_and_settled_onto_its_wamid(meta, phones, found)
