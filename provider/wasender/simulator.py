"""A WaSender stand-in for the demo and the tests: nobody can test against a real WhatsApp
number here. A pure ASGI app (runs under daphne) speaking the API chatdesk uses at `/api/...`,
pushing webhooks back to chatdesk, with knobs to inject the faults the real provider has.

State lives in memory in one asyncio loop: every counter is updated without an `await` between
read and write, so counts are exact however many requests run at once.

Control endpoints (no key; the simulator only listens on loopback):
  GET  /_sim/stats     counters (sends per recipient, 429s, injected faults, webhooks), and
                       `in_flight`: webhooks still to push (0 once every lifecycle is done)
  GET  /_sim/messages  the accepted sends
  GET|POST /_sim/config  read or change knobs (JSON object with SimConfig field names)
  POST /_sim/reset     forget messages, media and counters, refill the rate bucket
  POST /_sim/inbound   {"phone", "text", "name"?, "event"?, "image"?}: a customer writes to us
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
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

log = logging.getLogger(__name__)

STATUS_NAMES = {0: "error", 1: "pending", 2: "sent", 3: "delivered", 4: "read", 5: "played"}
MEDIA_FIELDS = {
    "imageUrl": "image",
    "videoUrl": "video",
    "audioUrl": "audio",
    "documentUrl": "document",
    "stickerUrl": "sticker",
}
MEDIA_NODES = ("imageMessage", "videoMessage", "audioMessage", "documentMessage", "stickerMessage")
WRAPPERS = (
    "ephemeralMessage",
    "viewOnceMessage",
    "viewOnceMessageV2",
    "documentWithCaptionMessage",
)
TO_RE = re.compile(r"^\+?\d{7,15}$|^[\w.-]+@(g\.us|s\.whatsapp\.net|lid)$")
# A 1x1 PNG: what decrypt-media hands back for an image nobody registered.
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


@dataclass
class SimConfig:
    """Every knob; settable by constructor, WASENDER_SIM_<NAME> env vars, CLI or /_sim/config."""

    api_key: str = "simulator-key"
    webhook_url: str = ""
    webhook_secret: str = ""
    rate_per_minute: float = 256.0
    burst: int = 0  # bucket size; 0 means one minute's worth
    reset_form: str = "unix"  # X-RateLimit-Reset as "unix" time or "seconds" until
    latency_ms: float = 0.0
    fail_5xx: float = 0.0  # share of API calls answered 500/502/503 (before doing anything)
    timeouts: float = 0.0  # share of API calls that hang timeout_seconds, then 504, nothing done
    # Faults after a send was accepted (the message goes out; the answer is lost or broken):
    lost_answers: float = 0.0  # share answered only after timeout_seconds
    accept_then_5xx: float = 0.0  # share answered 500/502/503
    accept_then_drop: float = 0.0  # share whose connection is cut instead of answered
    answer_without_id: float = 0.0  # share answered 200 without msgId
    # Share of sends whose message.sent and fromMe echo webhooks are pushed (and answered)
    # before the HTTP answer leaves: WaSender does not promise the order.
    echo_first: float = 0.0
    timeout_seconds: float = 20.0
    duplicates: float = 0.0  # chance each webhook is delivered twice
    out_of_order: float = 0.0  # chance a message's statuses arrive shuffled or skip delivered
    variants: float = 0.3  # chance of the list / string-status / ms-timestamp payload forms
    not_on_whatsapp: set = field(default_factory=set)  # digits
    sent_delay: float = 0.05
    status_delays: list = field(default_factory=lambda: [0.3, 1.0, 2.0])
    # How far a message's statuses go: 4 read, 3 delivered, 2 sent only (fewer webhooks for a
    # test about something else).
    status_until: int = 4
    session_status: str = "connected"
    demo: bool = False
    demo_interval: float = 25.0  # mean seconds between demo customer messages
    demo_phones: list = field(default_factory=list)
    seed: int = 0  # 0: not seeded

    def update(self, values: dict) -> None:
        """Coerce by each field's type so env strings and JSON both work; unknown names raise."""
        for name, value in values.items():
            current = getattr(self, name)  # AttributeError for an unknown knob
            if isinstance(current, bool):
                value = (
                    value
                    if isinstance(value, bool)
                    else str(value).lower() in ("1", "true", "yes", "on")
                )
            elif isinstance(current, int | float):
                value = type(current)(float(value))
            elif isinstance(current, list | set):
                if isinstance(value, str):
                    value = [v.strip() for v in value.split(",") if v.strip()]
                if name == "status_delays":
                    value = [float(v) for v in value]
                if name == "not_on_whatsapp":
                    value = {re.sub(r"\D", "", str(v)) for v in value}
                value = type(current)(value)
            else:
                value = str(value)
            setattr(self, name, value)

    @classmethod
    def from_env(cls, environ=None, **defaults) -> "SimConfig":
        config = cls(**defaults)
        environ = os.environ if environ is None else environ
        config.update(
            {
                f.name: environ[f"WASENDER_SIM_{f.name.upper()}"]
                for f in dataclasses.fields(cls)
                if f"WASENDER_SIM_{f.name.upper()}" in environ
            }
        )
        return config

    def as_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data["not_on_whatsapp"] = sorted(self.not_on_whatsapp)
        return data


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


