"""The single HTTP seam to WaSender (https://wasenderapi.com/api). Every call has a timeout and
raises ProviderError, whose `permanent` flag says whether retrying could ever help.

INTERFACE STUB: the WaSender issue implements this module; callers code against these names.
"""

from dataclasses import dataclass


class ProviderError(Exception):
    def __init__(self, message: str, *, permanent: bool, status: int | None = None,
                 retry_after: float | None = None, reason: str = ""):
        super().__init__(message)
        self.permanent = permanent
        self.status = status
        self.retry_after = retry_after
        # A short Spanish sentence a person can read, stored as the message's failure reason.
        self.reason = reason or message


@dataclass(frozen=True)
class SendResult:
    msg_id: int
    status: str


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


class WaSenderClient:
    """One instance per process (see `client()`); httpx keeps the connections alive.

    To be implemented by the WaSender issue with exactly these signatures:

    send_message(*, to, text="", image_url=None, video_url=None, audio_url=None,
                 document_url=None, file_name=None, reply_to=None) -> SendResult
    upload(*, content: bytes, content_type: str) -> str            # a public URL, 24 h
    message_info(msg_id: int) -> MessageInfo
    on_whatsapp(phone: str) -> bool
    session_status() -> str                                         # lower case
    decrypt_media(message: dict) -> str                             # publicUrl, 1 h
    download(url: str, *, max_bytes: int) -> tuple[bytes, str]      # (content, mime)
    last_rate_limit: RateLimitInfo | None
    """


def client() -> WaSenderClient:
    """The process-wide client configured from settings (WASENDER_BASE_URL, WASENDER_API_KEY
    or the simulator's key, WASENDER_TIMEOUT)."""
    raise NotImplementedError
