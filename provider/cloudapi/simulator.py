"""A Meta Cloud API stand-in for the demo and the tests, beside the WaSender one and in its
style: a pure ASGI app (runs under daphne, alone or embedded in chatdesk's process) speaking the
Graph API shapes chatdesk uses, pushing signed webhooks back, with knobs for Meta's limits and
the faults a network has.

The API (bearer token; any version such as v21.0):
  POST /{version}/{phone_number_id}/messages         text, media (link or id), template
  POST /{version}/{phone_number_id}/media            multipart upload -> {"id"}
  GET  /{version}/{media_id}                         {"url", "mime_type", "sha256", "file_size"}
  GET  /_media/{media_id}                            the bytes (bearer token required)
  GET  /{version}/{waba_id}/message_templates        templates with their approval state

Meta's rules it plays: the 24-hour customer-service window (a free-form message to a customer
who has not written in 24 h fails with 131047; templates pass), the number's throughput (130429),
the pair rate (131056), the marketing cap (131049), template states (132001, 132015) and the
parameter count (132000). Like Meta, window, cap and undeliverable errors come by default as a
`failed` status webhook after an accepted send (`async_errors`); off, they are HTTP errors.

What every simulator does (ASGI, faults, webhook pushing, counters) is provider.simulating's.
Control endpoints (no token; the simulator only listens on loopback):
  GET  /_sim/stats     counters, and `in_flight`: webhooks still to push
  GET  /_sim/messages  the accepted sends
  GET|POST /_sim/config  read or change knobs (JSON object with SimConfig field names)
  POST /_sim/reset     forget messages, media, windows and counters
  POST /_sim/inbound   {"phone", "text"?, "name"?, "type"? (text/image/reaction...),
                        "reply_to"?, "hours_ago"?}: a customer writes to us (opens the window)
"""

import asyncio
import hashlib
import hmac
import json
import math
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from provider.simulating import (
    DEMO_NAMES,
    DEMO_TEXTS,
    PNG,
    Request,
    SimKnobs,
    SimulatorBase,
    TokenBucket,
    embedded,
    reply,
)

MEDIA_KINDS = ("image", "video", "audio", "document", "sticker")
VERSION = r"v\d+\.\d+"
STATUS_ORDER = ["sent", "delivered", "read"]


def default_templates() -> list[dict]:
    return [
        {
            "id": "594425479261596",
            "name": "recordatorio_pago",
            "language": "es",
            "status": "APPROVED",
            "category": "UTILITY",
            "components": [
                {"type": "BODY", "text": "Hola {{1}}, tu suscripción de {{2}} vence mañana."}
            ],
        },
        {
            "id": "594425479261597",
            "name": "promo_mes",
            "language": "es",
            "status": "APPROVED",
            "category": "MARKETING",
            "components": [
                {"type": "HEADER", "format": "IMAGE"},
                {"type": "BODY", "text": "¡{{1}}, este mes tenemos 20% de descuento!"},
            ],
        },
        {
            "id": "594425479261598",
            "name": "bienvenida",
            "language": "es",
            "status": "APPROVED",
            "category": "UTILITY",
            "components": [{"type": "BODY", "text": "¡Hola! Gracias por escribirnos."}],
        },
        {
            "id": "806312974732579",
            "name": "oferta_navidad",
            "language": "es",
            "status": "REJECTED",
            "category": "MARKETING",
            "components": [{"type": "BODY", "text": "¡{{1}}, feliz Navidad!"}],
        },
        {
            "id": "806312974732580",
            "name": "encuesta",
            "language": "es",
            "status": "PAUSED",
            "category": "MARKETING",
            "components": [{"type": "BODY", "text": "¿Cómo te atendimos?"}],
        },
    ]


