"""The single HTTP seam to Meta's WhatsApp Cloud API (https://graph.facebook.com/<version>). Every
call has a timeout and raises ProviderError with the same meaning as WaSender's client:
`permanent` (retrying cannot help), `ambiguous` (the request may have been carried out), and
here also Meta's `code` and `per_recipient` (a limit on one customer, not on the number).

Ambiguous: the request left and no clear answer came back (a read timeout, a cut connection, a
5xx, an answer that is not JSON, a 200 without the wamid). The Cloud API has no idempotency key:
such a send is settled by its status webhooks, never by sending again.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from provider.cloudapi import codes
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

GRAPH_URL = "https://graph.facebook.com"
GRAPH_VERSION = "v21.0"
# Media download URLs Meta hands out live on these hosts (lookaside.fbsbx.com today).
MEDIA_DOMAINS = ("fbsbx.com", "facebook.com", "whatsapp.net", "fbcdn.net")
MEDIA_KINDS = ("image", "video", "audio", "document", "sticker")
NO_CAPTION = ("audio", "sticker")
TEMPLATE_PAGES_MAX = 20
WINDOW = timedelta(hours=24)  # the customer-service window
PEER = Peer(
    "Meta",
    unreachable=gettext_lazy("No se pudo conectar con Meta."),
    timed_out=gettext_lazy("Meta no respondió a tiempo."),
    cut=gettext_lazy("Se cortó la conexión con Meta antes de su respuesta."),
)


@dataclass(frozen=True)
class Template:
    """A message template as Meta lists it; `components` as given (header, body, buttons)."""

    template_id: str
    name: str
    language: str
    status: str  # APPROVED / PENDING / REJECTED / PAUSED / DISABLED ...
    category: str  # MARKETING / UTILITY / AUTHENTICATION
    components: tuple[dict, ...]

    def body_params_count(self) -> int:
        """How many {{n}} variables its body has."""
        body = next((c for c in self.components if c.get("type", "").upper() == "BODY"), {})
        text = str(body.get("text") or "")
        return len({part.split("}}", 1)[0] for part in text.split("{{")[1:]})

    def header_format(self) -> str:
        """ "image" / "video" / "document" / "text" / "" (no header)."""
        header = next((c for c in self.components if c.get("type", "").upper() == "HEADER"), {})
        return str(header.get("format") or "").lower()


def error_for(response: httpx.Response, body) -> ProviderError | None:
    """Map an answer to a ProviderError, or None when it is a success."""
    status = response.status_code
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        error = None
    if status < 400 and error is None:
        if isinstance(body, dict):
            return None
        return ProviderError(
            f"Meta HTTP {status}: not JSON: {response.text[:200]!r}",
            permanent=False,
            ambiguous=True,
            status=status,
            reason=_("Meta respondió algo que no es JSON."),
        )
    code = str(error.get("code") or "") if error else ""
    data = error.get("error_data") if error else None
    detail = str(data.get("details") or "") if isinstance(data, dict) else ""
    detail = detail or str((error or {}).get("message") or "")
    message = f"Meta HTTP {status} error {code or '-'}: {detail or response.text[:200]}"
    if status >= 500:
        # Meta may have taken the message before failing: never resend blindly.
        return ProviderError(
            message,
            permanent=False,
            ambiguous=True,
            status=status,
            code=code,
            reason=_("Meta tuvo un error temporal (HTTP %(status)s).") % {"status": status},
        )
    if not code:
        if status == 429:
            return ProviderError(
                message,
                permanent=False,
                status=status,
                retry_after=codes.RETRY_AFTER[codes.RATE_LIMIT],
                reason=codes.meaning(codes.RATE_LIMIT).reason,
            )
        if status in (401, 403):
            code = codes.TOKEN_EXPIRED
        else:
            return ProviderError(
                message,
                permanent=True,
                status=status,
                reason=_("Meta rechazó la petición (HTTP %(status)s).") % {"status": status},
            )
    meaning = codes.meaning(code, detail)
    return ProviderError(
        message,
        permanent=meaning.permanent,
        status=status,
        retry_after=meaning.retry_after,
        reason=meaning.reason,
        code=code,
        per_recipient=meaning.per_recipient,
    )


def _media_object(kind: str, ref: str) -> dict:
    """A link when it is a URL, else a media id Meta handed out."""
    return {"link": ref} if ref.startswith(("http://", "https://")) else {"id": ref}


def message_payload(request: SendRequest) -> dict:
    """The neutral request as Meta's /messages takes it."""
    payload: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "".join(c for c in request.to if c.isdigit()),
    }
    quote = request.quote.wa_id or request.quote.provider_id if request.quote else ""
    if quote:
        payload["context"] = {"message_id": quote}
    if request.template is not None:
        template = request.template
        components = []
        if template.header_kind and template.header_ref:
            kind = template.header_kind
            media = _media_object(kind, template.header_ref)
            if kind == "document" and request.file_name:
                media["filename"] = request.file_name
            components.append({"type": "header", "parameters": [{"type": kind, kind: media}]})
        if template.body_params:
            params = [{"type": "text", "text": str(p)} for p in template.body_params]
            components.append({"type": "body", "parameters": params})
        payload["type"] = "template"
        payload["template"] = {
            "name": template.name,
            "language": {"code": template.language},
            **({"components": components} if components else {}),
        }
        return payload
    if request.media_kind and request.media_ref:
        kind = request.media_kind
        if kind not in MEDIA_KINDS:
            raise ProviderError(
                f"Unknown media kind {kind!r}",
                permanent=True,
                reason=_("WhatsApp no admite este tipo de mensaje."),
            )
        media = _media_object(kind, request.media_ref)
        if request.text and kind not in NO_CAPTION:
            media["caption"] = request.text
        if kind == "document" and request.file_name:
            media["filename"] = request.file_name
        payload["type"] = kind
        payload[kind] = media
        return payload
    payload["type"] = "text"
    payload["text"] = {"body": request.text, "preview_url": "://" in request.text}
    return payload


