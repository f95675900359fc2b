"""The single HTTP seam to WaSender (https://wasenderapi.com/api). Every call has a timeout and
raises ProviderError, whose `permanent` flag says whether retrying could ever help and whose
`ambiguous` flag says whether the request may have been carried out all the same.

Ambiguous means the request left and no clear answer came back: a read timeout, a connection
dropped after the request was written, a 5xx, an answer that is not JSON, a 200 without the
id. WaSender has no idempotency key, so a send that failed ambiguously must never be repeated
blindly (the customer may already have it): the send pipeline waits for evidence instead.
Only errors that prove nothing was done are retried: the connection could not be opened
(refused, DNS, connect timeout, no free connection), a 429, a 4xx answer.

The shapes WaSender answers with vary between its docs and SDKs (see WASENDER.md), so the
parsing here accepts every variant listed there instead of trusting one.
"""

import email.utils
import functools
import re
import time
from dataclasses import dataclass
from pathlib import PurePosixPath
from urllib.parse import quote, urlsplit

import httpx
from django.conf import settings
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from provider.errors import ProviderError
from provider.http import (
    Peer,
    answer_json,
    download_bounded,
    int_or_none,
    request_send,
    url_allowed,
)
from provider.sending import SendRequest, SendResult

STATUS_CODES = {
    "error": 0,
    "pending": 1,
    "sent": 2,
    "server_ack": 2,
    "delivered": 3,
    "delivery_ack": 3,
    "read": 4,
    "played": 5,
}
# WaSender's wording for a number without WhatsApp is undocumented: match the likely phrasings.
NOT_ON_WHATSAPP = re.compile(
    r"not (registered |found |exists? |available )?on whatsapp|"
    r"not a whatsapp|no whatsapp|does ?n[o']t (have|exist).*whatsapp",
    re.I,
)
PROVIDER_DOMAINS = ("wasenderapi.com", "whatsapp.net")
# WaSender takes every kind of media as a URL under its own key (a sticker as an image).
MEDIA_ARGS = {
    "image": "image_url",
    "sticker": "image_url",
    "video": "video_url",
    "audio": "audio_url",
    "document": "document_url",
}
PEER = Peer(
    "WaSender",
    unreachable=gettext_lazy("No se pudo conectar con WaSender."),
    timed_out=gettext_lazy("WaSender no respondió a tiempo."),
    cut=gettext_lazy("Se cortó la conexión con WaSender antes de su respuesta."),
)


@dataclass(frozen=True)
class MessageInfo:
    msg_id: int
    wa_id: str  # WhatsApp key.id
    status: int  # 0 error, 1 pending, 2 sent, 3 delivered, 4 read, 5 played


@dataclass(frozen=True)
class RateLimitInfo:
    limit: int | None
    remaining: int | None
    reset_at: float | None  # Unix time, whichever form the header used


def _dict(value) -> dict:
    return value if isinstance(value, dict) else {}


def rate_limit_parse(headers: httpx.Headers, now: float | None = None) -> RateLimitInfo | None:
    """Docs disagree whether Reset is a Unix time or seconds-until: small values are the latter."""
    limit, remaining = headers.get("x-ratelimit-limit"), headers.get("x-ratelimit-remaining")
    reset = headers.get("x-ratelimit-reset")
    if limit is None and remaining is None and reset is None:
        return None
    reset_at: float | None = int_or_none(reset)
    if reset_at is not None and reset_at < 1_000_000_000:
        reset_at = (now or time.time()) + reset_at
    return RateLimitInfo(
        limit=int_or_none(limit),
        remaining=int_or_none(remaining),
        reset_at=float(reset_at) if reset_at is not None else None,
    )


def retry_after_parse(body: dict | None, headers: httpx.Headers) -> float | None:
    value = (body or {}).get("retry_after")
    if value is None:
        value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except (TypeError, ValueError):
        pass
    try:  # Retry-After may also be an HTTP date
        return max(email.utils.parsedate_to_datetime(value).timestamp() - time.time(), 0.0)
    except (TypeError, ValueError):
        return None


