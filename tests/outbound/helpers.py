"""A WaSender client whose HTTP goes to a scripted MockTransport, and peeks at the stub broker."""

import json

import dramatiq
import httpx
from dramatiq.common import dq_name

from provider.wasender import WaSenderClient


class Script:
    """Answers the queued responses in order (the last one repeats) and records requests."""

    def __init__(self, *responses):
        self.responses = list(responses)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.responses.pop(0) if len(self.responses) > 1 else self.responses[0]
        if isinstance(answer, Exception):
            raise answer
        return answer

    def bodies(self) -> list[dict]:
        return [json.loads(r.content) for r in self.requests]


def sent_ok(msg_id: int = 100001) -> httpx.Response:
    return httpx.Response(
        200,
        json={
            "success": True,
            "data": {"msgId": msg_id, "jid": "+593968196046", "status": "in_progress"},
        },
    )


def client_for(script: Script) -> WaSenderClient:
    return WaSenderClient(
        base_url="http://wasender.test/api", api_key="k", transport=httpx.MockTransport(script)
    )


class NoWait:
    """A rate limiter that always has a token (the pace has its own tests)."""

    def __init__(self):
        self.holds: list[tuple[str, float]] = []

    def try_acquire(self, key):
        return 0.0

    def hold(self, key, seconds):
        self.holds.append((key, seconds))


def enqueued(queue: str = "outbound", *, delayed: bool = False) -> list[dramatiq.Message]:
    broker = dramatiq.get_broker()
    name = dq_name(queue) if delayed else queue
    return [dramatiq.Message.decode(data) for data in list(broker.queues[name].queue)]