class CloudApiClient:
    """One WhatsApp number (its phone_number_id) with its access token. httpx keeps the
    connections alive and its Client is safe to share between worker threads."""

    def __init__(
        self,
        *,
        phone_number_id: str,
        access_token: str,
        base_url: str = GRAPH_URL,
        version: str = GRAPH_VERSION,
        timeout: float = 15.0,
        connect_timeout: float = 5.0,
        transport: httpx.BaseTransport | None = None,
    ):
        self.base_url = base_url.rstrip("/")
        self.version = version.strip("/")
        self.phone_number_id = str(phone_number_id)
        self.access_token = access_token
        # The token goes on each call, never as a client default: it must reach no other host.
        self.http = httpx.Client(
            timeout=httpx.Timeout(timeout, connect=min(connect_timeout, timeout)),
            transport=transport,
            follow_redirects=False,
        )
        self.allowed_netloc = urlsplit(self.base_url).netloc.lower()

    def _auth(self) -> dict:
        return {"Authorization": f"Bearer {self.access_token}"}

    def _request(self, method: str, path: str, **kwargs) -> dict:
        url = f"{self.base_url}/{self.version}/{path.lstrip('/')}"
        headers = {**self._auth(), "Accept": "application/json", **kwargs.pop("headers", {})}
        response = request_send(self.http, method, url, peer=PEER, headers=headers, **kwargs)
        body = answer_json(response)
        if error := error_for(response, body):
            raise error
        return body

    # --- sending ---------------------------------------------------------------------------------

    def send(self, request: SendRequest) -> SendResult:
        payload = message_payload(request)
        body = self._request("POST", f"{self.phone_number_id}/messages", json=payload)
        messages = body.get("messages")
        first = messages[0] if isinstance(messages, list) and messages else None
        wamid = first.get("id") if isinstance(first, dict) else None
        if not isinstance(wamid, str) or not wamid:
            raise ProviderError(
                f"Meta answered without a message id: {body!r}",
                permanent=False,
                ambiguous=True,
                reason=_("Meta no devolvió el identificador del mensaje."),
            )
        status = first.get("message_status") if isinstance(first, dict) else None
        return SendResult(provider_id=wamid, wa_id=wamid, status=str(status or "accepted"))

    # --- media -----------------------------------------------------------------------------------

    def media_upload(self, *, content: bytes, content_type: str, file_name: str = "") -> str:
        """Uploads a file for this number; the media id it answers `send` takes as media_ref."""
        mime = content_type.split(";")[0].strip().lower() or "application/octet-stream"
        body = self._request(
            "POST",
            f"{self.phone_number_id}/media",
            data={"messaging_product": "whatsapp", "type": mime},
            files={"file": (file_name or "file", content, mime)},
        )
        media_id = body.get("id")
        if not isinstance(media_id, str | int) or not str(media_id):
            raise ProviderError(
                f"Meta answered the upload without an id: {body!r}",
                permanent=False,
                reason=_("Meta no devolvió el identificador del archivo."),
            )
        return str(media_id)

    def upload(self, *, content: bytes, content_type: str) -> str:
        """The provider-neutral name (see provider/sending.py)."""
        return self.media_upload(content=content, content_type=content_type)

    def host_allowed(self, url: str) -> bool:
        """Meta's media hosts over https, or the API's own host (the simulator's)."""
        return url_allowed(url, netlocs={self.allowed_netloc}, domains=MEDIA_DOMAINS)

    def media_fetch(self, media_id: str, *, max_bytes: int) -> tuple[bytes, str]:
        """A media id from a webhook to (content, mime type): its short-lived URL first, then
        the bytes (with the token, which Meta's media host requires), at most max_bytes."""
        if not media_id or not str(media_id).isalnum():
            raise ProviderError(
                f"Bad media id {media_id!r}",
                permanent=True,
                reason=_("El identificador del archivo no es válido."),
            )
        info = self._request("GET", str(media_id))
        url = info.get("url")
        if not isinstance(url, str) or not self.host_allowed(url):
            raise ProviderError(
                f"Refusing media URL {url!r}",
                permanent=True,
                reason=_("El archivo no viene de Meta."),
            )
        return download_bounded(
            self.http,
            url,
            max_bytes=max_bytes,
            what=f"media {media_id}",
            label="Media download",
            headers=self._auth(),
            size_given=int_or_none(info.get("file_size")),
            mime_given=str(info.get("mime_type") or ""),
        )

    # --- templates -------------------------------------------------------------------------------

    def templates_list(self, waba_id: str) -> list[Template]:
        """Every template of the WhatsApp Business Account, whatever its status."""
        found: list[Template] = []
        after = None
        for _page in range(TEMPLATE_PAGES_MAX):
            params = {"limit": 100, **({"after": after} if after else {})}
            body = self._request("GET", f"{waba_id}/message_templates", params=params)
            data = _list(body.get("data"))
            found.extend(t for item in data if (t := _template(item)) is not None)
            paging = _dict(body.get("paging"))
            cursors = _dict(paging.get("cursors"))
            after = cursors.get("after")
            if not data or not paging.get("next") or not after:
                break
        return found


def _dict(value) -> dict:
    return value if isinstance(value, dict) else {}


def _list(value) -> list:
    return value if isinstance(value, list) else []


def _template(item) -> Template | None:
    if not isinstance(item, dict) or not isinstance(item.get("name"), str):
        return None
    components = _list(item.get("components"))
    return Template(
        template_id=str(item.get("id") or ""),
        name=item["name"],
        language=str(item.get("language") or ""),
        status=str(item.get("status") or "").upper(),
        category=str(item.get("category") or "").upper(),
        components=tuple(c for c in components if isinstance(c, dict)),
    )


def window_closes_at(last_inbound_at: datetime | None) -> datetime | None:
    """Until when free-form messages may go out: 24 hours after the customer last wrote (None
    when they never did: only a template can open the conversation)."""
    return last_inbound_at + WINDOW if last_inbound_at is not None else None