def _detail(body: dict) -> str:
    """The validation errors as one line ("The to field is required. ..."), else the message."""
    errors = body.get("errors")
    lines = []
    if isinstance(errors, dict):
        for value in errors.values():
            lines.extend(value if isinstance(value, list) else [value])
    elif isinstance(errors, list):
        lines = errors
    return " ".join(str(line) for line in lines) or str(body.get("message") or "")


def error_for(response: httpx.Response, body: dict | None) -> ProviderError | None:
    """Map a response to a ProviderError, or None when it is a success."""
    status = response.status_code
    message = f"WaSender HTTP {status}: {(body or {}).get('message') or response.text[:200]}"
    if status == 429:
        retry_after = retry_after_parse(body, response.headers)
        return ProviderError(
            message,
            permanent=False,
            status=status,
            retry_after=retry_after,
            reason=_("WaSender limitó los envíos; se reintentará."),
        )
    if status in (401, 403):
        return ProviderError(
            message, permanent=True, status=status, reason=_("La clave de WaSender no es válida")
        )
    if status >= 500:
        return ProviderError(
            message,
            permanent=False,
            ambiguous=True,
            status=status,
            reason=_("WaSender tuvo un error temporal (HTTP %(status)s).") % {"status": status},
        )
    if body is None:
        if status >= 400:
            return ProviderError(
                message,
                permanent=True,
                status=status,
                reason=_("WaSender rechazó la petición (HTTP %(status)s).") % {"status": status},
            )
        return ProviderError(
            message,
            permanent=False,
            ambiguous=True,
            status=status,
            reason=_("WaSender respondió algo que no es JSON."),
        )
    detail = _detail(body)
    if NOT_ON_WHATSAPP.search(detail) or NOT_ON_WHATSAPP.search(str(body.get("message", ""))):
        return ProviderError(
            message, permanent=True, status=status, reason=_("El número no tiene WhatsApp")
        )
    if status == 404:
        return ProviderError(
            message,
            permanent=True,
            status=status,
            reason=_("WaSender no encontró el recurso pedido."),
        )
    if status >= 400 or body.get("success") is False:
        return ProviderError(
            message,
            permanent=True,
            status=status,
            reason=_("WaSender rechazó el mensaje: %(detail)s") % {"detail": detail},
        )
    return None