@dataclass
class SimConfig(SimKnobs):
    """Every knob; settable by constructor, CLOUDAPI_SIM_<NAME> env vars, CLI or /_sim/config."""

    access_token: str = "simulator-token"  # noqa: S105 (the simulator's well-known token)
    app_secret: str = "simulator-app-secret"  # noqa: S105
    webhook_url: str = ""
    phone_number_id: str = "100000000000001"
    display_phone_number: str = "593990000001"
    waba_id: str = "200000000000001"
    throughput_per_second: float = 80.0  # the number's limit; over it 130429
    burst: int = 0  # bucket size; 0 means one second's worth
    pair_rate_seconds: float = 0.0  # minimum gap between sends to one customer (0: off)
    window_hours: float = 24.0
    window_check: bool = True
    async_errors: bool = True  # 131047/131049/131026 as failed statuses (Meta's way)
    marketing_cap: float = 0.0  # share of marketing templates held back with 131049
    undeliverable: set = field(default_factory=set)  # digits: sends fail with 131026
    latency_ms: float = 0.0
    fail_5xx: float = 0.0  # share of API calls answered 500/503 before doing anything
    timeouts: float = 0.0  # share of API calls that hang timeout_seconds, then 504
    lost_answers: float = 0.0  # accepted sends answered only after timeout_seconds
    accept_then_5xx: float = 0.0
    accept_then_drop: float = 0.0
    answer_without_id: float = 0.0
    # Share of sends whose "sent" status webhook is pushed (and answered) before the answer.
    echo_first: float = 0.0
    timeout_seconds: float = 20.0
    duplicates: float = 0.0  # chance each webhook is delivered twice
    out_of_order: float = 0.0  # chance a message's statuses arrive shuffled or skip one
    batch: float = 0.0  # chance a status webhook carries two statuses (repeats one)
    status_delays: list = field(default_factory=lambda: [0.3, 1.0, 2.0])
    status_until: int = 4  # 4 read, 3 delivered, 2 sent only
    templates: list = field(default_factory=default_templates)
    demo: bool = False
    demo_interval: float = 25.0
    demo_phones: list = field(default_factory=list)
    seed: int = 0

    ENV_PREFIX = "CLOUDAPI_SIM_"

    def coerce(self, name: str, value, current):
        if name == "templates":
            value = json.loads(value) if isinstance(value, str) else value
            if not isinstance(value, list) or not all(isinstance(t, dict) for t in value):
                raise ValueError("templates must be a list of objects")
            return value
        return super().coerce(name, value, current)


def graph_error(code: int, message: str, details: str = "", status: int = 400) -> tuple:
    error = {
        "message": message,
        "type": "OAuthException",
        "code": code,
        "fbtrace_id": secrets.token_urlsafe(12),
    }
    if details:
        error["error_data"] = {"messaging_product": "whatsapp", "details": details}
    return reply(status, {"error": error})


ERRORS = {
    # code: (title, details)
    130429: ("Rate limit hit", "Cloud API message throughput has been reached."),
    131056: (
        "(Business Account, Consumer Account) pair rate limit hit",
        "Message failed to send because there were too many messages sent from this phone "
        "number to the same phone number in a short period of time.",
    ),
    131047: (
        "Re-engagement message",
        "Message failed to send because more than 24 hours have passed since the customer "
        "last replied to this number.",
    ),
    131049: (
        "This message was not delivered to maintain healthy ecosystem engagement.",
        "In order to maintain a healthy ecosystem engagement, the message failed to be delivered.",
    ),
    131026: ("Message undeliverable", "Unable to deliver message."),
    132000: (
        "Number of parameters does not match the expected number of params",
        "body: number of localizable_params does not match the expected number of params",
    ),
    132001: (
        "Template name does not exist in the translation",
        "template name does not exist in the translation",
    ),
    132015: ("Template is Paused", "Template is paused due to low quality."),
    100: ("Invalid parameter", "Parameter value is not valid"),
}


