"""What the providers' simulators share: the ASGI plumbing (body reading, a connection cut
instead of an answer, lifespan), routing with the /_sim/* control endpoints, the faults before
work and after a send was accepted, webhook pushing with retries and duplicates, the demo
customers, the knobs and the counters. Each simulator (provider/<name>/simulator.py) subclasses
`SimulatorBase` with its API routes, its answers and its webhook shapes.

State lives in memory in one asyncio loop: every counter is updated without an `await` between
read and write, so counts are exact however many requests run at once.
"""

import asyncio
import base64
import contextlib
import dataclasses
import functools
import json
import logging
import math
import os
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import httpx

log = logging.getLogger(__name__)

# A 1x1 PNG: the image a simulated customer sends, or media nobody registered.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGA"
    "WjR9awAAAABJRU5ErkJggg=="
)
DEMO_TEXTS = [
    "Hola, ¿cuánto cuesta Netflix por un mes?",
    "Ya hice la transferencia, te mando el comprobante",
    "Buenas tardes, mi cuenta de Disney+ no funciona",
    "¿Tienen HBO Max disponible?",
    "Gracias, quiero renovar",
    "¿Hasta cuándo tengo mi suscripción?",
    "Listo, muchas gracias 🙌",
    "¿Aceptan pago por Deuna?",
    "Me sale que la contraseña es incorrecta",
    "¿Me puede dar otro perfil para mi hermana?",
]
DEMO_NAMES = [
    "María González",
    "Carlos Pérez",
    "Ana Torres",
    "Luis Andrade",
    "Gabriela Mora",
    "José Cedeño",
    "Daniela Ríos",
]


class SimKnobs:
    """The behaviour of a simulator's SimConfig dataclass: knobs settable by constructor,
    <ENV_PREFIX><NAME> environment variables, the command line or /_sim/config. Set knobs
    hold phone digits; `status_delays` holds seconds."""

    ENV_PREFIX: ClassVar[str]

    def update(self, values: dict) -> None:
        """Coerce by each field's type so env strings and JSON both work; unknown names raise."""
        for name, value in values.items():
            current = getattr(self, name)  # AttributeError for an unknown knob
            setattr(self, name, self.coerce(name, value, current))

    def coerce(self, name: str, value, current):
        if isinstance(current, bool):
            return value if isinstance(value, bool) else str(value).lower() in TRUE_WORDS
        if isinstance(current, int | float):
            return type(current)(float(value))
        if isinstance(current, list | set):
            if isinstance(value, str):
                value = [v.strip() for v in value.split(",") if v.strip()]
            if name == "status_delays":
                value = [float(v) for v in value]
            if isinstance(current, set):
                value = {re.sub(r"\D", "", str(v)) for v in value}
            return type(current)(value)
        return str(value)

    @classmethod
    def from_env(cls, environ=None, **defaults):
        config = cls(**defaults)
        environ = os.environ if environ is None else environ
        names = [f.name for f in dataclasses.fields(cls)]
        config.update(
            {
                name: environ[f"{cls.ENV_PREFIX}{name.upper()}"]
                for name in names
                if f"{cls.ENV_PREFIX}{name.upper()}" in environ
            }
        )
        return config

    def as_dict(self) -> dict:
        data = dataclasses.asdict(self)  # type: ignore[call-overload]
        return {k: sorted(v) if isinstance(v, set) else v for k, v in data.items()}


TRUE_WORDS = ("1", "true", "yes", "on")
# Webhooks a simulator has on the wire at once (its pool's connections).
PUSH_SLOTS = 300


class TokenBucket:
    def __init__(self, rate_per_minute: float, burst: int):
        self.rate = rate_per_minute / 60.0
        self.capacity = max(burst or math.ceil(rate_per_minute), 1)
        self.tokens = float(self.capacity)
        self.updated = time.monotonic()

    def _refill(self) -> None:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now

    def take(self) -> float:
        """0 when a token was taken, else the seconds until one will be there."""
        self._refill()
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate

    def full_in(self) -> float:
        self._refill()
        return (self.capacity - self.tokens) / self.rate


@dataclass
class Request:
    method: str
    path: str
    headers: dict
    body: bytes
    base: str  # scheme://host:port as the caller reached us, for the URLs we hand out

    def json(self):
        try:
            return json.loads(self.body or b"null")
        except ValueError:
            return None


# An answer that is no answer: the simulator cuts the connection instead (see __call__).
DROP: tuple[int, bytes, dict] = (0, b"", {})


