"""A WaSender stand-in for the demo and the tests: nobody can test against a real WhatsApp
number here. A pure ASGI app (runs under daphne) speaking the API chatdesk uses at `/api/...`,
pushing webhooks back to chatdesk, with knobs to inject the faults the real provider has.
What every simulator does (ASGI, faults, webhook pushing, counters) is provider.simulating's.

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
import math
import os
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


@dataclass
class SimConfig(SimKnobs):
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

    ENV_PREFIX = "WASENDER_SIM_"


class Simulator(SimulatorBase):
    """The ASGI app (see provider.simulating for what every simulator does)."""

    INDEX = {"simulator": "wasender", "api": "/api"}
    BUCKET_KNOBS = {"rate_per_minute", "burst"}
    BY_KIND = "webhooks_by_event"

    config: SimConfig

    def __init__(self, config: SimConfig | None = None, *, phones_sample=None):
        super().__init__(config or SimConfig(), phones_sample=phones_sample)

    def api_routes(self) -> list[tuple[str, str, Callable[..., Any]]]:
        return [
            ("POST", r"/api/send-message", self.send_message),
            ("POST", r"/api/upload", self.upload),
            ("GET", r"/api/messages/(?P<msg_id>\d+)/info", self.message_info),
            ("GET", r"/api/on-whatsapp/(?P<phone>[^/]+)", self.on_whatsapp),
            ("GET", r"/api/status", self.status),
            ("POST", r"/api/decrypt-media", self.decrypt_media),
            ("GET", r"/media/(?P<media_id>[\w-]+)", self.media_get),
        ]

    def reset(self) -> None:
        super().reset()
        self.wa_media: dict[str, tuple[bytes, str]] = {}  # encrypted URL -> what it decrypts to
        self.next_msg_id = 100000

    def new_stats(self) -> dict:
        return {**super().new_stats(), "responses_429": 0}

    def bucket_new(self) -> TokenBucket:
        return TokenBucket(self.config.rate_per_minute, self.config.burst)

    # --- answers --------------------------------------------------------------------------------

    def is_api(self, path: str) -> bool:
        return path.startswith("/api/")

    def not_found(self) -> tuple:
        return reply(404, {"success": False, "message": "Not Found"})

    def too_large(self) -> tuple:
        return reply(413, {"success": False, "message": "Payload too large"})

    def crashed(self) -> tuple:
        return reply(500, {"success": False, "message": "Server Error"})

    def auth_check(self, request: Request) -> tuple | None:
        auth = request.headers.get("authorization", "")
        if not auth.lower().startswith("bearer ") or not auth[7:].strip():
            return reply(401, {"success": False, "message": "API key is required"})
        if not secrets.compare_digest(auth[7:].strip(), self.config.api_key):
            return reply(401, {"success": False, "message": "Invalid API key"})
        return None

    def timeout_answer(self) -> tuple:
        return reply(504, {"success": False, "message": "Gateway Timeout"})

    def fault_5xx_answer(self) -> tuple:
        status = self.rng.choice([500, 502, 503])
        if status == 502:  # what a proxy in front of the API answers: not JSON
            return reply(
                502,
                "<html><body><h1>502 Bad Gateway</h1></body></html>",
                {"content-type": "text/html"},
            )
        return reply(status, {"success": False, "message": "Server Error"})

    def api_headers(self) -> dict:
        """WaSender's rate limit, on every API answer."""
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
        return await self.send_answer(message)

    def accepted_answer(self, message: dict, *, with_id: bool) -> tuple:
        data = {"msgId": message["msgId"], "jid": message["to"], "status": "in_progress"}
        if not with_id:
            data.pop("msgId")
        return reply(200, {"success": True, "data": data})

    def accepted_5xx_answer(self) -> tuple:
        return reply(self.rng.choice([500, 502, 503]), {"success": False, "message": "Error"})

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
        return await self.webhook_push(self.envelope(event, data), event)

    def webhook_post(self, body: dict) -> dict:
        return {"json": body, "headers": {"X-Webhook-Signature": self.config.webhook_secret}}

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

    async def demo_write(self, phone: str, name: str | None) -> None:
        event = self.rng.choice(["messages.received", "messages.upsert"])
        message = self.inbound_message(phone, self.rng.choice(DEMO_TEXTS), name)
        await self.inbound_push(message, event)


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
    return embedded(simulator, chatdesk_app=chatdesk_app, simulator_port=simulator_port)
