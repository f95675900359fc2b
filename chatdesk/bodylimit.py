"""Request bodies are capped before they are buffered, by path.

Daphne (Twisted underneath) receives a whole request body before the application is called
(spooled to a temporary file), then hands all of it to the application's queue at once: in
memory. A check in a view, or even in an ASGI middleware, runs after the harm. So the caps are
enforced twice, from one table:

- in daphne's request object (`GuardedRequest`, installed by `chatdesk.asgi`), as the bytes
  arrive: a declared length over the cap, a refused header (a webhook without its secret) or a
  body that does not arrive in time is answered at once and the connection closed, having read
  at most the cap;
- in `BodyLimitMiddleware`, the outermost ASGI layer, for servers that stream the body to the
  application (uvicorn, hypercorn) and for requests that reach the application another way.

The rules, first match wins (`rules()`): the WaSender webhook takes WASENDER_WEBHOOK_MAX_BYTES
and only with its secret in X-Webhook-Signature; a reply with an attachment takes the largest
attachment cap plus a margin and the customer import its CSV cap plus a margin, but only for a
logged-in session (checked on the headers, before the body is read); everything else
REQUEST_MAX_BYTES. A new webhook (Meta's `/webhooks/meta/`) is one more `Rule` with its own
`refuse` (X-Hub-Signature-256 must be there; its HMAC covers the body, so the view checks it).
"""

import asyncio
import hmac
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from importlib import import_module
from io import BytesIO
from urllib.parse import unquote

from asgiref.sync import sync_to_async
from daphne.http_protocol import WebRequest
from django.conf import settings
from django.db import close_old_connections
from django.http import parse_cookie
from django.utils import translation
from django.utils.translation import gettext

MB = 1024 * 1024
# Room for the multipart envelope and the text beside the file.
UPLOAD_MARGIN = MB

Headers = dict[bytes, bytes]


@dataclass(frozen=True)
class Refusal:
    status: int
    code: str

    def body(self) -> bytes:
        with translation.override(settings.LANGUAGE_CODE):
            message = {
                "unauthorized": gettext("Falta la firma del webhook o no es válida."),
                "too_large": gettext("La petición es demasiado grande."),
                "timeout": gettext("La petición tardó demasiado en llegar."),
                "bad_length": gettext("La longitud declarada de la petición no es válida."),
            }[self.code]
        return json.dumps({"ok": False, "error": self.code, "message": message}).encode()

    def head(self, length: int) -> list[tuple[bytes, bytes]]:
        return [
            (b"content-type", b"application/json"),
            (b"content-length", str(length).encode()),
            (b"connection", b"close"),
        ]


UNAUTHORIZED = Refusal(401, "unauthorized")
TOO_LARGE = Refusal(413, "too_large")
TIMEOUT = Refusal(408, "timeout")
BAD_LENGTH = Refusal(400, "bad_length")


@dataclass(frozen=True)
class Rule:
    name: str
    path: str  # a regular expression, matched against the whole path
    cap: int  # bytes, for anyone
    timeout: float  # seconds from the request line to the last byte of the body
    login_cap: int = 0  # a larger cap for a logged-in session
    refuse: Callable[[Headers], Refusal | None] | None = None  # on the headers alone

    def refusal(self, headers: Headers) -> Refusal | None:
        return self.refuse(headers) if self.refuse else None


def wasender_signature(headers: Headers) -> Refusal | None:
    """WaSender sends its secret itself in X-Webhook-Signature: compared in constant time."""
    expected = settings.WASENDER_WEBHOOK_SECRET.encode()
    given = headers.get(b"x-webhook-signature", b"")
    return None if expected and hmac.compare_digest(given, expected) else UNAUTHORIZED


def meta_signature_header(headers: Headers) -> Refusal | None:
    """Meta signs the body (X-Hub-Signature-256: sha256=<hex HMAC>): only its form can be
    checked before the body arrives; the view checks the HMAC itself. A request without a
    body (Meta's GET handshake) is the view's to answer."""
    if b"content-length" not in headers and b"transfer-encoding" not in headers:
        return None
    given = headers.get(b"x-hub-signature-256", b"")
    return None if re.fullmatch(rb"sha256=[0-9a-f]{64}", given) else UNAUTHORIZED


