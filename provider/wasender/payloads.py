"""WaSender webhook bodies parsed into provider.records' typed shapes, strictly: what we read
must have the type we expect, or the whole event is a ParseError (stored, marked ignored,
answered 200).

Every variant in WASENDER.md is accepted: `data.messages` as one object, as a list, or the old
flat `data.key` / `data.message`; statuses as 0-5 or words in any case; timestamps as numbers
or strings, in seconds or milliseconds (or Baileys' {low, high} longs).
"""

from datetime import UTC, datetime

from provider.reading import read_obj, read_opt_obj, read_str
from provider.records import (
    Envelope,
    IgnoredEvent,
    Media,
    MessagesEvent,
    ParseError,
    SentEvent,
    SessionEvent,
    StatusEvent,
    StatusUpdate,
    WaMessage,
)

INBOUND_EVENTS = {
    "messages.received",
    "messages-personal.received",
    "messages-group.received",
    "messages.upsert",
}
IGNORED_EVENTS = {
    "message-receipt.update": "recibos de grupo: no se usan",
    "messages-newsletter.received": "mensajes de canales: no se usan",
}
STATUS_WORDS = {
    "error": "error",
    "failed": "error",
    "pending": "pending",
    "sent": "sent",
    "server_ack": "sent",
    "delivered": "delivered",
    "delivery_ack": "delivered",
    "read": "read",
    "played": "played",
}
STATUS_CODES = {0: "error", 1: "pending", 2: "sent", 3: "delivered", 4: "read", 5: "played"}
WRAPPERS = (
    "ephemeralMessage",
    "viewOnceMessage",
    "viewOnceMessageV2",
    "viewOnceMessageV2Extension",
    "documentWithCaptionMessage",
)
MEDIA_KINDS = {
    "imageMessage": "image",
    "videoMessage": "video",
    "audioMessage": "audio",
    "documentMessage": "document",
    "stickerMessage": "sticker",
}
# Content that is not a message a person wrote: edits, deletions, reactions, key exchanges.
NOT_MESSAGES = {"protocolMessage", "reactionMessage", "senderKeyDistributionMessage"}
GROUP_KEYS = ("participant", "participantPn", "cleanedParticipantPn", "participantLid")
WA_ID_MAX = 128
# 2000-01-01 .. 2100-01-01: anything outside is not a WhatsApp time.
EPOCH_MIN, EPOCH_MAX = 946_684_800, 4_102_444_800


# --- small typed readers ----------------------------------------------------------------------