def new_stats() -> dict:
    return {
        "requests": 0,
        "sends_accepted": 0,
        "sends_by_recipient": {},
        "sends_rejected": 0,
        "responses_429": 0,
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
        "webhooks_by_event": {},
        "inbound": 0,
        "uploads": 0,
    }


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


class Simulator:
    """The ASGI app. `phones_sample`, an async callable answering [(phone, name)], lets demo
    mode pick among the business's customers (embedded mode passes one that reads chatdesk's
    book: the simulator itself knows no app)."""

    MAX_BODY = 64 * 1024 * 1024

    def __init__(self, config: SimConfig | None = None, *, phones_sample=None):
        self.config = config or SimConfig()
        self.phones_sample = phones_sample
        self.rng = random.Random(self.config.seed or None)
        self.http: httpx.AsyncClient | None = None
        self.tasks: set[asyncio.Task] = set()
        self.demo_task: asyncio.Task | None = None
        routes: list[tuple[str, str, Callable[..., Any]]] = [
            ("POST", r"/api/send-message", self.send_message),
            ("POST", r"/api/upload", self.upload),
            ("GET", r"/api/messages/(?P<msg_id>\d+)/info", self.message_info),
            ("GET", r"/api/on-whatsapp/(?P<phone>[^/]+)", self.on_whatsapp),
            ("GET", r"/api/status", self.status),
            ("POST", r"/api/decrypt-media", self.decrypt_media),
            ("GET", r"/media/(?P<media_id>[\w-]+)", self.media_get),
            ("GET", r"/_sim/stats", lambda r: reply(200, self.stats_now())),
            ("GET", r"/_sim/messages", lambda r: reply(200, list(self.messages.values()))),
            ("GET", r"/_sim/config", lambda r: reply(200, self.config.as_dict())),
            ("POST", r"/_sim/config", self.config_post),
            ("POST", r"/_sim/reset", self.reset_post),
            ("POST", r"/_sim/inbound", self.inbound_post),
            ("GET", r"/", lambda r: reply(200, {"simulator": "wasender", "api": "/api"})),
        ]
        self.routes: list[tuple[str, re.Pattern[str], Callable[..., Any]]] = [
            (m, re.compile(p + "/?$"), h) for m, p, h in routes
        ]
        self.reset()

    def reset(self) -> None:
        for task in self.tasks:
            task.cancel()
        self.tasks = set()
        self.stats = new_stats()
        self.messages: dict[int, dict] = {}
        self.media: dict[str, tuple[bytes, str]] = {}
        self.wa_media: dict[str, tuple[bytes, str]] = {}  # encrypted URL -> what it decrypts to
        self.next_msg_id = 100000
        self.bucket = TokenBucket(self.config.rate_per_minute, self.config.burst)

    def stats_now(self) -> dict:
        """The counters, and how many lifecycles (webhooks still to push) are in flight."""
        return {**self.stats, "in_flight": len(self.tasks)}

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
            status, payload, extra = reply(413, {"success": False, "message": "Payload too large"})
        else:
            try:
                status, payload, extra = await self.handle(request)
            except Exception:  # a test tool: log, answer 500, keep serving
                log.exception("simulator failed on %s %s", request.method, request.path)
                status, payload, extra = reply(500, {"success": False, "message": "Server Error"})
        if (status, payload, extra) == DROP:
            return _connection_cut(send)
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
            return reply(404, {"success": False, "message": "Not Found"})
        handler, match = route
        if not request.path.startswith("/api/"):
            result = handler(request, **match.groupdict())
            return await result if asyncio.iscoroutine(result) else result
        if denied := self.auth_check(request):
            return denied
        if fault := await self.fault_inject():
            return fault
        status, payload, extra = await handler(request, **match.groupdict())
        return status, payload, {**self.rate_headers(), **extra}

    def auth_check(self, request: Request) -> tuple | None:
        auth = request.headers.get("authorization", "")
        if not auth.lower().startswith("bearer ") or not auth[7:].strip():
            return reply(401, {"success": False, "message": "API key is required"})
        if not secrets.compare_digest(auth[7:].strip(), self.config.api_key):
            return reply(401, {"success": False, "message": "Invalid API key"})
        return None

    async def fault_inject(self) -> tuple | None:
        """Faults that strike before any work (nothing is sent, whatever the client makes of
        the answer); the faults after a send was accepted are in `_send_answer`."""
        cfg = self.config
        if cfg.latency_ms:
            await asyncio.sleep(cfg.latency_ms / 1000 * self.rng.uniform(0.5, 1.5))
        if self.rng.random() < cfg.timeouts:
            self.stats["injected_timeouts"] += 1
            await asyncio.sleep(cfg.timeout_seconds)
            return reply(504, {"success": False, "message": "Gateway Timeout"})
        if self.rng.random() < cfg.fail_5xx:
            self.stats["injected_5xx"] += 1
            status = self.rng.choice([500, 502, 503])
            if status == 502:  # what a proxy in front of the API answers: not JSON
                return reply(
                    502,
                    "<html><body><h1>502 Bad Gateway</h1></body></html>",
                    {"content-type": "text/html"},
                )
            return reply(status, {"success": False, "message": "Server Error"})
        return None

    def rate_headers(self) -> dict:
        full_in = math.ceil(self.bucket.full_in())
        reset = full_in if self.config.reset_form == "seconds" else int(time.time()) + full_in
        return {
            "x-ratelimit-limit": int(self.config.rate_per_minute),
            "x-ratelimit-remaining": int(self.bucket.tokens),
            "x-ratelimit-reset": reset,
        }

    # --- the API --------------------------------------------------------------------------------

    async def send_message(self, request: Request) -> tuple:
        body = request.json()
        if not isinstance(body, dict):
            self.stats["sends_rejected"] += 1
            return reply(400, {"success": False, "message": "Invalid JSON body"})
        if errors := self.send_validate(body):
            self.stats["sends_rejected"] += 1
            return reply(422, {"success": False, "message": "Validation failed", "errors": errors})
        to = str(body["to"])
        if re.sub(r"\D", "", to) in self.config.not_on_whatsapp and "@" not in to:
            self.stats["sends_rejected"] += 1
            text = f"The number {to} is not registered on WhatsApp."
            return reply(422, {"success": False, "message": text, "errors": {"to": [text]}})
        if wait := self.bucket.take():
            self.stats["responses_429"] += 1
            retry_after = math.ceil(wait)
            text = (
                f"You have exceeded your limit of {self.config.rate_per_minute:g} "
                "messages per minute."
            )
            if self.config.rate_per_minute <= 1:
                text = "You are on a free trial. You can only send 1 message every 1 minute."
            return reply(
                429, {"message": text, "retry_after": retry_after}, {"retry-after": retry_after}
            )
        message = self.send_accept(to, body)
        if self.rng.random() < self.config.echo_first:
            self.stats["echoes_first"] += 1
            await self._announce(message)
            self.spawn(self._statuses(message))
        else:
            self.spawn(self._lifecycle(message))
        return await self._send_answer(message, to)

    async def _send_answer(self, message: dict, to: str) -> tuple:
        """The answer to an accepted send, or one of the faults that strike after acceptance
        (the customer gets the message whatever the client hears)."""
        cfg, roll = self.config, self.rng.random()
        data = {"msgId": message["msgId"], "jid": to, "status": "in_progress"}
        if roll < cfg.lost_answers:
            self.stats["lost_answers"] += 1
            await asyncio.sleep(cfg.timeout_seconds)
        elif (roll := roll - cfg.lost_answers) < cfg.accept_then_5xx:
            self.stats["accepted_then_5xx"] += 1
            return reply(self.rng.choice([500, 502, 503]), {"success": False, "message": "Error"})
        elif (roll := roll - cfg.accept_then_5xx) < cfg.accept_then_drop:
            self.stats["accepted_then_dropped"] += 1
            return DROP
        elif roll - cfg.accept_then_drop < cfg.answer_without_id:
            self.stats["answered_without_id"] += 1
            data.pop("msgId")
        return reply(200, {"success": True, "data": data})

    def send_validate(self, body: dict) -> dict:
        errors = {}
        to = body.get("to")
        if not to:
            errors["to"] = ["The to field is required."]
        elif not isinstance(to, str) or not TO_RE.match(to):
            errors["to"] = ["The to field must be a valid phone number (E.164) or a group JID."]
        has_content = any(body.get(k) for k in [*MEDIA_FIELDS, "contact", "location", "poll"])
        if not body.get("text") and not has_content:
            errors["text"] = ["The text field is required when no media is present."]
        for key in MEDIA_FIELDS:
            value = body.get(key)
            if value is not None and not (isinstance(value, str) and re.match(r"https?://", value)):
                errors[key] = [f"The {key} field must be a valid URL."]
        reply_to = body.get("replyTo")
        if reply_to is not None and (isinstance(reply_to, bool) or not isinstance(reply_to, int)):
            errors["replyTo"] = ["The reply to field must be an integer."]
        return errors

    def send_accept(self, to: str, body: dict) -> dict:
        msg_id, self.next_msg_id = self.next_msg_id, self.next_msg_id + 1
        jid = to if "@" in to else re.sub(r"\D", "", to) + "@s.whatsapp.net"
        media = next((v for k, v in MEDIA_FIELDS.items() if body.get(k)), None)
        message = {
            "msgId": msg_id,
            "id": "3EB0" + secrets.token_hex(8).upper(),
            "to": to,
            "remoteJid": jid,
            "text": body.get("text") or "",
            "media": media,
            "mediaUrl": next((body[k] for k in MEDIA_FIELDS if body.get(k)), None),
            "replyTo": body.get("replyTo"),
            "status": 1,
            "timestamp": int(time.time()),
        }
        self.messages[msg_id] = message
        self.stats["sends_accepted"] += 1
        by_recipient = self.stats["sends_by_recipient"]
        by_recipient[to] = by_recipient.get(to, 0) + 1
        return message

    async def upload(self, request: Request) -> tuple:
        content, mime = request.body, request.headers.get("content-type", "")
        if mime.startswith("application/json"):
            data = (request.json() or {}).get("base64", "")
            match = re.match(r"data:([\w.+/-]+);base64,(.*)$", str(data), re.S)
            content = b""
            if match:
                with contextlib.suppress(ValueError):  # not base64
                    content, mime = base64.b64decode(match.group(2)), match.group(1)
        if not content:
            return reply(422, {"success": False, "message": "No file was uploaded."})
        self.stats["uploads"] += 1
        return reply(200, {"success": True, "publicUrl": self.media_store(request, content, mime)})

    def media_store(self, request: Request, content: bytes, mime: str) -> str:
        media_id = secrets.token_urlsafe(12)
        self.media[media_id] = (content, mime.split(";")[0] or "application/octet-stream")
        return f"{request.base}/media/{media_id}"

    async def media_get(self, request: Request, media_id: str) -> tuple:
        if media_id not in self.media:
            return reply(404, {"success": False, "message": "File not found or expired"})
        content, mime = self.media[media_id]
        return reply(200, content, {"content-type": mime})

    async def message_info(self, request: Request, msg_id: str) -> tuple:
        message = self.messages.get(int(msg_id))
        if message is None:
            return reply(404, {"success": False, "message": "Message not found"})
        key = {"id": message["id"], "fromMe": True, "remoteJid": message["remoteJid"]}
        return reply(
            200,
            {
                "success": True,
                "data": {
                    "msgId": message["msgId"],
                    "remoteJid": message["remoteJid"],
                    "id": message["id"],
                    "key": key,
                    "message": self.wa_message(message),
                    "messageTimestamp": str(message["timestamp"]),
                    "status": message["status"],
                },
            },
        )

    async def on_whatsapp(self, request: Request, phone: str) -> tuple:
        exists = re.sub(r"\D", "", phone) not in self.config.not_on_whatsapp
        return reply(200, {"success": True, "data": {"exists": exists}})

    async def status(self, request: Request) -> tuple:
        return reply(200, {"status": self.config.session_status})

    async def decrypt_media(self, request: Request) -> tuple:
        body = request.json()
        message = body.get("data", {}).get("messages") if isinstance(body, dict) else None
        if isinstance(message, list):
            message = message[0] if message else None
        node_name, node = media_node((message or {}).get("message") or {})
        if node is None:
            return reply(422, {"success": False, "message": "No media found in the message."})
        mime = node.get("mimetype") or "application/octet-stream"
        found = self.wa_media.get(node.get("url") or "")
        content, mime = found if found else (None, mime)
        if content is None:
            content = (
                PNG
                if node_name in ("imageMessage", "stickerMessage")
                else (b"simulated media " + mime.encode())
            )
        return reply(200, {"success": True, "publicUrl": self.media_store(request, content, mime)})

    # --- control --------------------------------------------------------------------------------

    async def config_post(self, request: Request) -> tuple:
        values = request.json()
        if not isinstance(values, dict):
            return reply(400, {"success": False, "message": "Expected a JSON object"})
        try:
            self.config.update(values)
        except (AttributeError, TypeError, ValueError) as e:
            return reply(400, {"success": False, "message": f"Bad knob: {e}"})
        if {"rate_per_minute", "burst"} & values.keys():
            self.bucket = TokenBucket(self.config.rate_per_minute, self.config.burst)
        if "seed" in values:
            self.rng.seed(self.config.seed or None)
        self.ensure_started()
        return reply(200, self.config.as_dict())

    async def reset_post(self, request: Request) -> tuple:
        self.reset()
        return reply(200, {"success": True})

    async def inbound_post(self, request: Request) -> tuple:
        body = request.json()
        if (
            not isinstance(body, dict)
            or not body.get("phone")
            or not (body.get("text") or body.get("image"))
        ):
            return reply(400, {"success": False, "message": "phone and text are required"})
        event = body.get("event") or "messages.received"
        message = self.inbound_message(
            str(body["phone"]),
            str(body.get("text") or ""),
            body.get("name"),
            image=bool(body.get("image")),
        )
        delivered = await self.inbound_push(message, event)
        return reply(
            200, {"success": True, "data": {"id": message["key"]["id"], "delivered": delivered}}
        )

    # --- webhooks -------------------------------------------------------------------------------

    def spawn(self, coroutine) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def wa_message(self, message: dict) -> dict:
        if message["media"]:
            return {
                f"{message['media']}Message": {
                    "url": message["mediaUrl"],
                    "caption": message["text"],
                }
            }
        return {"extendedTextMessage": {"text": message["text"]}}

    async def _lifecycle(self, message: dict) -> None:
        """message.sent and the fromMe echo, then statuses 2 -> 3 -> 4 (or a shuffle of them)."""
        await asyncio.sleep(self.config.sent_delay)
        await self._announce(message)
        await self._statuses(message)

    def _key(self, message: dict) -> dict:
        return {"id": message["id"], "fromMe": True, "remoteJid": message["remoteJid"]}

    async def _announce(self, message: dict) -> None:
        """message.sent, then the fromMe echo (messages.upsert), in either order."""
        key = self._key(message)
        sent = {"msgId": message["msgId"], "key": key, "status": "sent"}
        echo = {
            "key": {**key, "addressingMode": "pn"},
            "messageTimestamp": message["timestamp"],
            "messageBody": message["text"],
            "message": self.wa_message(message),
        }
        pushes = [("message.sent", sent), ("messages.upsert", {"messages": [echo]})]
        if self.rng.random() < self.config.out_of_order:
            pushes.reverse()
        for event, data in pushes:
            await self.push(event, data)

    async def _statuses(self, message: dict) -> None:
        cfg = self.config
        key = self._key(message)
        statuses = [2, 3, 4]
        if self.rng.random() < cfg.out_of_order:
            statuses = self.rng.choice([[3, 2, 4], [2, 4, 3], [2, 4], [4, 3, 2]])
        statuses = [status for status in statuses if status <= cfg.status_until]
        delays = cfg.status_delays or [0.0]
        for i, status in enumerate(statuses):
            await asyncio.sleep(delays[min(i, len(delays) - 1)])
            message["status"] = max(message["status"], status)
            update = {"update": {"status": status}, "key": key}
            if self.rng.random() < cfg.variants:
                update["update"]["status"] = STATUS_NAMES[status]
            await self.push(
                "messages.update", [update] if self.rng.random() < cfg.variants else update
            )

    def envelope(self, event: str, data) -> dict:
        now = time.time()
        body = {"event": event, "timestamp": int(now), "data": data}
        if self.rng.random() < self.config.variants:
            body.update(timestamp=int(now * 1000), sessionId="simulator-session")
        return body

    async def push(self, event: str, data) -> bool:
        body = self.envelope(event, data)
        copies = 2 if self.rng.random() < self.config.duplicates else 1
        self.stats["webhooks_duplicated"] += copies - 1
        results = [await self._deliver(body) for _ in range(copies)]
        return all(results)

    async def _deliver(self, body: dict, attempts: int = 4) -> bool:
        """Retries connection errors and 5xx a few times; never raises (a test tool logs)."""
        url = self.config.webhook_url
        if not url:
            return False
        if self.http is None:
            # Enough connections that a burst of webhooks waits on chatdesk, not on this pool
            # (a pool timeout here would lose webhooks the real provider would have sent).
            limits = httpx.Limits(max_connections=300, max_keepalive_connections=50)
            self.http = httpx.AsyncClient(timeout=30.0, limits=limits)
        headers = {"X-Webhook-Signature": self.config.webhook_secret}
        for attempt in range(attempts):
            try:
                response = await self.http.post(url, json=body, headers=headers)
                if response.status_code < 500:
                    self.stats["webhooks_pushed"] += 1
                    by_event = self.stats["webhooks_by_event"]
                    by_event[body["event"]] = by_event.get(body["event"], 0) + 1
                    if response.status_code >= 400:
                        log.warning("webhook %s answered %s", body["event"], response.status_code)
                    return True
                problem = f"HTTP {response.status_code}"
            except httpx.HTTPError as e:
                problem = repr(e)
            log.warning(
                "webhook %s to %s failed (%s), attempt %d", body["event"], url, problem, attempt + 1
            )
            await asyncio.sleep(0.2 * 2**attempt)
        self.stats["webhooks_failed"] += 1
        return False

    # --- customers writing to us ----------------------------------------------------------------

    def inbound_message(self, phone: str, text: str, name: str | None, image=False) -> dict:
        digits = re.sub(r"\D", "", phone)
        jid = f"{digits}@s.whatsapp.net"
        key = {
            "id": "3A" + secrets.token_hex(9).upper(),
            "fromMe": False,
            "remoteJid": jid,
            "addressingMode": "pn",
            "senderPn": jid,
            "cleanedSenderPn": digits,
        }
        content: dict[str, Any] = {"conversation": text}
        if image:
            url = f"https://mmg.whatsapp.net/o1/v/t62.7118-24/sim-{secrets.token_hex(8)}"
            self.wa_media[url] = (PNG, "image/png")
            content = {
                "imageMessage": {
                    "url": url,
                    "mimetype": "image/png",
                    "caption": text,
                    "fileLength": str(len(PNG)),
                    "mediaKey": base64.b64encode(os.urandom(32)).decode(),
                }
            }
        return {
            "key": key,
            "pushName": name or self.rng.choice(DEMO_NAMES),
            "messageTimestamp": int(time.time()),
            "messageBody": text,
            "message": content,
        }

    async def inbound_push(self, message: dict, event: str) -> bool:
        self.stats["inbound"] += 1
        data = {"messages": [message] if event == "messages.upsert" else message}
        return await self.push(event, data)

    async def _demo_loop(self) -> None:
        while True:
            await asyncio.sleep(self.rng.expovariate(1 / max(self.config.demo_interval, 0.1)))
            if not self.config.demo:
                continue
            try:
                phone, name = await self._demo_pick()
                if phone:
                    event = self.rng.choice(["messages.received", "messages.upsert"])
                    message = self.inbound_message(phone, self.rng.choice(DEMO_TEXTS), name)
                    await self.inbound_push(message, event)
            except Exception:
                log.exception("demo reply failed")

    async def _demo_pick(self) -> tuple[str | None, str | None]:
        candidates = [(p, None) for p in self.config.demo_phones]
        candidates += [(p, None) for p in self.stats["sends_by_recipient"] if "@" not in p]
        if self.phones_sample is not None:
            candidates += await self.phones_sample()
        return self.rng.choice(candidates) if candidates else (None, None)