def rules() -> list[Rule]:
    """Built from the settings on each call (a handful of objects), so tests can change them."""
    small = settings.REQUEST_MAX_BYTES
    timeout = settings.REQUEST_BODY_TIMEOUT
    upload_timeout = settings.REQUEST_UPLOAD_TIMEOUT
    return [
        Rule(
            "wasender",
            r"/webhooks/wasender/",
            settings.WASENDER_WEBHOOK_MAX_BYTES,
            timeout,
            refuse=wasender_signature,
        ),
        Rule(
            "meta",
            r"/webhooks/meta/",
            settings.WASENDER_WEBHOOK_MAX_BYTES,
            timeout,
            refuse=meta_signature_header,
        ),
        Rule(
            "reply",
            r"/inbox/c/\d+/reply/",
            small,
            upload_timeout,
            login_cap=max(settings.ATTACHMENT_MAX_BYTES.values()) + UPLOAD_MARGIN,
        ),
        Rule(
            "import",
            r"/customers/import/",
            small,
            upload_timeout,
            login_cap=settings.CUSTOMER_IMPORT_MAX_BYTES + UPLOAD_MARGIN,
        ),
    ]


def rule_for(path: str) -> Rule:
    for rule in rules():
        if re.fullmatch(rule.path, path):
            return rule
    return Rule("default", "", settings.REQUEST_MAX_BYTES, settings.REQUEST_BODY_TIMEOUT)


def declared_length(headers: Headers) -> int | None:
    """Content-Length as a number; None without one (chunked); -1 when it is not a number."""
    raw = headers.get(b"content-length")
    if raw is None:
        return None
    return int(raw) if raw.isdigit() and len(raw) < 19 else -1


def session_logged_in(cookie_header: bytes) -> bool:
    """Whether the session cookie belongs to a logged-in user (one read of the session store).
    Runs in a thread: it may query the database."""
    try:
        key = parse_cookie(cookie_header.decode("latin-1")).get(settings.SESSION_COOKIE_NAME)
        if not key:
            return False
        store = import_module(settings.SESSION_ENGINE).SessionStore(key)
        return store.get("_auth_user_id") is not None
    except Exception:  # a broken cookie or store is simply no login
        return False
    finally:
        close_old_connections()


def needs_login_check(rule: Rule, length: int | None, headers: Headers) -> bool:
    return bool(
        rule.login_cap
        and (length is None or length > rule.cap)
        and settings.SESSION_COOKIE_NAME.encode() in headers.get(b"cookie", b"")
    )


# --- the ASGI layer --------------------------------------------------------------------------


class BodyLimitMiddleware:
    """The outermost ASGI application: HTTP bodies are counted as they are received and the
    request refused (413, 408, 401) before the application has buffered more than the cap."""

    def __init__(self, app):
        self.app = app

    def body_rule(self, path: str, port: int | None = None) -> Rule | None:
        """What GuardedRequest enforces in daphne for this application (None: nothing)."""
        return rule_for(path)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        rule = rule_for(scope["path"])
        headers = dict(scope.get("headers") or [])
        length = declared_length(headers)
        cap = rule.cap
        refusal = rule.refusal(headers)
        if (
            refusal is None
            and needs_login_check(rule, length, headers)
            and await sync_to_async(session_logged_in, thread_sensitive=False)(headers[b"cookie"])
        ):
            cap = rule.login_cap
        if refusal is None and length is not None:
            refusal = BAD_LENGTH if length < 0 else TOO_LARGE if length > cap else None
        if refusal is not None:
            return await respond(send, refusal)
        state = {"received": 0, "complete": False, "refusal": None, "started": False}
        deadline = time.monotonic() + rule.timeout

        async def limited_receive():
            if state["refusal"] is not None:
                return {"type": "http.disconnect"}
            if state["complete"]:  # the body is in: no timeout while the view runs
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                state["refusal"] = TIMEOUT
                return {"type": "http.disconnect"}
            if message["type"] == "http.request":
                state["received"] += len(message.get("body", b""))
                state["complete"] = not message.get("more_body", False)
                if state["received"] > cap:
                    state["refusal"] = TOO_LARGE
                    return {"type": "http.disconnect"}
            return message

        async def tracked_send(message):
            if message["type"] == "http.response.start":
                state["started"] = True
            await send(message)

        await self.app(scope, limited_receive, tracked_send)
        if state["refusal"] is not None and not state["started"]:
            await respond(send, state["refusal"])


