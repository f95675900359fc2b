"""A Cloud API number in a fault stack: the META_* settings every process gets, Meta's
simulator as a process of its own (`manage.py cloudapi_sim`, webhooks to the stack's daphne),
customers writing to it (which opens their 24-hour window), replies queued to them on that
number, and the counts at both ends."""

import re

import httpx

from tests.faults.services import Stack
from tests.procs import PYTHON, free_port

PHONE_NUMBER_ID = "100000000000001"  # the simulator's default number
APP_SECRET = "faults-meta-app-secret"
CONTROL_TIMEOUT = 60
# Every way a message may end on a Cloud API number; anything else is not an end.
OPEN = {"queued", "sending", "unconfirmed"}
REACHED = {"sent", "delivered", "read"}
# The Cloud API simulator's counters of faults that strike after it accepted a send.
AFTER_ACCEPTANCE = (
    "lost_answers",
    "accepted_then_5xx",
    "accepted_then_dropped",
    "answered_without_id",
)

REPLY_CODE = """
from outbound.services import message_send
ids = [
    message_send(phone=phone, text=f"Hola, ya revisamos tu caso {{n}}", author_kind="api",
                 channel="meta").id
    for n, phone in enumerate({phones!r})
]
print("IDS", ",".join(map(str, ids)))
"""


class CloudApi:
    """Meta's simulator beside a stack. `configure` before the stack's processes start (they
    read META_* once), `start` once its daphne runs."""

    def __init__(self, stack: Stack):
        self.stack, self.port, self.url = stack, free_port(), ""

    def configure(self, **settings) -> None:
        self.stack.settings.update(
            META_PHONE_NUMBER_ID=PHONE_NUMBER_ID,
            META_APP_SECRET=APP_SECRET,
            META_VERIFY_TOKEN="faults-verify-token",
            META_GRAPH_URL=f"http://127.0.0.1:{self.port}",
            META_ACCESS_TOKEN="",
            **settings,
        )

    def start(self) -> str:
        assert self.stack.daphne_url, "the stack's daphne first: the simulator pushes to it"
        args = [
            PYTHON,
            "manage.py",
            "cloudapi_sim",
            "--skip-checks",
            "--port",
            str(self.port),
            "--webhook-url",
            f"{self.stack.daphne_url}/webhooks/meta/",
            "--app-secret",
            APP_SECRET,
            "--seed",
            "7",
        ]
        self.url = f"http://127.0.0.1:{self.port}"
        self.stack._start(args, "cloudapi", ready_url=f"{self.url}/")
        return self.url

    def config(self, *, reset: bool = True, **knobs) -> None:
        httpx.post(
            f"{self.url}/_sim/config", json=knobs, timeout=CONTROL_TIMEOUT
        ).raise_for_status()
        if reset:
            httpx.post(f"{self.url}/_sim/reset", timeout=CONTROL_TIMEOUT).raise_for_status()

    def stats(self) -> dict:
        return httpx.get(f"{self.url}/_sim/stats", timeout=CONTROL_TIMEOUT).json()

    def messages(self) -> list[dict]:
        return httpx.get(f"{self.url}/_sim/messages", timeout=CONTROL_TIMEOUT).json()

    def customers_write(self, phones: list[str]) -> None:
        """Each customer writes once (their window opens), delivered before this returns."""
        for phone in phones:
            answer = httpx.post(
                f"{self.url}/_sim/inbound",
                json={"phone": phone, "text": "Hola, necesito ayuda", "name": "Cliente"},
                timeout=CONTROL_TIMEOUT,
            )
            assert answer.json()["data"]["delivered"] is True, answer.text

    def conversations(self, phones: list[str]) -> int:
        return self.stack.sql(
            "SELECT count(*) FROM inbox_conversation c JOIN customers_customer cu "
            "ON cu.id = c.customer_id WHERE c.channel_id = 'meta' AND cu.phone = ANY(%s)",
            phones,
        )[0][0]

    def replies_queue(self, phones: list[str]) -> list[int]:
        out = self.stack.shell(REPLY_CODE.format(phones=phones))
        return [int(n) for n in re.search(r"IDS ([\d,]+)", out)[1].split(",")]


def phones_for(batch: int, count: int) -> list[str]:
    return [f"+59399{batch}{n:06d}" for n in range(count)]


def rows(stack: Stack, ids: list[int]) -> dict[int, tuple[str, str, str | None]]:
    """id -> (status, phone, wa_id)."""
    found = stack.sql(
        "SELECT m.id, m.status, cu.phone, m.wa_id FROM inbox_message m "
        "JOIN inbox_conversation c ON c.id = m.conversation_id "
        "JOIN customers_customer cu ON cu.id = c.customer_id WHERE m.id = ANY(%s)",
        ids,
    )
    return {row[0]: row[1:] for row in found}


def settled(stack: Stack, meta: CloudApi, ids: list[int]) -> dict | None:
    """The rows once nothing can move them any more: none open, the simulator's webhooks all
    pushed, every stored webhook applied (a status waiting for its send is pending). The rows
    are read again last: a status applied between the first reading and the check of the
    webhooks (an `unknown` send linked to its wamid) is in what this answers."""
    if _open(rows(stack, ids)):
        return None
    if meta.stats()["in_flight"]:
        return None
    waiting = "SELECT count(*) FROM inbox_webhookevent WHERE state IN ('pending', 'failed')"
    if stack.sql(waiting)[0][0]:
        return None
    found = rows(stack, ids)
    return None if _open(found) else found


def _open(found: dict) -> bool:
    return any(status in OPEN for status, _, _ in found.values())