def _connection_cut(send) -> None:
    """Cut the client's connection without an answer, as a proxy timing out or a network cut
    does. ASGI has no word for it: under daphne, `send` is a partial of its server's reply
    handler holding the connection's request, whose transport is closed here (a test tool's
    liberty). Elsewhere the request is left unanswered, which the client sees as a timeout."""
    request = send.args[0] if isinstance(send, functools.partial) and send.args else None
    transport = getattr(getattr(request, "channel", None), "transport", None)
    if transport is not None:
        transport.loseConnection()


def media_node(message: dict) -> tuple[str | None, dict | None]:
    """The media part of a WhatsApp message, looking through ephemeral/view-once wrappers."""
    for _ in range(3):
        for name in MEDIA_NODES:
            if isinstance(message.get(name), dict):
                return name, message[name]
        inner = next((message[w] for w in WRAPPERS if isinstance(message.get(w), dict)), None)
        if inner is None:
            return None, None
        message = inner.get("message") or {}
    return None, None


def embedded_app(*, chatdesk_app, chatdesk_port, simulator_port, phones_sample=None):
    """One ASGI app for one daphne process: requests reaching `simulator_port` go to the
    simulator, everything else (and lifespan) to chatdesk. Demo replies are on by default."""
    from django.conf import settings

    simulator = Simulator(
        SimConfig.from_env(
            api_key=settings.WASENDER_SIMULATOR_KEY,
            webhook_secret=settings.WASENDER_WEBHOOK_SECRET,
            webhook_url=f"http://127.0.0.1:{chatdesk_port}/webhooks/wasender/",
            demo=True,
        ),
        phones_sample=phones_sample,
    )

    async def app(scope, receive, send):
        simulator.ensure_started()
        server = scope.get("server") or (None, None)
        if scope["type"] != "lifespan" and server[1] == simulator_port:
            return await simulator(scope, receive, send)
        return await chatdesk_app(scope, receive, send)

    app.simulator = simulator
    return app