async def respond(send, refusal: Refusal) -> None:
    body = refusal.body()
    await send(
        {
            "type": "http.response.start",
            "status": refusal.status,
            "headers": refusal.head(len(body)),
        }
    )
    await send({"type": "http.response.body", "body": body})


# --- in daphne ---------------------------------------------------------------------------------


class GuardedRequest(WebRequest):
    """Daphne's request, refusing as the bytes arrive what the served application's
    `body_rule` refuses. Twisted calls gotLength once the headers are in, handleContentChunk
    for each piece of body, and process once the body is complete; daphne's timeout checker
    calls check_timeouts every two seconds for every open request."""

    _cap: int | None = None
    _received = 0
    _refused = False
    _processing = False

    def __init__(self, *args, **kwargs):
        self._deadline = time.monotonic() + settings.REQUEST_BODY_TIMEOUT  # the headers
        super().__init__(*args, **kwargs)

    def gotLength(self, length):
        super().gotLength(length)
        policy = getattr(self.server.application, "body_rule", None)
        rule = policy(self._path(), self._port()) if policy else None
        if rule is None:
            return
        self._deadline = time.monotonic() + rule.timeout
        self._cap = rule.cap
        headers = {
            name.lower(): values[0] for name, values in self.requestHeaders.getAllRawHeaders()
        }
        if (refusal := rule.refusal(headers)) is not None:
            return self._refuse(refusal)
        if length is not None and length > max(rule.cap, rule.login_cap):
            return self._refuse(TOO_LARGE)
        if needs_login_check(rule, length, headers):
            self._login_check(rule, length, headers[b"cookie"])
        elif length is not None and length > rule.cap:
            self._refuse(TOO_LARGE)

    def _login_check(self, rule: Rule, length: int | None, cookie: bytes) -> None:
        """Reading stops while the session store is asked (in a thread) whether this is a
        logged-in user, who may send up to the rule's login cap."""
        from twisted.internet.threads import deferToThread

        transport = self.channel.transport
        transport.pauseProducing()

        def decided(logged_in: bool):
            if self._refused or self.channel is None:
                return
            if logged_in:
                self._cap = rule.login_cap
            elif length is not None and length > rule.cap:
                return self._refuse(TOO_LARGE)
            transport.resumeProducing()

        deferToThread(session_logged_in, cookie).addCallback(decided)

    def handleContentChunk(self, data):
        if self._refused:
            return
        self._received += len(data)
        if self._cap is not None and self._received > self._cap:
            return self._refuse(TOO_LARGE)
        super().handleContentChunk(data)

    def requestReceived(self, command, path, version):
        if self._refused:  # the body completed in the same read as the refusal: ignore it
            return None
        self._processing = True
        return super().requestReceived(command, path, version)

    def check_timeouts(self):
        if not self._processing:
            if not self._refused and time.monotonic() > self._deadline:
                self._refuse(TIMEOUT)
            return
        super().check_timeouts()

    def _path(self) -> str:
        raw = getattr(self.channel, "_path", b"") or b""
        return unquote(raw.split(b"?", 1)[0].decode("ascii", "replace"))

    def _port(self) -> int | None:
        host = self.channel.transport.getHost() if self.channel else None
        return getattr(host, "port", None)

    def _refuse(self, refusal: Refusal) -> None:
        """Answer and close: what the client still sends is never read (the kernel resets the
        connection), and nothing of it reaches the application."""
        self._refused = True
        self.requestHeaders.removeHeader(b"expect")  # no "100 Continue" after our answer
        content, self.content = self.content, BytesIO()
        if content is not None:
            content.close()
        body = refusal.body()
        reason = HTTPStatus(refusal.status).phrase.encode()
        head = b"".join(name + b": " + value + b"\r\n" for name, value in refusal.head(len(body)))
        transport = self.channel.transport if self.channel else None
        if transport is not None:
            transport.write(b"HTTP/1.1 %d %s\r\n%s\r\n%s" % (refusal.status, reason, head, body))
            transport.loseConnection()


def daphne_guard_install() -> None:
    """Make daphne build GuardedRequest for every HTTP request of this process (its factory
    looks the class up in daphne.http_protocol when each connection is made)."""
    from daphne import http_protocol

    http_protocol.WebRequest = GuardedRequest