class WaSenderClient:
    """One instance per process (see `client()`); httpx keeps the connections alive and its
    Client is safe to share between worker threads."""

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        timeout: float = 15.0,
        extra_hosts: tuple[str, ...] = (),
        transport: httpx.BaseTransport | None = None,
    ):
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        # The key goes on each API call, never as a client default: download() must not hand
        # it to media hosts.
        self.http = httpx.Client(timeout=timeout, transport=transport, follow_redirects=False)
        base = urlsplit(self.base_url)
        self.allowed_netlocs = {base.netloc.lower(), *(h.lower() for h in extra_hosts)}
        self.last_rate_limit: RateLimitInfo | None = None

    def _request(self, method: str, path: str, **kwargs) -> dict:
        headers = {
            "Authorization": f"Bearer {self.api_key}",
            "Accept": "application/json",
            **kwargs.pop("headers", {}),
        }
        response = request_send(
            self.http, method, self.base_url + path, peer=PEER, headers=headers, **kwargs
        )
        self.last_rate_limit = rate_limit_parse(response.headers) or self.last_rate_limit
        body = answer_json(response)
        if body is not None and not isinstance(body, dict):
            body = {"data": body}
        if error := error_for(response, body):
            raise error
        return body

    def send_message(
        self,
        *,
        to: str,
        text: str = "",
        image_url: str | None = None,
        video_url: str | None = None,
        audio_url: str | None = None,
        document_url: str | None = None,
        file_name: str | None = None,
        reply_to: int | None = None,
    ) -> SendResult:
        payload = {
            "to": to,
            "text": text,
            "imageUrl": image_url,
            "videoUrl": video_url,
            "audioUrl": audio_url,
            "documentUrl": document_url,
            "fileName": file_name,
            "replyTo": reply_to,
        }
        payload = {k: v for k, v in payload.items() if v not in (None, "")}
        data = self._request("POST", "/send-message", json=payload).get("data") or {}
        msg_id = int_or_none(data.get("msgId"))
        if msg_id is None:
            # The send may have gone out: not permanent, and the pipeline must not resend blindly.
            raise ProviderError(
                f"WaSender answered without msgId: {data!r}",
                permanent=False,
                ambiguous=True,
                reason=_("WaSender no devolvió el identificador del mensaje."),
            )
        return SendResult(provider_id=str(msg_id), status=str(data.get("status") or "in_progress"))

    def send(self, request: SendRequest) -> SendResult:
        """The neutral request as WaSender's one endpoint takes it: the media as a URL it
        downloads (a sticker goes as an image), the quote by its integer msgId."""
        if request.template is not None:
            raise ProviderError(
                "WaSender sends no Meta templates",
                permanent=True,
                reason=_("WaSender no envía plantillas de Meta."),
            )
        media: dict[str, str | None] = {}
        if request.media_kind and request.media_ref:
            arg = MEDIA_ARGS[request.media_kind]
            media[arg] = request.media_ref
            if arg == "document_url":
                name = request.file_name or PurePosixPath(urlsplit(request.media_ref).path).name
                media["file_name"] = name or None
        quote = request.quote.provider_id if request.quote else ""
        return self.send_message(
            to=request.to,
            text=request.text,
            reply_to=int(quote) if quote.isdigit() else None,
            **media,
        )

    def upload(self, *, content: bytes, content_type: str) -> str:
        body = self._request(
            "POST", "/upload", content=content, headers={"Content-Type": content_type}
        )
        return self._public_url(body)

    def message_info(self, msg_id: int, *, timeout: float | None = None) -> MessageInfo:
        extra = {"timeout": timeout} if timeout else {}
        data = self._request("GET", f"/messages/{int(msg_id)}/info", **extra).get("data") or {}
        key = _dict(data.get("key"))
        status = data.get("status")
        if isinstance(status, str) and not status.isdigit():
            status = STATUS_CODES.get(status.lower(), 1)
        return MessageInfo(
            msg_id=int_or_none(data.get("msgId")) or int(msg_id),
            wa_id=str(key.get("id") or data.get("id") or ""),
            status=code if (code := int_or_none(status)) is not None else 1,
        )

    def on_whatsapp(self, phone: str) -> bool:
        data = self._request("GET", f"/on-whatsapp/{quote(phone, safe='')}").get("data")
        if isinstance(data, dict):
            data = data.get("exists", data.get("onWhatsApp", data.get("onWhatsapp")))
        return bool(data)

    def session_status(self) -> str:
        body = self._request("GET", "/status")
        data = _dict(body.get("data"))
        return str(body.get("status") or data.get("status") or "").lower()

    def decrypt_media(self, message: dict) -> str:
        body = self._request("POST", "/decrypt-media", json={"data": {"messages": message}})
        return self._public_url(body)

    def _public_url(self, body: dict) -> str:
        data = _dict(body.get("data"))
        url = body.get("publicUrl") or data.get("publicUrl") or data.get("url")
        if not url:
            raise ProviderError(
                f"WaSender answered without publicUrl: {body!r}",
                permanent=False,
                reason=_("WaSender no devolvió la dirección del archivo."),
            )
        return str(url)

    def host_allowed(self, url: str) -> bool:
        """Only the provider's own hosts: a crafted webhook must not make us fetch anything else
        (the base URL counts with its port, so a simulator on loopback opens no other port)."""
        return url_allowed(url, netlocs=self.allowed_netlocs, domains=PROVIDER_DOMAINS)

    def download(self, url: str, *, max_bytes: int) -> tuple[bytes, str]:
        if not self.host_allowed(url):
            raise ProviderError(
                f"Refusing to download from {url!r}",
                permanent=True,
                reason=_("El archivo no viene de WaSender ni de WhatsApp."),
            )
        return download_bounded(self.http, url, max_bytes=max_bytes, what=url)


@functools.cache
def client() -> WaSenderClient:
    """The process-wide client configured from settings (WASENDER_BASE_URL, WASENDER_API_KEY
    or the simulator's key, WASENDER_TIMEOUT). `client.cache_clear()` after changing them."""
    key = settings.WASENDER_SIMULATOR_KEY if settings.USE_SIMULATOR else settings.WASENDER_API_KEY
    return WaSenderClient(
        base_url=settings.WASENDER_BASE_URL, api_key=key, timeout=settings.WASENDER_TIMEOUT
    )
