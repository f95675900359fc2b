"""A campaign split over two WhatsApp numbers, WaSender's and a Cloud API number, under the
faults both providers have after they accepted a send (in one case while both also refuse
what goes over their rate), counted at the two simulators' end: each customer gets it exactly
once across both (nobody twice, nobody missing), a customer who already writes to one number
gets it from that one, the rest are shared out evenly, and the campaign completes.

The production processes run once for the module on private PostgreSQL and Redis
(tests/faults/services.py): one daphne taking both providers' webhooks, a Dramatiq worker, the
scheduler, WaSender's simulator, and Meta's (tests/faults/cloudapi.py) with a Cloud API number
("meta") configured from the environment, at a messaging-limit tier (so its fan-out counts and
queues under the number's lock) far above the audience. On that number a campaign goes out as
an approved Meta template: the simulator is told the template, chatdesk's row of it is
approved, and the campaign's template is linked to it. Each test sets both simulators' knobs
(which resets their counts), brings customers of its own (some write to the Cloud API number
first, some to WaSender's), and launches the campaign as "Send now" does.
"""

import itertools
import re
import time
from collections import Counter
from dataclasses import dataclass

import pytest

from tests.faults.cloudapi import AFTER_ACCEPTANCE, CloudApi
from tests.faults.sends import Supervisor, campaign_state
from tests.waiting import wait_until

CUSTOMERS = 200
WROTE_TO_META = 50  # they write to the Cloud API number before the launch: theirs is that one
WROTE_TO_WASENDER = 25  # and these to WaSender's
TEMPLATE = "promo_reparto"
BODY = "Hola {nombre}, este mes tenemos una promo para ti"
META_TEMPLATE = {
    "id": "594425479269901",
    "name": TEMPLATE,
    "language": "es",
    "status": "APPROVED",
    "category": "MARKETING",
    "components": [{"type": "BODY", "text": "Hola {{1}}, este mes tenemos una promo para ti"}],
}
# Every fault off, the providers' own limits out of the way, one status ("sent") per send:
# each test turns on its faults (the simulators keep knobs across resets).
WASENDER_CALM = {
    "lost_answers": 0,
    "accept_then_5xx": 0,
    "accept_then_drop": 0,
    "answer_without_id": 0,
    "echo_first": 0,
    "out_of_order": 0,
    "duplicates": 0,
    "rate_per_minute": 100_000,
    "burst": 0,
    "status_until": 2,
    "status_delays": [0.2],
}
META_CALM = {
    **{k: v for k, v in WASENDER_CALM.items() if k not in ("rate_per_minute",)},
    "batch": 0,
    "fail_5xx": 0,
    "timeouts": 0,
    "marketing_cap": 0,
    "throughput_per_second": 10_000,
    "pair_rate_seconds": 0,
    "templates": [META_TEMPLATE],
}
# Longer than both clients' timeouts: a lost answer is a read timeout to chatdesk.
LOST = {"lost_answers": 0.1, "timeout_seconds": 3}
FAULTS = {
    "10% answers lost on both": (LOST, LOST),
    "10% 5xx after acceptance on both": ({"accept_then_5xx": 0.1}, {"accept_then_5xx": 0.1}),
    "10% cut on WaSender, 10% without a wamid on Meta": (
        {"accept_then_drop": 0.1},
        {"answer_without_id": 0.1},
    ),
    # Each provider allows far less than chatdesk's pace for the number (15 and 8 a second
    # against 50): attempts over it are refused (nothing sent) and retried, each number's fan-out
    # slows on its own, and the faults still strike.
    "both providers slower than our pace (429, 130429), 10% lost on WaSender, 5xx on Meta": (
        {**LOST, "rate_per_minute": 900, "burst": 5},
        {"accept_then_5xx": 0.1, "throughput_per_second": 8, "burst": 4},
    ),
}
_batches = itertools.count(1)

SETUP_CODE = f"""
from inbox.channels import channels_env_sync
from inbox.models import Channel
from outbound.models import AutomationSettings, MessageTemplate, MetaTemplate
# The away message off: only the campaign is a send (the bot answers on the default number).
AutomationSettings.objects.update_or_create(pk=1, defaults={{"away_enabled": False}})
channels_env_sync()
MetaTemplate.objects.create(
    channel=Channel.objects.get(key="meta"), template_id="{META_TEMPLATE["id"]}",
    name="{TEMPLATE}", language="es", status="APPROVED", category="MARKETING",
    components={META_TEMPLATE["components"]!r}, body="{META_TEMPLATE["components"][0]["text"]}",
    params_count=1,
)
MessageTemplate.objects.create(
    name="Promo del mes", category="marketing", body="{BODY}",
    meta_name="{TEMPLATE}", meta_language="es", meta_params=["nombre"],
)
"""
CUSTOMERS_CODE = """
from customers.models import Customer, Tag
tag = Tag.objects.create(name="reparto {batch}")
tag.customers.add(*Customer.objects.bulk_create(
    Customer(name=f"Cliente {{n}}", phone=phone) for n, phone in enumerate({phones!r})
))
print("TAG", tag.pk)
"""
CAMPAIGN_CODE = """
from datetime import time
from outbound.campaigns import campaign_create, campaign_launch_soon
from outbound.models import MessageTemplate
campaign = campaign_create(
    title="Promo repartida {tag}", kind="marketing",
    template=MessageTemplate.objects.get(meta_name="{template}"),
    filters={{"tags": [{tag}]}}, window_start=time(0, 0), window_end=time(23, 59, 59),
    channel="default", split_channels=["meta"],
)
campaign_launch_soon(campaign=campaign)
print("CAMPAIGN", campaign.pk)
"""


