"""Phone numbers are a customer's identity: always stored as E.164."""

import phonenumbers
from django.conf import settings


class InvalidPhone(ValueError):
    pass


def phone_normalize(raw: str, *, region: str | None = None) -> str:
    """'0968196046', '+593 96 819 6046' and '593968196046' all give '+593968196046'.

    WaSender sends bare digits with the country code ('593968196046'), which the default region
    would misread as a national number, so digits that parse as international win.
    """
    text = (raw or "").strip()
    if "@" in text:  # a WhatsApp JID: "593968196046@s.whatsapp.net"
        text = text.split("@", 1)[0].split(":", 1)[0]
    if not text:
        raise InvalidPhone("empty")
    candidates = [text]
    digits = "".join(ch for ch in text if ch.isdigit())
    if not text.startswith(("+", "0")) and digits:
        candidates.insert(0, "+" + digits)
    for candidate in candidates:
        try:
            number = phonenumbers.parse(candidate, region or settings.PHONE_DEFAULT_REGION)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    raise InvalidPhone(raw)


def phone_normalize_reported(raw: str) -> tuple[str, bool]:
    """A number WhatsApp itself reported (a sender exists by definition): (E.164, valid).
    The phone library's metadata lags behind new ranges and some foreign plans, so a number
    it calls invalid is still kept when it is a possible international number, flagged for a
    person to check. InvalidPhone only when it cannot be a phone number at all."""
    try:
        return phone_normalize(raw), True
    except InvalidPhone:
        pass
    text = (raw or "").strip().split("@", 1)[0].split(":", 1)[0]
    digits = "".join(ch for ch in text if ch.isdigit())
    try:
        number = phonenumbers.parse("+" + digits, None)
    except phonenumbers.NumberParseException:
        raise InvalidPhone(raw) from None
    if not phonenumbers.is_possible_number(number):
        raise InvalidPhone(raw)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164), False


def phone_display(e164: str) -> str:
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return e164
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
