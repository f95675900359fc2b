"""What the send-side fault tests share: making sends and campaigns in a stack's database,
waiting for an outcome with a deadline, keeping the scheduler up, and counting at the
simulator's end (its `sends_by_recipient` is what reached the customers' phones)."""

import re
from dataclasses import dataclass

from tests.faults.services import Stack

# Every way a message may end; anything else (queued, sending, unconfirmed) is not an end.
FINAL = {"sent", "delivered", "read", "played", "failed", "unknown", "cancelled"}
REACHED = {"sent", "delivered", "read", "played"}
# The simulator's counters of faults that strike after it accepted a send.
AFTER_ACCEPTANCE = (
    "lost_answers",
    "accepted_then_5xx",
    "accepted_then_dropped",
    "answered_without_id",
)

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
from customers.models import Customer, Tag
from outbound.campaigns import campaign_create
from outbound.models import Campaign
tag = Tag.objects.create(name="lote {start}")
made = Customer.objects.bulk_create(
    Customer(name=f"Cliente {{i}}", phone=f"+593987{{i:06d}}")
    for i in range({start}, {start} + {count})
)
tag.customers.add(*made)
campaign = campaign_create(
    title="Promo fallos", body="Hola {{nombre}}, tenemos una promo para ti",
    filters={{"tags": [tag.pk]}}, window_start=time(0, 0), window_end=time(23, 59, 59),
)
# Due now: the scheduler's tick launches it.
Campaign.objects.filter(pk=campaign.pk).update(state="scheduled", scheduled_at=timezone.now())
print("CAMPAIGN", campaign.pk)
"""


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


def queue_messages(stack: Stack, count: int, start: int = 0) -> list[int]:
    out = stack.shell(QUEUE_CODE.format(start=start, count=count))
    return [int(n) for n in re.search(r"IDS ([\d,]+)", out)[1].split(",")]


def campaign_make(stack: Stack, count: int, *, start: int = 0) -> int:
    """A campaign due now to `count` new customers of its own (phones from `start` on)."""
    out = stack.shell(CAMPAIGN_CODE.format(count=count, start=start))
    return int(re.search(r"CAMPAIGN (\d+)", out)[1])


def outbox(stack: Stack, ids: list[int]) -> dict[int, tuple[str, str, int]]:
    """id -> (status, phone, attempts)."""
    rows = stack.sql(
        "SELECT m.id, m.status, cu.phone, m.attempts FROM inbox_message m "
        "JOIN inbox_conversation c ON c.id = m.conversation_id "
        "JOIN customers_customer cu ON cu.id = c.customer_id WHERE m.id = ANY(%s)",
        ids,
    )
    return {row[0]: row[1:] for row in rows}


def all_final(stack: Stack, ids: list[int]) -> dict | None:
    rows = outbox(stack, ids)
    return rows if all(status in FINAL for status, _, _ in rows.values()) else None


def campaign_state(stack: Stack, campaign: int) -> str:
    return stack.sql("SELECT state FROM outbound_campaign WHERE id = %s", campaign)[0][0]


@dataclass
class Tally:
    """One campaign's outcome, counted at both ends."""

    recipients: int
    sends: int  # accepted by the simulator: what reached phones
    twice: int  # customers who got more than one
    states: dict  # recipient state -> count
    statuses: dict  # message status -> count
    unknown_reached: int  # unknown in our rows, yet the simulator had accepted them
    ambiguous: int  # answers lost or broken after the simulator accepted the send
    settled_without_answer: int  # of those, settled by the echo or message.sent, not unknown

    def line(self, label: str) -> str:
        return (
            f"{label}: {self.recipients} recipients, {self.sends} sends counted by the simulator, "
            f"{self.twice} customers messaged twice, {self.ambiguous} answers lost or broken, "
            f"{self.settled_without_answer} of them settled by the echo, "
            f"{self.statuses.get('unknown', 0)} unknown ({self.unknown_reached} of which had "
            f"reached the phone); recipients {self.states}"
        )


def campaign_tally(stack: Stack, campaign: int) -> Tally:
    stats = stack.sim_stats()
    by_recipient = stats["sends_by_recipient"]
    rows = stack.sql(
        "SELECT r.state, cu.phone, m.status FROM outbound_campaignrecipient r "
        "JOIN customers_customer cu ON cu.id = r.customer_id "
        "LEFT JOIN inbox_message m ON m.id = r.message_id WHERE r.campaign_id = %s",
        campaign,
    )
    states: dict[str, int] = {}
    statuses: dict[str, int] = {}
    for state, _, status in rows:
        states[state] = states.get(state, 0) + 1
        statuses[status or "-"] = statuses.get(status or "-", 0) + 1
    ambiguous = sum(stats.get(k, 0) for k in AFTER_ACCEPTANCE)
    unknown_reached = sum(1 for _, p, s in rows if s == "unknown" and by_recipient.get(p))
    return Tally(
        recipients=len(rows),
        sends=stats["sends_accepted"],
        twice=sum(1 for n in by_recipient.values() if n > 1),
        states=states,
        statuses=statuses,
        unknown_reached=unknown_reached,
        ambiguous=ambiguous,
        settled_without_answer=ambiguous - unknown_reached,
    )


def assert_never_twice_nothing_lost(stack: Stack, campaign: int, tally: Tally) -> None:
    """The promises, counted at the far end: nobody twice, every recipient at an end (sent
    and counted once, failed or opted out with a reason, unknown at most once), and the
    campaign completed."""
    by_recipient = stack.sim_stats()["sends_by_recipient"]
    rows = stack.sql(
        "SELECT r.state, cu.phone, m.status, coalesce(m.failure_reason, r.skip_reason) "
        "FROM outbound_campaignrecipient r JOIN customers_customer cu ON cu.id = r.customer_id "
        "LEFT JOIN inbox_message m ON m.id = r.message_id WHERE r.campaign_id = %s",
        campaign,
    )
    assert tally.twice == 0, f"{tally.twice} customers got the campaign twice"
    assert max(by_recipient.values(), default=0) <= 1
    assert campaign_state(stack, campaign) == "completed"
    assert set(tally.states) <= {"sent", "failed", "unknown", "opted_out", "skipped"}
    for state, phone, status, reason in rows:
        if state == "sent":
            assert status in REACHED and by_recipient.get(phone) == 1, (phone, status)
        if state in ("failed", "opted_out", "skipped", "unknown"):
            assert reason, (phone, state)


def unknown_explained(stack: Stack, campaign: int, limit: int = 3) -> str:
    """For a failing run: a few unknown messages with every webhook event that names them."""
    rows = stack.sql(
        "SELECT m.id, m.wa_id, m.provider_msg_id, m.sending_at, m.failure_reason, "
        "cu.phone FROM outbound_campaignrecipient r JOIN inbox_message m ON m.id = r.message_id "
        "JOIN inbox_conversation c ON c.id = m.conversation_id "
        "JOIN customers_customer cu ON cu.id = c.customer_id "
        "WHERE r.campaign_id = %s AND m.status = 'unknown' LIMIT %s",
        campaign,
        limit,
    )
    lines = []
    for pk, wa_id, msg_id, sending_at, reason, phone in rows:
        lines.append(f"message {pk} wa_id={wa_id} msgId={msg_id} sending_at={sending_at} {reason}")
        events = stack.sql(
            "SELECT id, received_at, event, state, attempts, error FROM inbox_webhookevent "
            "WHERE payload::text LIKE %s ORDER BY id",
            f"%{phone[1:]}%",
        )
        lines += [f"    event {e}" for e in events]
    return "\n".join(lines)