def _bool(parent: dict, name: str, where: str) -> bool:
    value = parent.get(name, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise ParseError(f"{where}.{name}: se esperaba verdadero o falso")
    return value


def _int_like(value, where: str) -> int | None:
    """An integer given as a number, a digit string or a Baileys long {low, high}."""
    if value is None:
        return None
    if isinstance(value, dict) and isinstance(value.get("low"), int):
        high = value.get("high", 0)
        if not isinstance(high, int) or isinstance(high, bool):
            raise ParseError(f"{where}: número mal formado")
        return (value["low"] & 0xFFFFFFFF) + (high << 32)
    if isinstance(value, bool):
        raise ParseError(f"{where}: se esperaba un número")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value == value and abs(value) < 1e18:
        return int(value)
    text = value.strip() if isinstance(value, str) else ""
    if text.isascii() and text.isdigit() and len(text) <= 20:
        return int(text)
    raise ParseError(f"{where}: se esperaba un número")


def timestamp_parse(value, where: str = "timestamp") -> datetime | None:
    """Unix seconds or milliseconds, as a number or a string."""
    number = _int_like(value, where)
    if number is None:
        return None
    # Checked as an integer first: 10**400 milliseconds cannot even become a float.
    if not EPOCH_MIN <= number <= EPOCH_MAX * 1000:
        raise ParseError(f"{where}: fecha fuera de rango")
    seconds = number / 1000 if number > EPOCH_MAX else number
    if not EPOCH_MIN <= seconds <= EPOCH_MAX:
        raise ParseError(f"{where}: fecha fuera de rango")
    return datetime.fromtimestamp(seconds, tz=UTC)


def _jid_user(jid: str) -> str:
    """'593968196046:12@s.whatsapp.net' -> '593968196046'."""
    return jid.split("@", 1)[0].split(":", 1)[0]


def _lid(value: str) -> str:
    if not value.endswith("@lid") or not _jid_user(value):
        return ""
    return _jid_user(value)[:59] + "@lid"


# --- messages ---------------------------------------------------------------------------------


def _unwrap(message: dict, where: str) -> dict:
    for _depth in range(5):
        wrapper = next((w for w in WRAPPERS if message.get(w) is not None), None)
        if wrapper is None:
            return message
        inner = read_obj(message[wrapper], f"{where}.{wrapper}")
        message = read_obj(inner.get("message"), f"{where}.{wrapper}.message")
    raise ParseError(f"{where}: demasiados envoltorios")


def _media(content: dict, where: str) -> Media | None:
    for name, kind in MEDIA_KINDS.items():
        if content.get(name) is None:
            continue
        part = read_obj(content[name], f"{where}.{name}")
        where_part = f"{where}.{name}"
        return Media(
            kind=kind,
            mimetype=read_str(part, "mimetype", where_part)[:100],
            caption=read_str(part, "caption", where_part),
            file_name=read_str(part, "fileName", where_part)[:255],
            file_length=_int_like(part.get("fileLength"), f"{where_part}.fileLength"),
            url=read_str(part, "url", where_part),
        )
    return None


def _location_text(content: dict, where: str) -> str | None:
    name = next((n for n in ("locationMessage", "liveLocationMessage") if content.get(n)), None)
    if name is None:
        return None
    part = read_obj(content[name], f"{where}.{name}")
    lat, lng = part.get("degreesLatitude"), part.get("degreesLongitude")
    label = read_str(part, "name", where) or read_str(part, "address", where)
    coords = f"{lat}, {lng}" if all(isinstance(v, int | float) for v in (lat, lng)) else ""
    return " ".join(p for p in (label, f"({coords})" if coords else "") if p) or "📍"


def _contact_text(content: dict, where: str) -> str | None:
    if content.get("contactMessage") is not None:
        part = read_obj(content["contactMessage"], f"{where}.contactMessage")
        return read_str(part, "displayName", where) or "👤"
    if content.get("contactsArrayMessage") is not None:
        part = read_obj(content["contactsArrayMessage"], f"{where}.contactsArrayMessage")
        return read_str(part, "displayName", where) or "👤"
    return None


def _text(content: dict, where: str) -> str:
    text = read_str(content, "conversation", where)
    if text:
        return text
    extended = read_opt_obj(content, "extendedTextMessage", where)
    return read_str(extended, "text", f"{where}.extendedTextMessage")


def _kind_and_body(body: str, content: dict, where: str) -> tuple[str, str, Media | None]:
    media = _media(content, where)
    if media:
        return media.kind, body or media.caption, media
    location = _location_text(content, where)
    if location is not None:
        return "location", body or location, None
    contact = _contact_text(content, where)
    if contact is not None:
        return "contact", body or contact, None
    text = body or _text(content, where)
    return ("text" if text else "other"), text, None


def _skip_reason(key: dict, remote: str, content: dict, body: str, where: str) -> str:
    if remote.endswith("@g.us") or any(key.get(k) for k in GROUP_KEYS):
        return "mensaje de grupo: no se usan"
    if remote == "status@broadcast" or remote.endswith(("@broadcast", "@newsletter")):
        return "estado o canal de WhatsApp: no se usan"
    if NOT_MESSAGES & set(content):
        return "no es un mensaje (edición, borrado o reacción)"
    if not content and not body:
        return "mensaje sin contenido"
    return ""


def _phone(key: dict, from_me: bool, remote: str, where: str) -> str:
    """Never the `@lid` JID. For our own messages the sender fields are us: use the chat."""
    if from_me:
        return _jid_user(remote) if remote.endswith("@s.whatsapp.net") else ""
    cleaned = read_str(key, "cleanedSenderPn", where)
    if cleaned:
        return _jid_user(cleaned)
    sender = read_str(key, "senderPn", where)
    if sender and not sender.endswith("@lid"):
        return _jid_user(sender)
    return _jid_user(remote) if remote.endswith("@s.whatsapp.net") else ""


def message_parse(raw, where: str = "data.messages") -> WaMessage:
    item = read_obj(raw, where)
    key = read_obj(item.get("key"), f"{where}.key")
    wa_id = read_str(key, "id", f"{where}.key")
    if not wa_id or len(wa_id) > WA_ID_MAX:
        raise ParseError(f"{where}.key.id: falta o es demasiado largo")
    from_me = _bool(key, "fromMe", f"{where}.key")
    remote = read_str(key, "remoteJid", f"{where}.key")
    body = read_str(item, "messageBody", where)
    content = _unwrap(read_opt_obj(item, "message", where), f"{where}.message")
    kind, text, media = _kind_and_body(body, content, f"{where}.message")
    at = timestamp_parse(item.get("messageTimestamp"), f"{where}.messageTimestamp")
    lid = _lid(read_str(key, "senderLid", f"{where}.key")) or _lid(remote)
    return WaMessage(
        wa_id=wa_id,
        from_me=from_me,
        phone=_phone(key, from_me, remote, f"{where}.key"),
        lid=lid,
        is_group=remote.endswith("@g.us"),
        kind=kind,
        body=text,
        media=media,
        push_name=read_str(item, "pushName", where).strip(),
        at=at,
        source={"key": key, "message": item.get("message")},
        skip=_skip_reason(key, remote, content, body, where),
    )


def _messages(data: dict) -> MessagesEvent:
    if "messages" not in data and "key" in data:  # the old flat form
        return MessagesEvent(messages=(message_parse(data, "data"),))
    raw = data.get("messages")
    if not isinstance(raw, list):
        return MessagesEvent(messages=(message_parse(raw, "data.messages"),))
    if not raw:
        raise ParseError("data.messages: vacío")
    return MessagesEvent(
        messages=tuple(message_parse(m, f"data.messages[{i}]") for i, m in enumerate(raw))
    )


# --- statuses, sends, session ------------------------------------------------------------------


def status_word(value, where: str) -> str | None:
    """0-5 or a word in any case; None when the update carries no status (an edit, a star)."""
    if value is None:
        return None
    if isinstance(value, str) and value.strip().lower() in STATUS_WORDS:
        return STATUS_WORDS[value.strip().lower()]
    number = _int_like(value, where) if not isinstance(value, dict) else None
    if number in STATUS_CODES:
        return STATUS_CODES[number]
    raise ParseError(f"{where}: estado desconocido")


def _status_update(raw, where: str) -> StatusUpdate | None:
    item = read_obj(raw, where)
    key = read_obj(item.get("key"), f"{where}.key")
    update = read_opt_obj(item, "update", where)
    status = status_word(update.get("status", item.get("status")), f"{where}.update.status")
    if status is None:
        return None
    wa_id = read_str(key, "id", f"{where}.key")
    if not wa_id or len(wa_id) > WA_ID_MAX:
        raise ParseError(f"{where}.key.id: falta o es demasiado largo")
    return StatusUpdate(wa_id=wa_id, from_me=_bool(key, "fromMe", f"{where}.key"), status=status)


def _statuses(data) -> StatusEvent | IgnoredEvent:
    items = data if isinstance(data, list) else [data]
    updates = [_status_update(u, f"data[{i}]") for i, u in enumerate(items)]
    found = tuple(u for u in updates if u is not None)
    return StatusEvent(updates=found) if found else IgnoredEvent("actualización sin estado")


def _sent(data: dict) -> SentEvent:
    key = read_opt_obj(data, "key", "data")
    wa_id = read_str(key, "id", "data.key")
    msg_id = data.get("msgId", data.get("id"))
    if isinstance(msg_id, str) and not msg_id.strip().isdigit():
        msg_id = None  # data.id may be the WhatsApp id in some shapes
    number = _int_like(msg_id, "data.msgId")
    if number is None or not wa_id or len(wa_id) > WA_ID_MAX:
        raise ParseError("message.sent: faltan msgId o key.id")
    if not 0 < number < 2**63:
        raise ParseError("data.msgId: fuera de rango")
    remote = read_str(key, "remoteJid", "data.key")
    phone = _jid_user(remote) if remote.endswith("@s.whatsapp.net") else ""
    return SentEvent(msg_id=number, wa_id=wa_id, phone=phone)


def _session(data: dict) -> SessionEvent:
    status = read_str(data, "status", "data").strip().lower()
    if not status or len(status) > 20:
        raise ParseError("data.status: falta o es demasiado largo")
    return SessionEvent(status=status)


def _content(event: str, data):
    if event in IGNORED_EVENTS:
        return IgnoredEvent(IGNORED_EVENTS[event])
    if event == "messages.update":
        return _statuses(data)
    if event in INBOUND_EVENTS:
        return _messages(read_obj(data, "data"))
    if event == "message.sent":
        return _sent(read_obj(data, "data"))
    if event == "session.status":
        return _session(read_obj(data, "data"))
    return IgnoredEvent(f"evento desconocido: {event[:64]}" if event else "evento sin nombre")


def _session_name(payload: dict, data) -> str:
    name = payload.get("sessionId")
    if name is None and isinstance(data, dict):
        name = data.get("session_id", data.get("sessionId"))
    if isinstance(name, bool) or not isinstance(name, str | int) or not str(name).strip():
        return "default"
    return str(name).strip()[:64]


def event_parse(payload: dict) -> Envelope:
    """The one entry point: a stored webhook body to an Envelope, or ParseError."""
    payload = read_obj(payload, "cuerpo")
    event = payload.get("event")
    event = event.strip() if isinstance(event, str) else ""
    data = payload.get("data")
    return Envelope(
        event=event,
        session=_session_name(payload, data),
        at=timestamp_parse(payload.get("timestamp")),
        content=_content(event, data),
    )
