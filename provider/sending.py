"""What the send pipeline asks of any provider, and what it hears back: provider-neutral.

Each provider's client has `send(SendRequest) -> SendResult` and `upload(...) -> str` (a
reference its own `send` understands: WaSender's public URL, Meta's media id), and raises
provider.errors.ProviderError. The pipeline fills a SendRequest from an outbox row and records
the SendResult; it never sees a provider's JSON.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Quote:
    """The message a reply quotes, by whichever id its provider quotes by."""

    provider_id: str = ""  # WaSender's msgId of the quoted message
    wa_id: str = ""  # WhatsApp's id (Meta's Cloud API quotes by it)


@dataclass(frozen=True)
class TemplateSend:
    """An approved message template (Meta's Cloud API, outside the 24-hour window)."""

    name: str
    language: str
    body_params: tuple[str, ...] = ()
    header_kind: str = ""  # image / video / document, when the template has a media header
    header_ref: str = ""  # its link or media id


@dataclass(frozen=True)
class SendRequest:
    to: str  # E.164
    text: str = ""  # the text, or a media caption
    media_kind: str = ""  # image / video / audio / document / sticker; "" for text
    media_ref: str = ""  # a public URL, or a media id the same provider handed out
    file_name: str = ""
    quote: Quote | None = None
    template: TemplateSend | None = None


@dataclass(frozen=True)
class SendResult:
    provider_id: str  # what the provider calls the send (WaSender's msgId, Meta's wamid)
    wa_id: str = ""  # WhatsApp's id, when the answer gives it (Meta's does)
    status: str = ""
