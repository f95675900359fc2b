"""WaSender webhook bodies as the provider sends them, and a concurrent sender that remembers
what each POST got back (the sender's view is what "acknowledged" means)."""

import asyncio
import json
import time
from dataclasses import dataclass, field

import httpx

from tests.faults.services import WEBHOOK_SECRET

STATUS_CODES = {"sent": 2, "delivered": 3, "read": 4}


def phone(n: int) -> str:
    return f"59399{n:07d}"


def inbound(wa_id: str, n: int, text: str = "Hola, quiero renovar") -> dict:
    digits = phone(n)
    return {
        "event": "messages.received",
        "timestamp": int(time.time()),
        "data": {
            "messages": {
                "key": {
                    "id": wa_id,
                    "fromMe": False,
                    "remoteJid": f"{digits}@s.whatsapp.net",
                    "cleanedSenderPn": digits,
                },
                "pushName": f"Cliente {n}",
                "messageTimestamp": int(time.time()),
                "messageBody": text,
            }
        },
    }


def echo(wa_id: str, n: int, text: str = "Gracias por escribir") -> dict:
    """Our own message as the phone reports it (fromMe): stored as an outbound row."""
    key = {"id": wa_id, "fromMe": True, "remoteJid": f"{phone(n)}@s.whatsapp.net"}
    message = {
        "key": key,
        "messageTimestamp": int(time.time()),
        "messageBody": text,
        "message": {"extendedTextMessage": {"text": text}},
    }
    data = {"messages": [message]}
    return {"event": "messages.upsert", "timestamp": int(time.time()), "data": data}


def status(wa_id: str, n: int, name: str) -> dict:
    key = {"id": wa_id, "fromMe": True, "remoteJid": f"{phone(n)}@s.whatsapp.net"}
    update = {"update": {"status": STATUS_CODES[name]}, "key": key}
    return {"event": "messages.update", "timestamp": int(time.time()), "data": update}


@dataclass
class Outcome:
    """What the sender saw: the HTTP status per body index (0 for a transport error)."""

    codes: dict[int, int] = field(default_factory=dict)

    def acknowledged(self) -> list[int]:
        return [i for i, code in self.codes.items() if 200 <= code < 300]

    def refused(self) -> list[int]:
        return [i for i, code in self.codes.items() if not 200 <= code < 300]

    def count(self, code: int) -> int:
        return sum(1 for c in self.codes.values() if c == code)

    def summary(self) -> dict:
        result: dict[int, int] = {}
        for code in self.codes.values():
            result[code] = result.get(code, 0) + 1
        return dict(sorted(result.items()))


async def post_all_async(
    url, bodies, *, concurrency=16, timeout=30.0, on_progress=None, outcome=None, rate=None
) -> Outcome:
    outcome = outcome if outcome is not None else Outcome()
    headers = {"X-Webhook-Signature": WEBHOOK_SECRET, "Content-Type": "application/json"}
    queue: asyncio.Queue = asyncio.Queue()
    for item in bodies:
        queue.put_nowait(item)
    began = time.monotonic()
    sent = 0
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(timeout=timeout, limits=limits) as client:

        async def sender():
            nonlocal sent
            while not queue.empty():
                index, body = queue.get_nowait()
                if rate:
                    sent += 1
                    await asyncio.sleep(max(0.0, began + sent / rate - time.monotonic()))
                try:
                    response = await client.post(url, content=json.dumps(body), headers=headers)
                    outcome.codes[index] = response.status_code
                except httpx.HTTPError:
                    outcome.codes[index] = 0
                if on_progress:
                    await on_progress(len(outcome.codes))

        await asyncio.gather(*(sender() for _ in range(concurrency)))
    return outcome


def post_all(
    url: str,
    bodies: list[tuple[int, dict]],
    *,
    concurrency: int = 16,
    timeout: float = 30.0,
    on_progress=None,
    rate: float | None = None,
    outcome: Outcome | None = None,
) -> Outcome:
    """POST every (index, body); `on_progress(done)` is awaited after each answer (a fault
    is injected from there, off the event loop with asyncio.to_thread)."""
    return asyncio.run(
        post_all_async(
            url,
            bodies,
            concurrency=concurrency,
            timeout=timeout,
            on_progress=on_progress,
            outcome=outcome,
            rate=rate,
        )
    )