def signature(secret: str, raw: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()


class Simulator(SimulatorBase):
    """The ASGI app (see provider.simulating for what every simulator does)."""

    INDEX = {"simulator": "cloudapi", "api": "/v21.0"}
    BUCKET_KNOBS = {"throughput_per_second", "burst"}
    BY_KIND = "webhooks_by_kind"
    config: SimConfig

    def __init__(self, config: SimConfig | None = None, *, phones_sample=None):
        super().__init__(config or SimConfig(), phones_sample=phones_sample)

    def api_routes(self) -> list[tuple[str, str, Callable[..., Any]]]:
        return [
            ("POST", rf"/{VERSION}/(?P<number>\d+)/messages", self.messages_post),
            ("POST", rf"/{VERSION}/(?P<number>\d+)/media", self.media_post),
            ("GET", rf"/{VERSION}/(?P<waba>\d+)/message_templates", self.templates_get),
            ("GET", rf"/{VERSION}/(?P<media_id>\d+)", self.media_info),
            ("GET", r"/_media/(?P<media_id>\d+)", self.media_bytes),
        ]

    def reset(self) -> None:
        super().reset()
        self.last_inbound: dict[str, float] = {}  # digits -> when the customer last wrote
        self.last_send: dict[str, float] = {}  # digits -> our last send, for the pair rate
        self.next_media_id = 1000000000000001

    def new_stats(self) -> dict:
        return {**super().new_stats(), "templates_sent": 0, "errors_by_code": {}}

    def bucket_new(self) -> TokenBucket:
        per_minute = self.config.throughput_per_second * 60
        return TokenBucket(per_minute, self.config.burst or math.ceil(per_minute / 60))

    # --- answers --------------------------------------------------------------------------------

    def is_api(self, path: str) -> bool:
        return not (path.startswith("/_sim/") or path == "/")

    def not_found(self) -> tuple:
        return graph_error(100, "Unsupported request - method type or path", status=400)

    def too_large(self) -> tuple:
        return graph_error(100, "Payload too large", status=413)

    def crashed(self) -> tuple:
        return graph_error(131000, "Something went wrong", "Something went wrong", 500)

    def auth_check(self, request: Request) -> tuple | None:
        auth = request.headers.get("authorization", "")
        token = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
        if not token or not secrets.compare_digest(
            token.encode("utf-8", "replace"), self.config.access_token.encode()
        ):
            return graph_error(
                190, "Invalid OAuth access token - Cannot parse access token", status=401
            )
        return None

    def timeout_answer(self) -> tuple:
        return reply(504, "Gateway Timeout", {"content-type": "text/plain"})

    def fault_5xx_answer(self) -> tuple:
        if self.rng.random() < 0.5:
            return reply(502, "<html><body>502 Bad Gateway</body></html>", {})
        return graph_error(131016, "Service unavailable", "Service unavailable", 503)

    def _error(self, code: int, status: int = 400) -> tuple:
        title, details = ERRORS[code]
        by_code = self.stats["errors_by_code"]
        by_code[str(code)] = by_code.get(str(code), 0) + 1
        self.stats["sends_rejected"] += 1
        return graph_error(code, f"(#{code}) {title}", details, status)

    # --- the API --------------------------------------------------------------------------------

    async def messages_post(self, request: Request, number: str) -> tuple:
        cfg = self.config
        if number != cfg.phone_number_id:
            self.stats["sends_rejected"] += 1
            return graph_error(
                100,
                f"Unsupported post request. Object with ID '{number}' does not exist",
                status=400,
            )
        body = request.json()
        problem = self.send_validate(body)
        if problem:
            self.stats["sends_rejected"] += 1
            return graph_error(100, "(#100) Invalid parameter", problem)
        to = re.sub(r"\D", "", str(body["to"]))
        template: dict | None = None
        failure = None
        if body["type"] == "template":
            found = self.template_find(body["template"])
            if isinstance(found, tuple):
                return found
            template = found
        if self.bucket.take():
            return self._error(130429)
        now = time.monotonic()
        last = self.last_send.get(to)
        if cfg.pair_rate_seconds and last is not None and now - last < cfg.pair_rate_seconds:
            return self._error(131056)
        if template is None and cfg.window_check and not self.window_open(to):
            failure = 131047
        elif (
            template is not None
            and template["category"] == "MARKETING"
            and self.rng.random() < cfg.marketing_cap
        ):
            failure = 131049
        elif to in cfg.undeliverable:
            failure = 131026
        if failure and not cfg.async_errors:
            return self._error(failure)
        self.last_send[to] = now
        message = self.send_accept(to, body, template, failure)
        if self.rng.random() < cfg.echo_first:
            self.stats["echoes_first"] += 1
            await self._status_push(message, message["statuses"][0])
            self.spawn(self._lifecycle(message, first=1))
        else:
            self.spawn(self._lifecycle(message))
        return await self.send_answer(message)

    def accepted_answer(self, message: dict, *, with_id: bool) -> tuple:
        answer: dict[str, Any] = {
            "messaging_product": "whatsapp",
            "contacts": [{"input": message["input"], "wa_id": message["to"]}],
            "messages": [{"id": message["id"]}],
        }
        if message["template"]:
            answer["messages"][0]["message_status"] = "accepted"
        if not with_id:
            answer.pop("messages")
        return reply(200, answer)

    def accepted_5xx_answer(self) -> tuple:
        return graph_error(131000, "Something went wrong", "Something went wrong", 500)

    def send_validate(self, body) -> str:
        """Meta's checks, as the details of a (#100) Invalid parameter."""
        if not isinstance(body, dict):
            return "The request body is not a JSON object"
        if body.get("messaging_product") != "whatsapp":
            return "The parameter messaging_product is required."
        to = body.get("to")
        if not isinstance(to, str) or not re.fullmatch(r"\+?\d{7,15}", to):
            return "The parameter to is required and must be a phone number."
        kind = body.get("type", "text")
        if kind not in ("text", "template", *MEDIA_KINDS):
            return f"Unsupported message type {kind!r}."
        body["type"] = kind
        part = body.get(kind)
        if not isinstance(part, dict):
            return f"The parameter {kind} is required."
        if kind == "text" and not (isinstance(part.get("body"), str) and part["body"].strip()):
            return "The parameter text['body'] is required."
        if kind in MEDIA_KINDS:
            link, media_id = part.get("link"), part.get("id")
            if isinstance(media_id, str) and media_id not in self.media:
                return "The media id is not valid."
            if not (isinstance(link, str) and re.match(r"https?://", link)) and not media_id:
                return f"The parameter {kind}['link'] or {kind}['id'] is required."
        if kind == "template":
            language = part.get("language")
            if not isinstance(part.get("name"), str) or not isinstance(language, dict):
                return "The parameters template['name'] and template['language'] are required."
        context = body.get("context")
        if context is not None and not (
            isinstance(context, dict) and isinstance(context.get("message_id"), str)
        ):
            return "The parameter context['message_id'] must be a string."
        return ""

    def template_find(self, part: dict) -> dict | tuple:
        """The approved template a send names, or the error Meta answers."""
        code = part["language"].get("code")
        template = next(
            (
                t
                for t in self.config.templates
                if t.get("name") == part["name"] and t.get("language") == code
            ),
            None,
        )
        status = (template or {}).get("status", "").upper()
        if template is None or status in ("REJECTED", "PENDING", "DISABLED"):
            return self._error(132001)
        if status == "PAUSED":
            return self._error(132015)
        components = part.get("components") or []
        given = sum(
            len(c.get("parameters") or [])
            for c in components
            if isinstance(c, dict) and c.get("type") == "body"
        )
        body: dict = next((c for c in template["components"] if c.get("type") == "BODY"), {})
        wanted = len(set(re.findall(r"\{\{(\w+)\}\}", body.get("text", ""))))
        if given != wanted:
            return self._error(132000)
        return template

    def window_open(self, to: str) -> bool:
        last = self.last_inbound.get(to)
        return last is not None and time.time() - last < self.config.window_hours * 3600

    def send_accept(self, to: str, body: dict, template: dict | None, failure: int | None):
        kind = body["type"]
        part = body[kind]
        statuses = ["sent", "delivered", "read"]
        if self.rng.random() < self.config.out_of_order:
            statuses = self.rng.choice(
                [
                    ["delivered", "sent", "read"],
                    ["sent", "read", "delivered"],
                    ["sent", "read"],
                    ["read", "delivered", "sent"],
                ]
            )
        statuses = statuses[: max(self.config.status_until - 1, 1)]
        if failure:
            statuses = ["failed"]
        message = {
            "id": "wamid." + secrets.token_urlsafe(36),
            "input": body["to"],
            "to": to,
            "type": kind,
            "text": part.get("body") or part.get("caption") or "",
            "media": part.get("link") or part.get("id") if kind in MEDIA_KINDS else None,
            "template": template["name"] if template else None,
            "category": template["category"].lower() if template else "service",
            "context": (body.get("context") or {}).get("message_id"),
            "statuses": statuses,
            "status": "accepted",
            "error": failure,
            "timestamp": int(time.time()),
        }
        self.messages[message["id"]] = message
        self.stats["sends_accepted"] += 1
        self.stats["templates_sent"] += bool(template)
        by_recipient = self.stats["sends_by_recipient"]
        by_recipient[to] = by_recipient.get(to, 0) + 1
        return message

    async def media_post(self, request: Request, number: str) -> tuple:
        content, mime = self._multipart_file(request)
        if not content:
            return graph_error(100, "(#100) Param file must be a file with a valid mime type")
        media_id, self.next_media_id = str(self.next_media_id), self.next_media_id + 1
        self.media[media_id] = (content, mime)
        self.stats["uploads"] += 1
        return reply(200, {"id": media_id})

    def _multipart_file(self, request: Request) -> tuple[bytes, str]:
        """The `file` part of a multipart body (small parser: a test tool)."""
        match = re.search(r"boundary=\"?([^\";]+)", request.headers.get("content-type", ""))
        if not match:
            return b"", ""
        for part in request.body.split(b"--" + match.group(1).encode()):
            head, _, data = part.partition(b"\r\n\r\n")
            if b'name="file"' in head:
                mime = re.search(rb"content-type:\s*([\w.+/-]+)", head, re.I)
                kind = mime.group(1).decode() if mime else "application/octet-stream"
                return data.removesuffix(b"\r\n"), kind
        return b"", ""

    async def media_info(self, request: Request, media_id: str) -> tuple:
        if media_id not in self.media:
            return graph_error(
                100,
                f"Unsupported get request. Object with ID '{media_id}' does not exist",
                status=400,
            )
        content, mime = self.media[media_id]
        return reply(
            200,
            {
                "messaging_product": "whatsapp",
                "url": f"{request.base}/_media/{media_id}",
                "mime_type": mime,
                "sha256": hashlib.sha256(content).hexdigest(),
                "file_size": len(content),
                "id": media_id,
            },
        )

    async def media_bytes(self, request: Request, media_id: str) -> tuple:
        if denied := self.auth_check(request):
            return denied
        if media_id not in self.media:
            return reply(404, "Not Found", {"content-type": "text/plain"})
        content, mime = self.media[media_id]
        return reply(200, content, {"content-type": mime})

    async def templates_get(self, request: Request, waba: str) -> tuple:
        if waba != self.config.waba_id:
            return graph_error(
                100, f"Unsupported get request. Object with ID '{waba}' does not exist"
            )
        data = [{"parameter_format": "POSITIONAL", **t} for t in self.config.templates]
        cursors = {"before": "QVFIUmJlZAm9yZA", "after": "QVFIUmFmdGVyZA"}
        return reply(200, {"data": data, "paging": {"cursors": cursors}})

    # --- control --------------------------------------------------------------------------------

    async def inbound_post(self, request: Request) -> tuple:
        body = request.json()
        kind = body.get("type", "text") if isinstance(body, dict) else None
        if (
            not isinstance(body, dict)
            or not re.sub(r"\D", "", str(body.get("phone") or ""))
            or kind not in ("text", "image", "reaction", "unsupported")
            or (kind == "text" and not body.get("text"))
        ):
            return reply(400, {"success": False, "message": "phone and text are required"})
        try:
            hours_ago = float(body.get("hours_ago") or 0)
        except (TypeError, ValueError):
            return reply(400, {"success": False, "message": "hours_ago must be a number"})
        message = self.inbound_message(
            str(body["phone"]),
            str(body.get("text") or ""),
            kind=kind,
            reply_to=str(body.get("reply_to") or ""),
            at=time.time() - hours_ago * 3600,
        )
        delivered = await self.inbound_push(message, body.get("name"))
        return reply(200, {"success": True, "data": {"id": message["id"], "delivered": delivered}})

    # --- webhooks -------------------------------------------------------------------------------

    def value(self, **parts) -> dict:
        return {
            "messaging_product": "whatsapp",
            "metadata": {
                "display_phone_number": self.config.display_phone_number,
                "phone_number_id": self.config.phone_number_id,
            },
            **parts,
        }

    def envelope(self, value: dict, field_name: str = "messages") -> dict:
        return {
            "object": "whatsapp_business_account",
            "entry": [
                {"id": self.config.waba_id, "changes": [{"value": value, "field": field_name}]}
            ],
        }

    def status_item(self, message: dict, status: str) -> dict:
        item = {
            "id": message["id"],
            "status": status,
            "timestamp": str(int(time.time())),
            "recipient_id": message["to"],
        }
        if status == "failed":
            title, details = ERRORS[message["error"]]
            item["errors"] = [
                {
                    "code": message["error"],
                    "title": title,
                    "message": title,
                    "error_data": {"details": details},
                }
            ]
            return item
        category = message["category"]
        item["pricing"] = {
            "billable": category != "service",
            "pricing_model": "PMP",
            "category": category,
        }
        if status == "sent":
            item["conversation"] = {
                "id": hashlib.md5(message["to"].encode()).hexdigest(),  # noqa: S324
                "origin": {"type": category},
            }
        return item

    async def _lifecycle(self, message: dict, first: int = 0) -> None:
        """The message's statuses, one webhook each, after their delays."""
        delays = self.config.status_delays or [0.0]
        for i, status in enumerate(message["statuses"][first:], start=first):
            await asyncio.sleep(delays[min(i, len(delays) - 1)])
            await self._status_push(message, status)

    async def _status_push(self, message: dict, status: str) -> None:
        if status in STATUS_ORDER and STATUS_ORDER.index(status) >= STATUS_ORDER.index(
            message["status"] if message["status"] in STATUS_ORDER else "sent"
        ):
            message["status"] = status
        elif status == "failed":
            message["status"] = "failed"
        items = [self.status_item(message, status)]
        if self.rng.random() < self.config.batch:
            items.append(dict(items[0]))
        await self.webhook_push(self.envelope(self.value(statuses=items)), "status_" + status)

    def webhook_post(self, body: dict) -> dict:
        """Signed with the app secret over the exact bytes sent (Meta retries longer than
        the base's few attempts)."""
        raw = json.dumps(body, ensure_ascii=False).encode()
        headers = {
            "Content-Type": "application/json",
            "X-Hub-Signature-256": signature(self.config.app_secret, raw),
        }
        return {"content": raw, "headers": headers}

    # --- customers writing to us ----------------------------------------------------------------

    def inbound_message(
        self, phone: str, text: str, *, kind="text", reply_to="", at: float | None = None
    ) -> dict:
        at = time.time() if at is None else at
        message = {
            "from": re.sub(r"\D", "", phone),
            "id": "wamid." + secrets.token_urlsafe(36),
            "timestamp": str(int(at)),
            "type": kind,
        }
        if kind == "text":
            message["text"] = {"body": text}
        elif kind == "image":
            media_id, self.next_media_id = str(self.next_media_id), self.next_media_id + 1
            self.media[media_id] = (PNG, "image/png")
            message["image"] = {
                "caption": text,
                "mime_type": "image/png",
                "sha256": hashlib.sha256(PNG).hexdigest(),
                "id": media_id,
            }
        elif kind == "reaction":
            message["reaction"] = {"message_id": reply_to, "emoji": text or "👍"}
        else:
            message["errors"] = [{"code": 131051, "title": "Message type unknown"}]
        if reply_to and kind != "reaction":
            message["context"] = {
                "from": self.config.display_phone_number,
                "id": reply_to,
            }
        return message

    async def inbound_push(self, message: dict, name: str | None = None) -> bool:
        self.stats["inbound"] += 1
        at = float(message["timestamp"])
        phone = message["from"]
        self.last_inbound[phone] = max(self.last_inbound.get(phone, 0.0), at)
        contacts = [{"profile": {"name": name or self.rng.choice(DEMO_NAMES)}, "wa_id": phone}]
        body = self.envelope(self.value(contacts=contacts, messages=[message]))
        return await self.webhook_push(body, "message_" + message["type"])

    async def demo_write(self, phone: str, name: str | None) -> None:
        message = self.inbound_message(phone, self.rng.choice(DEMO_TEXTS))
        await self.inbound_push(message, name)


def embedded_app(*, chatdesk_app, chatdesk_port, simulator_port, phones_sample=None, config=None):
    """One ASGI app for one daphne process: requests reaching `simulator_port` go to the
    simulator, everything else (and lifespan) to `chatdesk_app`, which may itself be the
    WaSender simulator's embedded app (each simulator on its own port). Settings it reads when
    present: META_APP_SECRET, META_SIMULATOR_TOKEN, META_PHONE_NUMBER_ID."""
    from django.conf import settings

    defaults = {
        "webhook_url": f"http://127.0.0.1:{chatdesk_port}/webhooks/meta/",
        "demo": True,
    }
    for knob, name in [
        ("app_secret", "META_APP_SECRET"),
        ("access_token", "META_SIMULATOR_TOKEN"),
        ("phone_number_id", "META_PHONE_NUMBER_ID"),
    ]:
        if getattr(settings, name, ""):
            defaults[knob] = getattr(settings, name)
    simulator = Simulator(config or SimConfig.from_env(**defaults), phones_sample=phones_sample)
    return embedded(simulator, chatdesk_app=chatdesk_app, simulator_port=simulator_port)
