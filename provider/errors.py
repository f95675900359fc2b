"""The one error every provider's client raises, with what the send pipeline decides on."""


class ProviderError(Exception):
    def __init__(
        self,
        message: str,
        *,
        permanent: bool,
        status: int | None = None,
        retry_after: float | None = None,
        reason: str = "",
        ambiguous: bool = False,
        code: str = "",
        per_recipient: bool = False,
    ):
        super().__init__(message)
        self.permanent = permanent
        # The provider may have done it anyway (see the module's docstring).
        self.ambiguous = ambiguous
        self.status = status
        self.retry_after = retry_after
        # A short Spanish sentence a person can read, stored as the message's failure reason.
        self.reason = reason or message
        # The provider's own error code ("131047"), "" when it gave none (WaSender never does).
        self.code = code
        # The limit concerns this recipient only (Meta's pair rate, its marketing cap): wait
        # before writing to them again, but keep sending to everyone else from the number.
        self.per_recipient = per_recipient