def reply(status: int, body, headers: dict | None = None) -> tuple:
    if isinstance(body, bytes | str):
        return status, body if isinstance(body, bytes) else body.encode(), headers or {}
    headers = {"content-type": "application/json", **(headers or {})}
    return status, json.dumps(body, ensure_ascii=False).encode(), headers


def connection_cut(send) -> None:
    """Cut the client's connection without an answer, as a proxy timing out or a network cut
    does. ASGI has no word for it: under daphne, `send` is a partial of its server's reply
    handler holding the connection's request, whose transport is closed here (a test tool's
    liberty). Elsewhere the request is left unanswered, which the client sees as a timeout."""
    request = send.args[0] if isinstance(send, functools.partial) and send.args else None
    transport = getattr(getattr(request, "channel", None), "transport", None)
    if transport is not None:
        transport.loseConnection()


class SimulatorBase:
    """The ASGI app. `phones_sample`, an async callable answering [(phone, name)], lets demo
    mode pick among the business's customers (embedded mode passes one that reads chatdesk's
    book: the simulator itself knows no app).

    A subclass gives `api_routes()` and the answers its provider gives (`auth_check`,
    `not_found`, `too_large`, `crashed`, the fault answers, `accepted_answer`), its bucket,
    `webhook_post` (how a webhook body goes out) and `demo_write` (a demo customer writes)."""

    MAX_BODY = 64 * 1024 * 1024
    INDEX: ClassVar[dict]  # what GET / answers
    BUCKET_KNOBS: ClassVar[set[str]]  # the knobs that make a new rate bucket
    BY_KIND: ClassVar[str]  # the counter of webhooks pushed by kind

    def __init__(self, config: Any, *, phones_sample=None) -> None:
        self.config = config
        self.phones_sample = phones_sample
        self.rng = random.Random(self.config.seed or None)
        self.http: httpx.AsyncClient | None = None
        # Webhooks on the wire at once; the others wait their turn here, in order. Handed all to
        # httpx, thousands waiting for its pool made each pool change scan them all (the
        # simulator then spent its CPU there and timed its own pushes out, while chatdesk
        # waited for work): a backlog must cost chatdesk's time, not the simulator's.
        self.push_slots: asyncio.Semaphore | None = None
        self.tasks: set[asyncio.Task] = set()
        self.demo_task: asyncio.Task | None = None
        routes: list[tuple[str, str, Callable[..., Any]]] = [
            *self.api_routes(),
            ("GET", r"/_sim/stats", lambda r: reply(200, self.stats_now())),
            ("GET", r"/_sim/messages", lambda r: reply(200, list(self.messages.values()))),
            ("GET", r"/_sim/config", lambda r: reply(200, self.config.as_dict())),
            ("POST", r"/_sim/config", self.config_post),
            ("POST", r"/_sim/reset", self.reset_post),
            ("POST", r"/_sim/inbound", self.inbound_post),
            ("GET", r"/", lambda r: reply(200, self.INDEX)),
        ]
        self.routes: list[tuple[str, re.Pattern[str], Callable[..., Any]]] = [
            (m, re.compile(p + "/?$"), h) for m, p, h in routes
        ]
        self.reset()

    def reset(self) -> None:
        for task in self.tasks:
            task.cancel()
        self.tasks = set()
        self.stats = self.new_stats()
        self.messages: dict[Any, dict] = {}
        self.media: dict[str, tuple[bytes, str]] = {}
        self.bucket = self.bucket_new()

    def new_stats(self) -> dict:
        return {
            "requests": 0,
            "sends_accepted": 0,
            "sends_by_recipient": {},
            "sends_rejected": 0,
            "injected_5xx": 0,
            "injected_timeouts": 0,
            "lost_answers": 0,
            "accepted_then_5xx": 0,
            "accepted_then_dropped": 0,
            "answered_without_id": 0,
            "echoes_first": 0,
            "webhooks_pushed": 0,
            "webhooks_failed": 0,
            "webhooks_duplicated": 0,
            self.BY_KIND: {},
            "inbound": 0,
            "uploads": 0,
        }

    def stats_now(self) -> dict:
        """The counters, and how many lifecycles (webhooks still to push) are in flight."""
        return {**self.stats, "in_flight": len(self.tasks)}

    # --- what a simulator says its own way ------------------------------------------------------

    def api_routes(self) -> list[tuple[str, str, Callable[..., Any]]]:
        raise NotImplementedError

    def bucket_new(self) -> TokenBucket:
        raise NotImplementedError

    def is_api(self, path: str) -> bool:
        """Whether a path is the provider's API (authenticated, subject to faults)."""
        raise NotImplementedError

    def auth_check(self, request: Request) -> tuple | None:
        raise NotImplementedError

    def not_found(self) -> tuple:
        raise NotImplementedError

    def too_large(self) -> tuple:
        raise NotImplementedError

    def crashed(self) -> tuple:
        raise NotImplementedError

    def api_headers(self) -> dict:
        """Headers on every API answer (WaSender's rate limit)."""
        return {}

    def timeout_answer(self) -> tuple:
        raise NotImplementedError

    def fault_5xx_answer(self) -> tuple:
        raise NotImplementedError

    def accepted_5xx_answer(self) -> tuple:
        raise NotImplementedError

    def accepted_answer(self, message: dict, *, with_id: bool) -> tuple:
        raise NotImplementedError

    def webhook_post(self, body: dict) -> dict:
        """The keyword arguments of the POST carrying `body` (its encoding, its signature)."""
        raise NotImplementedError

    async def inbound_post(self, request: Request) -> tuple:
        raise NotImplementedError

    async def demo_write(self, phone: str, name: str | None) -> None:
        raise NotImplementedError

    # --- ASGI -----------------------------------------------------------------------------------

    async def __call__(self, scope, receive, send):
        self.ensure_started()
        if scope["type"] == "lifespan":
            return await self._lifespan(receive, send)
        if scope["type"] != "http":
            if scope["type"] == "websocket":
                await send({"type": "websocket.close"})
            return
        body, too_big = b"", False
        while True:
            event = await receive()
            if event["type"] == "http.disconnect":
                return
            body += event.get("body", b"")
            too_big = too_big or len(body) > self.MAX_BODY
            if too_big:
                body = b""
            if not event.get("more_body"):
                break
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        server = scope.get("server") or ("127.0.0.1", 80)
        host = headers.get("host") or f"{server[0]}:{server[1]}"
        request = Request(
            scope["method"], scope["path"], headers, body, f"{scope.get('scheme', 'http')}://{host}"
        )
        if too_big:
            status, payload, extra = self.too_large()
        else:
            try:
                status, payload, extra = await self.handle(request)
            except Exception:  # a test tool: log, answer 500, keep serving
                log.exception("simulator failed on %s %s", request.method, request.path)
                status, payload, extra = self.crashed()
        if (status, payload, extra) == DROP:
            return connection_cut(send)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(k.encode(), str(v).encode()) for k, v in extra.items()],
            }
        )
        await send({"type": "http.response.body", "body": payload})

    async def _lifespan(self, receive, send):
        while True:
            event = await receive()
            if event["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif event["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    def ensure_started(self) -> None:
        """Daphne sends no lifespan events, so the demo loop starts with the first call."""
        if self.config.demo and self.demo_task is None:
            with contextlib.suppress(RuntimeError):  # no running loop yet
                self.demo_task = asyncio.get_running_loop().create_task(self._demo_loop())

    async def handle(self, request: Request) -> tuple:
        self.stats["requests"] += 1
        route = next(
            (
                (handler, match)
                for method, pattern, handler in self.routes
                if method == request.method and (match := pattern.match(request.path))
            ),
            None,
        )
        if route is None:
            return self.not_found()
        handler, match = route
        if not self.is_api(request.path):
            result = handler(request, **match.groupdict())
            return await result if asyncio.iscoroutine(result) else result
        if denied := self.auth_check(request):
            return denied
        if fault := await self.fault_inject():
            return fault
        status, payload, extra = await handler(request, **match.groupdict())
        return status, payload, {**self.api_headers(), **extra}

    # --- faults ---------------------------------------------------------------------------------

    async def fault_inject(self) -> tuple | None:
        """Faults that strike before any work (nothing is sent, whatever the client makes of
        the answer); the faults after a send was accepted are in `send_answer`."""
        cfg = self.config
        if cfg.latency_ms:
            await asyncio.sleep(cfg.latency_ms / 1000 * self.rng.uniform(0.5, 1.5))
        if self.rng.random() < cfg.timeouts:
            self.stats["injected_timeouts"] += 1
            await asyncio.sleep(cfg.timeout_seconds)
            return self.timeout_answer()
        if self.rng.random() < cfg.fail_5xx:
            self.stats["injected_5xx"] += 1
            return self.fault_5xx_answer()
        return None

    async def send_answer(self, message: dict) -> tuple:
        """The answer to an accepted send, or one of the faults that strike after acceptance
        (the customer gets the message whatever the client hears)."""
        cfg, roll = self.config, self.rng.random()
        with_id = True
        if roll < cfg.lost_answers:
            self.stats["lost_answers"] += 1
            await asyncio.sleep(cfg.timeout_seconds)
        elif (roll := roll - cfg.lost_answers) < cfg.accept_then_5xx:
            self.stats["accepted_then_5xx"] += 1
            return self.accepted_5xx_answer()
        elif (roll := roll - cfg.accept_then_5xx) < cfg.accept_then_drop:
            self.stats["accepted_then_dropped"] += 1
            return DROP
        elif roll - cfg.accept_then_drop < cfg.answer_without_id:
            self.stats["answered_without_id"] += 1
            with_id = False
        return self.accepted_answer(message, with_id=with_id)

    # --- control --------------------------------------------------------------------------------

    async def config_post(self, request: Request) -> tuple:
        values = request.json()
        if not isinstance(values, dict):
            return reply(400, {"success": False, "message": "Expected a JSON object"})
        try:
            self.config.update(values)
        except (AttributeError, TypeError, ValueError) as e:
            return reply(400, {"success": False, "message": f"Bad knob: {e}"})
        if self.BUCKET_KNOBS & values.keys():
            self.bucket = self.bucket_new()
        if "seed" in values:
            self.rng.seed(self.config.seed or None)
        self.ensure_started()
        return reply(200, self.config.as_dict())

    async def reset_post(self, request: Request) -> tuple:
        self.reset()
        return reply(200, {"success": True})

    # --- webhooks -------------------------------------------------------------------------------

    def spawn(self, coroutine) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def webhook_push(self, body: dict, kind: str) -> bool:
        copies = 2 if self.rng.random() < self.config.duplicates else 1
        self.stats["webhooks_duplicated"] += copies - 1
        results = [await self._deliver(body, kind) for _ in range(copies)]
        return all(results)

    async def _deliver(self, body: dict, kind: str, attempts: int = 4) -> bool:
        """Retries connection errors and 5xx a few times; never raises (a test tool logs)."""
        url = self.config.webhook_url
        if not url:
            return False
        if self.http is None or self.push_slots is None:
            # Enough connections that a burst of webhooks waits on chatdesk, not on this pool
            # (a pool timeout here would lose webhooks the real provider would have sent).
            limits = httpx.Limits(max_connections=PUSH_SLOTS, max_keepalive_connections=50)
            self.http = httpx.AsyncClient(timeout=30.0, limits=limits)
            self.push_slots = asyncio.Semaphore(PUSH_SLOTS)
        post = self.webhook_post(body)
        for attempt in range(attempts):
            try:
                async with self.push_slots:
                    response = await self.http.post(url, **post)
                if response.status_code < 500:
                    self.stats["webhooks_pushed"] += 1
                    by_kind = self.stats[self.BY_KIND]
                    by_kind[kind] = by_kind.get(kind, 0) + 1
                    if response.status_code >= 400:
                        log.warning("webhook %s answered %s", kind, response.status_code)
                    return True
                problem = f"HTTP {response.status_code}"
            except httpx.HTTPError as e:
                problem = repr(e)
            log.warning("webhook %s to %s failed (%s), attempt %d", kind, url, problem, attempt + 1)
            await asyncio.sleep(0.2 * 2**attempt)
        self.stats["webhooks_failed"] += 1
        return False

    # --- demo customers -------------------------------------------------------------------------

    async def _demo_loop(self) -> None:
        while True:
            await asyncio.sleep(self.rng.expovariate(1 / max(self.config.demo_interval, 0.1)))
            if not self.config.demo:
                continue
            try:
                phone, name = await self._demo_pick()
                if phone:
                    await self.demo_write(phone, name)
            except Exception:
                log.exception("demo reply failed")

    async def _demo_pick(self) -> tuple[str | None, str | None]:
        candidates = [(p, None) for p in self.config.demo_phones]
        candidates += [(p, None) for p in self.stats["sends_by_recipient"] if "@" not in p]
        if self.phones_sample is not None:
            candidates += await self.phones_sample()
        return self.rng.choice(candidates) if candidates else (None, None)


def embedded(simulator: SimulatorBase, *, chatdesk_app, simulator_port: int):
    """One ASGI app for one daphne process: requests reaching `simulator_port` go to the
    simulator, everything else (and lifespan) to `chatdesk_app`."""

    async def app(scope, receive, send):
        simulator.ensure_started()
        server = scope.get("server") or (None, None)
        if scope["type"] != "lifespan" and server[1] == simulator_port:
            return await simulator(scope, receive, send)
        return await chatdesk_app(scope, receive, send)

    app.simulator = simulator  # type: ignore[attr-defined]
    return app