@pytest.fixture(scope="module")
def running(module_stack):
    """daphne, both simulators, the worker (two processes) and the scheduler, started once;
    each number paced at 50 sends a second, the clients' timeouts under the lost answers'."""
    stack = module_stack
    meta = CloudApi(stack)
    meta.configure(META_SENDS_PER_SECOND="50", META_TIMEOUT="2", META_DAILY_CUSTOMER_LIMIT="1000")
    # The echo must have time to settle an unconfirmed WaSender send (test_campaign_faults).
    stack.settings.update(
        SEND_RATE_PER_MINUTE="3000",
        SEND_RETRY_MAX_SECONDS="3",
        SEND_UNCONFIRMED_SECONDS="20",
        SEND_MAX_ATTEMPTS="40",
    )
    stack.daphne()
    stack.simulator(**WASENDER_CALM)
    meta.start()
    meta.config(**META_CALM)
    stack.worker(threads=8, processes=2)
    stack.shell(SETUP_CODE)
    return stack, meta, Supervisor(stack)


def _conversations(stack, phones: list[str], channel: str) -> int:
    return stack.sql(
        "SELECT count(*) FROM inbox_conversation c JOIN customers_customer cu "
        "ON cu.id = c.customer_id WHERE c.channel_id = %s AND cu.phone = ANY(%s)",
        channel,
        phones,
    )[0][0]


UNAPPLIED = "SELECT count(*) FROM inbox_webhookevent WHERE state IN ('pending', 'failed')"


def _settled(stack, meta: CloudApi, campaign: int) -> bool:
    """Completed, both simulators' webhooks all pushed, every stored webhook applied."""
    if campaign_state(stack, campaign) != "completed":
        return False
    if not stack.sim_settled() or meta.stats()["in_flight"]:
        return False
    return stack.sql(UNAPPLIED)[0][0] == 0


def _unsettled(stack, meta: CloudApi, phones: list[str], campaign: int) -> str:
    """For a run that never settles: where it stands, at both ends."""
    return (
        f"campaign {campaign_state(stack, campaign)}, {stack.sql(UNAPPLIED)[0][0]} webhooks "
        f"not applied; " + split_tally(stack, meta, phones, campaign).line("so far")
    )


def split_run(running, wasender_knobs: dict, meta_knobs: dict) -> tuple[list[str], int]:
    """Customers of their own, some writing in first; the split campaign launched and settled."""
    stack, meta, scheduler = running
    stack.sim_config(**{**WASENDER_CALM, **wasender_knobs})
    meta.config(**{**META_CALM, **meta_knobs})
    batch = next(_batches)
    phones = [f"+59396{batch}{n:06d}" for n in range(CUSTOMERS)]
    out = stack.shell(CUSTOMERS_CODE.format(batch=batch, phones=phones))
    tag = int(re.search(r"TAG (\d+)", out)[1])
    meta.customers_write(wrote_to_meta(phones))
    for phone in wrote_to_wasender(phones):
        stack.sim_inbound(phone=phone, text="Hola, una consulta", name="Cliente")
    wait_until(
        lambda: (
            _conversations(stack, wrote_to_meta(phones), "meta") == WROTE_TO_META
            and _conversations(stack, wrote_to_wasender(phones), "default") == WROTE_TO_WASENDER
        ),
        timeout=120,
        what="the conversations of those who wrote in",
        tick=scheduler,
    )
    out = stack.shell(CAMPAIGN_CODE.format(tag=tag, template=TEMPLATE))
    campaign = int(re.search(r"CAMPAIGN (\d+)", out)[1])
    started = time.monotonic()
    wait_until(
        lambda: _settled(stack, meta, campaign),
        timeout=300,
        what="the split campaign completed and every webhook applied",
        tick=scheduler,
        detail=lambda: _unsettled(stack, meta, phones, campaign),
    )
    print(f"\nsettled in {time.monotonic() - started:.1f}s")
    return phones, campaign


# Spread over the audience (the launch deals it out in customer order).
def wrote_to_meta(phones: list[str]) -> list[str]:
    return phones[::4][:WROTE_TO_META]


