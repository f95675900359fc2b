"""What a provider tells us, whichever provider it is: WhatsApp messages (a customer's, or the
echo of our own send), status updates, the report that a send of ours was accepted, the
session's state. Each provider's payload module (provider/wasender/payloads.py, ...) parses
its webhook bodies into these; the inbox's intake applies them, knowing no provider's shapes.
"""

from dataclasses import dataclass
from datetime import datetime


class ParseError(ValueError):
    """A body we cannot read. The message is Spanish: it is shown on the stored event."""


@dataclass(frozen=True)
class Media:
    kind: str
    mimetype: str
    caption: str
    file_name: str
    file_length: int | None
    url: str
    media_id: str = ""  # Meta's media id: fetched with the access token (Cloud API)
    sha256: str = ""


@dataclass(frozen=True)
class WaMessage:
    wa_id: str
    from_me: bool
    phone: str  # digits of the other party's number, "" when unknown
    lid: str  # "<id>@lid", "" when unknown
    is_group: bool
    kind: str
    body: str
    media: Media | None
    push_name: str
    at: datetime | None
    source: dict  # {"key", "message"} as received: what decrypt-media wants
    skip: str = ""  # why this message is not one to store ("" when it is)
    reply_to: str = ""  # WhatsApp id of the message it quotes or reacts to (Cloud API)


@dataclass(frozen=True)
class MessagesEvent:
    messages: tuple[WaMessage, ...]


@dataclass(frozen=True)
class SentEvent:
    msg_id: int
    wa_id: str
    phone: str = ""  # digits of the recipient's number, "" when unknown


@dataclass(frozen=True)
class StatusUpdate:
    wa_id: str
    from_me: bool
    status: str  # error / pending / sent / delivered / read / played
    # What the provider said about a failure (Cloud API): its code and a Spanish sentence.
    error_code: str = ""
    error_reason: str = ""
    at: datetime | None = None
    recipient: str = ""  # digits of the recipient, "" when unknown


@dataclass(frozen=True)
class StatusEvent:
    updates: tuple[StatusUpdate, ...]


@dataclass(frozen=True)
class SessionEvent:
    status: str


@dataclass(frozen=True)
class TemplateStatusEvent:
    """Meta reviewed a message template: approved, rejected, paused, disabled..."""

    waba_id: str
    template_id: str
    name: str
    language: str
    status: str  # lower case, as Meta names it: approved / rejected / paused / ...
    reason: str = ""  # Meta's reason ("" or "NONE" when there is none), as given


@dataclass(frozen=True)
class IgnoredEvent:
    reason: str


@dataclass(frozen=True)
class Envelope:
    event: str
    session: str
    at: datetime | None
    content: (
        MessagesEvent | SentEvent | StatusEvent | SessionEvent | TemplateStatusEvent | IgnoredEvent
    )
    provider: str = "wasender"  # wasender / cloudapi
    # The WhatsApp number the event belongs to, for routing it to its channel: Cloud API's
    # metadata.phone_number_id ("" for WaSender, whose session is named in `session`).
    account: str = ""
