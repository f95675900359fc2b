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
