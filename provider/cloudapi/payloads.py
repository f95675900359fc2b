"""Cloud API webhooks: the signature, the verification handshake, and bodies parsed into
provider.records' typed shapes.

One delivery may batch several entries, changes, messages and statuses, so `event_parse` answers
a list of Envelopes, each naming the number it belongs to (`account`, Meta's
metadata.phone_number_id). It never raises: what cannot be read becomes an Envelope holding an
IgnoredEvent with the reason (stored, answered 200, so Meta does not retry it forever), and one
bad message does not hide the good ones beside it.
"""

import hashlib
import hmac
from collections.abc import Mapping
from datetime import UTC, datetime

from provider.cloudapi import codes
from provider.reading import read_list, read_obj, read_opt_obj, read_str
from provider.records import (
    Envelope,
    IgnoredEvent,
    Media,
    MessagesEvent,
    ParseError,
    StatusEvent,
    StatusUpdate,
    TemplateStatusEvent,
    WaMessage,
)

PROVIDER = "cloudapi"
MEDIA_KINDS = ("image", "video", "audio", "document", "sticker")
STATUS_WORDS = {"sent": "sent", "delivered": "delivered", "read": "read", "failed": "error"}
# Message types that are no message a person wrote.
SKIPPED_TYPES = {
    "system": "mensaje del sistema (el cliente cambió de número)",
    "request_welcome": "el cliente abrió el chat sin escribir",
}
ID_MAX = 128
CHALLENGE_MAX = 1024
EPOCH_MIN, EPOCH_MAX = 946_684_800, 4_102_444_800


# --- signature and handshake -------------------------------------------------------------------


def signature_valid(raw_body: bytes, header: str | None, app_secret: str) -> bool:
    """X-Hub-Signature-256 is "sha256=" and the hex HMAC-SHA256 of the exact bytes received,
    keyed with the app secret. No secret configured accepts nothing."""
    if not app_secret or not isinstance(header, str) or not header.startswith("sha256="):
        return False
    given = header.removeprefix("sha256=").strip().lower().encode("utf-8", "replace")
    expected = hmac.new(app_secret.encode(), raw_body, hashlib.sha256).hexdigest().encode()
    return hmac.compare_digest(given, expected)


def verification_answer(params: Mapping, verify_token: str) -> str | None:
    """The hub.challenge to echo when Meta's subscription check carries our verify token;
    None means answer 403."""
    mode, token = params.get("hub.mode"), params.get("hub.verify_token")
    challenge = params.get("hub.challenge")
    if not verify_token or mode != "subscribe" or not isinstance(token, str):
        return None
    if not hmac.compare_digest(token.encode("utf-8", "replace"), verify_token.encode()):
        return None
    if not isinstance(challenge, str) or not challenge or len(challenge) > CHALLENGE_MAX:
        return None
    return challenge


# --- small typed readers ----------------------------------------------------------------------


def _id(parent: dict, name: str, where: str) -> str:
    value = read_str(parent, name, where).strip()
    if not value or len(value) > ID_MAX:
        raise ParseError(f"{where}.{name}: falta o es demasiado largo")
    return value


def _digits(value: str) -> str:
    digits = "".join(c for c in value if c.isascii() and c.isdigit())
    return digits[:20]