def wrote_to_wasender(phones: list[str]) -> list[str]:
    return phones[1::4][:WROTE_TO_WASENDER]


@dataclass
class SplitTally:
    """What reached phones, counted at each simulator, by the digits of the customer's number
    (WaSender keys it as we sent it, +...; Meta by the wa_id); beside our own rows."""

    by_wasender: Counter
    by_meta: Counter
    everyone: set
    ambiguous: tuple[int, int]  # answers lost or broken after acceptance: WaSender, Meta
    refused: tuple[int, dict]  # WaSender's 429s, Meta's errors by code (nothing sent)
    ours: dict  # phone -> (recipient channel, recipient state, message status)

    @property
    def total(self) -> Counter:
        return self.by_wasender + self.by_meta

    @property
    def twice(self) -> list[str]:
        return sorted(p for p, n in self.total.items() if n > 1)

    @property
    def missing(self) -> list[str]:
        return sorted(self.everyone - set(self.total))

    def line(self, label: str) -> str:
        states = Counter(state for _, state, _ in self.ours.values())
        statuses = Counter(status for _, _, status in self.ours.values())
        return (
            f"{label}: {len(self.everyone)} customers ({WROTE_TO_META} wrote to the Cloud API "
            f"number, {WROTE_TO_WASENDER} to WaSender's); WaSender's simulator counted "
            f"{self.by_wasender.total()} sends to {len(self.by_wasender)} customers, Meta's "
            f"{self.by_meta.total()} to {len(self.by_meta)}; {len(self.twice)} customers "
            f"messaged twice, {len(self.missing)} missing; answers lost or broken after "
            f"acceptance: WaSender {self.ambiguous[0]}, Meta {self.ambiguous[1]}; refused "
            f"(nothing sent): WaSender {self.refused[0]} 429s, Meta {self.refused[1]}; recipients "
            f"{dict(states)}, messages {dict(statuses)}"
        )


def split_tally(stack, meta: CloudApi, phones: list[str], campaign: int) -> SplitTally:
    wasender_stats, meta_stats = stack.sim_stats(), meta.stats()
    rows = stack.sql(
        "SELECT cu.phone, r.channel, r.state, coalesce(m.status, '-') "
        "FROM outbound_campaignrecipient r JOIN customers_customer cu ON cu.id = r.customer_id "
        "LEFT JOIN inbox_message m ON m.id = r.message_id WHERE r.campaign_id = %s",
        campaign,
    )
    return SplitTally(
        by_wasender=Counter(
            {p.lstrip("+"): n for p, n in wasender_stats["sends_by_recipient"].items()}
        ),
        by_meta=Counter(meta_stats["sends_by_recipient"]),
        everyone={p[1:] for p in phones},
        ambiguous=(
            sum(wasender_stats.get(k, 0) for k in AFTER_ACCEPTANCE),
            sum(meta_stats.get(k, 0) for k in AFTER_ACCEPTANCE),
        ),
        refused=(wasender_stats["responses_429"], meta_stats["errors_by_code"]),
        ours={phone: tuple(rest) for phone, *rest in rows},
    )


@pytest.mark.parametrize("knobs", FAULTS.values(), ids=FAULTS.keys())
def test_a_split_campaign_under_faults_reaches_each_customer_once_across_both(running, knobs):
    stack, meta, _ = running
    phones, campaign = split_run(running, *knobs)
    tally = split_tally(stack, meta, phones, campaign)
    print(tally.line(next(name for name, k in FAULTS.items() if k == knobs)))
    # The faults struck on both numbers.
    assert all(tally.ambiguous)
    # Exactly once across both numbers, nobody missing, nobody outside the audience.
    assert not tally.twice, f"messaged twice: {tally.twice[:5]}"
    assert not tally.missing, f"never reached: {tally.missing[:5]}"
    assert set(tally.total) == tally.everyone
    # On the Cloud API number every send was the approved template; on WaSender's, the text.
    assert {m["template"] for m in meta.messages()} == {TEMPLATE}
    assert all(m["text"].startswith("Hola Cliente") for m in stack.sim_messages())
    # Who writes to a number got it from that number; the others were shared out evenly.
    assert {p[1:] for p in wrote_to_meta(phones)} <= set(tally.by_meta)
    assert {p[1:] for p in wrote_to_wasender(phones)} <= set(tally.by_wasender)
    assert min(len(tally.by_meta), len(tally.by_wasender)) >= 0.3 * CUSTOMERS
    # Our rows name the number the simulators saw it arrive on, and say it reached them.
    for phone, (channel, state, status) in tally.ours.items():
        assert (channel == "meta") == (phone[1:] in tally.by_meta), (phone, channel)
        assert state in ("sent", "unknown"), (phone, state, status)
    assert campaign_state(stack, campaign) == "completed"