def timestamp_parse(value, where: str = "timestamp") -> datetime | None:
    """Unix seconds, as Meta sends them (a string), or a number."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ParseError(f"{where}: se esperaba un número")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        number = int(value.strip()[:20])
    else:
        raise ParseError(f"{where}: se esperaba un número")
    if not EPOCH_MIN <= number <= EPOCH_MAX:
        raise ParseError(f"{where}: fecha fuera de rango")
    return datetime.fromtimestamp(number, tz=UTC)


# --- messages ---------------------------------------------------------------------------------


def _media(kind: str, part: dict, where: str) -> Media:
    media_id = read_str(part, "id", where)
    if not media_id or len(media_id) > ID_MAX:
        raise ParseError(f"{where}.id: falta o es demasiado largo")
    return Media(
        kind=kind,
        mimetype=read_str(part, "mime_type", where).split(";")[0].strip()[:100],
        caption=read_str(part, "caption", where),
        file_name=read_str(part, "filename", where)[:255],
        file_length=None,
        url="",
        media_id=media_id,
        sha256=read_str(part, "sha256", where)[:100],
    )


def _location_text(part: dict, where: str) -> str:
    lat, lng = part.get("latitude"), part.get("longitude")
    label = " ".join(
        p for p in (read_str(part, "name", where), read_str(part, "address", where)) if p
    )
    numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (lat, lng))
    coords = f"({lat}, {lng})" if numbers else ""
    return " ".join(p for p in (label, coords) if p) or "📍"


def _contacts_text(items: list, where: str) -> str:
    lines = []
    for i, raw in enumerate(items[:10]):
        item = read_obj(raw, f"{where}[{i}]")
        name = read_opt_obj(item, "name", f"{where}[{i}]")
        label = read_str(name, "formatted_name", where) or read_str(name, "first_name", where)
        phones = read_list(item, "phones", f"{where}[{i}]")
        phone = (
            read_str(phones[0], "phone", where) if phones and isinstance(phones[0], dict) else ""
        )
        lines.append(" ".join(p for p in (label, phone) if p) or "👤")
    return "\n".join(lines) or "👤"


def _interactive_text(part: dict, where: str) -> str:
    kind = read_str(part, "type", where)
    if kind in ("button_reply", "list_reply"):
        reply = read_opt_obj(part, kind, where)
        title = read_str(reply, "title", f"{where}.{kind}")
        description = read_str(reply, "description", f"{where}.{kind}")
        return "\n".join(p for p in (title, description) if p) or read_str(reply, "id", where)
    if kind == "nfm_reply":
        reply = read_opt_obj(part, "nfm_reply", where)
        return read_str(reply, "body", f"{where}.nfm_reply") or "Formulario enviado"
    return ""


def _content(kind: str, item: dict, where: str) -> tuple[str, str, Media | None, str]:
    """(kind, body, media, reply_to) for one message type; unknown types are "unsupported"."""
    part_where = f"{where}.{kind}"
    if kind == "text":
        return "text", read_str(read_opt_obj(item, "text", where), "body", part_where), None, ""
    if kind in MEDIA_KINDS:
        media = _media(kind, read_obj(item.get(kind), part_where), part_where)
        return kind, media.caption, media, ""
    if kind == "location":
        return (
            "location",
            _location_text(read_obj(item.get(kind), part_where), part_where),
            None,
            "",
        )
    if kind == "contacts":
        return "contact", _contacts_text(read_list(item, "contacts", where), part_where), None, ""
    if kind == "interactive":
        text = _interactive_text(read_obj(item.get(kind), part_where), part_where)
        return ("text", text, None, "") if text else ("unsupported", "", None, "")
    if kind == "button":  # a quick-reply button of a template
        button = read_obj(item.get(kind), part_where)
        text = read_str(button, "text", part_where) or read_str(button, "payload", part_where)
        return "text", text, None, ""
    if kind == "reaction":
        reaction = read_obj(item.get(kind), part_where)
        target = read_str(reaction, "message_id", part_where)[:ID_MAX]
        # An empty emoji takes the reaction back.
        return "reaction", read_str(reaction, "emoji", part_where)[:32], None, target
    return "unsupported", "", None, ""


def message_parse(raw, contacts: dict[str, str], where: str) -> WaMessage:
    item = read_obj(raw, where)
    wa_id = _id(item, "id", where)
    phone = _digits(read_str(item, "from", where))
    kind = read_str(item, "type", where).strip()[:32]
    kind, body, media, reply_to = _content(kind, item, where)
    context = read_opt_obj(item, "context", where)
    reply_to = reply_to or read_str(context, "id", f"{where}.context")[:ID_MAX]
    skip = SKIPPED_TYPES.get(read_str(item, "type", where), "")
    if not phone and not skip:
        skip = "mensaje sin remitente"
    return WaMessage(
        wa_id=wa_id,
        from_me=False,
        phone=phone,
        lid="",
        is_group=False,
        kind=kind,
        body=body,
        media=media,
        push_name=contacts.get(phone, "").strip()[:255],
        at=timestamp_parse(item.get("timestamp"), f"{where}.timestamp"),
        source=item,
        skip=skip,
        reply_to=reply_to,
    )


def _contact_names(value: dict, where: str) -> dict[str, str]:
    names = {}
    for raw in read_list(value, "contacts", where):
        if not isinstance(raw, dict):
            continue
        profile = raw.get("profile")
        profile = profile if isinstance(profile, dict) else {}
        name, wa_id = profile.get("name"), raw.get("wa_id")
        if isinstance(name, str) and isinstance(wa_id, str | int) and not isinstance(wa_id, bool):
            names[_digits(str(wa_id))] = name
    return names


# --- statuses ---------------------------------------------------------------------------------


def _status_error(item: dict, where: str) -> tuple[str, str]:
    errors = read_list(item, "errors", where)
    if not errors:
        return "", ""
    error = read_obj(errors[0], f"{where}.errors[0]")
    code = read_str(error, "code", f"{where}.errors[0]")[:20]
    data = read_opt_obj(error, "error_data", f"{where}.errors[0]")
    detail = read_str(data, "details", where) or read_str(error, "title", where)
    return code, codes.meaning(code, detail).reason


def status_parse(raw, where: str) -> StatusUpdate | None:
    """None for a status chatdesk does not track (deleted, warning, a payment's)."""
    item = read_obj(raw, where)
    status = STATUS_WORDS.get(read_str(item, "status", where).strip().lower())
    if status is None:
        return None
    code, reason = _status_error(item, where) if status == "error" else ("", "")
    return StatusUpdate(
        wa_id=_id(item, "id", where),
        from_me=True,
        status=status,
        error_code=code,
        error_reason=reason,
        at=timestamp_parse(item.get("timestamp"), f"{where}.timestamp"),
        recipient=_digits(read_str(item, "recipient_id", where)),
    )


# --- changes and the body ---------------------------------------------------------------------


def _envelope(event: str, account: str, content, at: datetime | None = None) -> Envelope:
    return Envelope(
        event=event, session=account, at=at, content=content, provider=PROVIDER, account=account
    )


def _ignored(event: str, account: str, reason: str) -> Envelope:
    return _envelope(event, account, IgnoredEvent(reason[:300]))


def _each(items: list, where: str, parse, event: str, account: str):
    """(parsed, ignored envelopes) for a list, one bad item ignored alone."""
    parsed, ignored = [], []
    for i, raw in enumerate(items):
        try:
            found = parse(raw, f"{where}[{i}]")
        except ParseError as e:
            ignored.append(_ignored(event, account, str(e)))
            continue
        if found is not None:
            parsed.append(found)
    return parsed, ignored


def _messages_change(value: dict, where: str) -> list[Envelope]:
    metadata = read_opt_obj(value, "metadata", where)
    account = read_str(metadata, "phone_number_id", f"{where}.metadata").strip()[:64]
    if not account:
        raise ParseError(f"{where}.metadata.phone_number_id: falta")
    out = []
    names = _contact_names(value, where)
    messages, ignored = _each(
        read_list(value, "messages", where),
        f"{where}.messages",
        lambda raw, at: message_parse(raw, names, at),
        "messages",
        account,
    )
    out += ignored
    if messages:
        out.append(_envelope("messages", account, MessagesEvent(tuple(messages)), messages[0].at))
    statuses, ignored = _each(
        read_list(value, "statuses", where), f"{where}.statuses", status_parse, "statuses", account
    )
    out += ignored
    if statuses:
        out.append(_envelope("statuses", account, StatusEvent(tuple(statuses)), statuses[0].at))
    for i, raw in enumerate(read_list(value, "errors", where)[:5]):
        error = raw if isinstance(raw, dict) else {}
        code = read_str(error, "code", f"{where}.errors[{i}]")[:20] if error else ""
        title = str(error.get("title") or error.get("message") or "")[:200]
        out.append(_ignored("errors", account, f"Meta informó un error {code}: {title}".strip()))
    if not out:
        out.append(_ignored("messages", account, "cambio sin mensajes ni estados"))
    return out


def _template_change(value: dict, waba_id: str, where: str) -> Envelope:
    status = read_str(value, "event", where).strip().lower()[:32]
    if not status:
        raise ParseError(f"{where}.event: falta")
    event = TemplateStatusEvent(
        waba_id=waba_id,
        template_id=read_str(value, "message_template_id", where)[:64],
        name=read_str(value, "message_template_name", where)[:512],
        language=read_str(value, "message_template_language", where)[:16],
        status=status,
        reason=read_str(value, "reason", where)[:300],
    )
    return _envelope("message_template_status_update", "", event)


def _change(raw, waba_id: str, where: str) -> list[Envelope]:
    change = read_obj(raw, where)
    field = read_str(change, "field", where).strip()[:64]
    value = read_obj(change.get("value"), f"{where}.value")
    if field == "messages":
        return _messages_change(value, f"{where}.value")
    if field == "message_template_status_update":
        return [_template_change(value, waba_id, f"{where}.value")]
    return [_ignored(field, "", f"campo no usado: {field}" if field else "cambio sin campo")]


def event_parse(body) -> list[Envelope]:
    """The one entry point: a stored webhook body to its Envelopes. Never raises."""
    try:
        body = read_obj(body, "cuerpo")
        if body.get("object") != "whatsapp_business_account":
            return [_ignored("", "", "no es un evento de WhatsApp Business")]
        entries = read_list(body, "entry", "cuerpo")
    except ParseError as e:
        return [_ignored("", "", str(e))]
    out = []
    for i, raw_entry in enumerate(entries):
        where = f"entry[{i}]"
        try:
            entry = read_obj(raw_entry, where)
            waba_id = read_str(entry, "id", where)[:64]
            changes = read_list(entry, "changes", where)
        except ParseError as e:
            out.append(_ignored("", "", str(e)))
            continue
        for j, raw_change in enumerate(changes):
            try:
                out.extend(_change(raw_change, waba_id, f"{where}.changes[{j}]"))
            except ParseError as e:
                out.append(_ignored("", "", str(e)))
    return out or [_ignored("", "", "cuerpo sin cambios")]
