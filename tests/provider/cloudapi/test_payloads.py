"""Cloud API webhook bodies parsed into the provider-neutral records; signature and handshake."""

import copy
import hashlib
import hmac
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provider.cloudapi.payloads import event_parse, signature_valid, verification_answer
from provider.records import (
    Envelope,
    IgnoredEvent,
    MessagesEvent,
    StatusEvent,
    TemplateStatusEvent,
)
from tests.provider.cloudapi.conftest import fixture_load, webhook_fixtures

PNID = "106540352242922"
SECRET = "app-secret-123"


def only(name: str):
    [envelope] = event_parse(fixture_load(name))
    assert (envelope.provider, envelope.session) == ("cloudapi", envelope.account)
    return envelope


def message(name: str):
    envelope = only(name)
    assert envelope.account == PNID
    [m] = envelope.content.messages
    assert (m.from_me, m.phone, m.wa_id[:6]) == (False, "593968196046", "wamid.")
    return m


@pytest.mark.parametrize("name", webhook_fixtures())
def test_every_fixture_parses_into_envelopes(name):
    envelopes = event_parse(fixture_load(name))
    assert envelopes and all(isinstance(e, Envelope) for e in envelopes)


def test_text():
    m = message("messages_text")
    assert (m.kind, m.body, m.push_name) == (
        "text",
        "Hola, ¿cuánto cuesta Netflix por un mes? 🙂",
        "María González",
    )
    assert m.at.timestamp() == 1764000000
    assert (m.reply_to, m.skip, m.media) == ("", "", None)


def test_a_reply_names_the_quoted_message():
    m = message("messages_text_reply")
    assert m.reply_to == "wamid.HBgMNTkzOTY4MTk2MDQ2FQIAERgSQjdEMEQ2RjQ1RjNCQzVBMjNCAA=="


@pytest.mark.parametrize(
    "name,kind,body,mime,file_name",
    [
        ("messages_image", "image", "Comprobante", "image/jpeg", ""),
        ("messages_audio", "audio", "", "audio/ogg", ""),
        ("messages_video", "video", "Así me sale", "video/mp4", ""),
        ("messages_document", "document", "Factura", "application/pdf", "factura-0012.pdf"),
        ("messages_sticker", "sticker", "", "image/webp", ""),
    ],
)
def test_media_carry_their_media_id(name, kind, body, mime, file_name):
    m = message(name)
    assert (m.kind, m.body, m.media.kind, m.media.mimetype) == (kind, body, kind, mime)
    assert m.media.file_name == file_name
    assert m.media.media_id.isdigit() and m.media.sha256
    assert m.source["id"] == m.wa_id  # the raw message, for the media fetch


@pytest.mark.parametrize(
    "name,kind,body",
    [
        (
            "messages_location",
            "location",
            "Mall del Sol Av. Juan Tanca Marengo, Guayaquil (-2.170998, -79.922359)",
        ),
        ("messages_contacts", "contact", "Carlos Pérez +593 98 765 4321"),
        ("messages_interactive_button_reply", "text", "Quiero renovar"),
        ("messages_interactive_list_reply", "text", "Netflix 3 meses\n$35.00"),
        ("messages_button", "text", "No me interesa"),
        ("messages_reaction", "reaction", "👍"),
        ("messages_unsupported", "unsupported", ""),
    ],
)
def test_other_types(name, kind, body):
    m = message(name)
    assert (m.kind, m.body, m.skip) == (kind, body, "")


def test_a_reaction_names_its_message():
    assert message("messages_reaction").reply_to.startswith("wamid.HBgMNTkz")


def test_system_messages_are_skipped():
    assert message("messages_system").skip.startswith("mensaje del sistema")


def test_a_batch_gives_one_envelope_per_kind_and_each_customer_their_name():
    messages, statuses = event_parse(fixture_load("messages_batch"))
    names = [(m.phone, m.push_name) for m in messages.content.messages]
    assert names == [("593968196046", "María González"), ("593991234567", "Ana Torres")]
    assert [u.status for u in statuses.content.updates] == ["read"]


@pytest.mark.parametrize("status", ["sent", "delivered", "read"])
def test_statuses(status):
    envelope = only(f"statuses_{status}")
    assert isinstance(envelope.content, StatusEvent)
    [update] = envelope.content.updates
    assert (update.status, update.from_me, update.recipient) == (status, True, "593968196046")
    assert (update.error_code, update.error_reason) == ("", "")


@pytest.mark.parametrize(
    "name,code,reason",
    [
        ("statuses_failed_window_closed", "131047", "Pasaron más de 24 horas"),
        ("statuses_failed_marketing_cap", "131049", "Limitado por Meta"),
        ("statuses_failed_undeliverable", "131026", "WhatsApp no pudo entregar"),
        ("statuses_failed_unknown_code", "135000", "Meta rechazó el mensaje (error 135000)"),
    ],
)
def test_failed_statuses_carry_the_code_and_a_spanish_reason(name, code, reason):
    [update] = only(name).content.updates
    assert (update.status, update.error_code) == ("error", code)
    assert update.error_reason.startswith(reason)


@pytest.mark.parametrize(
    "name,status,reason",
    [
        ("template_status_approved", "approved", "NONE"),
        ("template_status_rejected", "rejected", "INCORRECT_CATEGORY"),
        ("template_status_paused", "paused", "NONE"),
    ],
)
def test_template_reviews(name, status, reason):
    content = only(name).content
    assert isinstance(content, TemplateStatusEvent)
    assert (content.status, content.reason, content.waba_id) == (status, reason, "102290129340398")
    assert content.language == "es" and content.name and content.template_id.isdigit()


@pytest.mark.parametrize(
    "body,reason",
    [
        (None, "cuerpo: se esperaba un objeto"),
        ([], "cuerpo: se esperaba un objeto"),
        ({"object": "page", "entry": []}, "no es un evento de WhatsApp Business"),
        ({"object": "whatsapp_business_account"}, "cuerpo sin cambios"),
        ({"object": "whatsapp_business_account", "entry": "x"}, "cuerpo.entry"),
        ({"object": "whatsapp_business_account", "entry": [5]}, "entry[0]"),
    ],
)
def test_bad_bodies_are_ignored_with_a_reason(body, reason):
    [envelope] = event_parse(body)
    assert isinstance(envelope.content, IgnoredEvent)
    assert envelope.content.reason.startswith(reason)


def test_one_bad_message_does_not_hide_the_good_one():
    body = fixture_load("messages_batch")
    value = body["entry"][0]["changes"][0]["value"]
    value["messages"][0]["id"] = ""
    ignored, good, _statuses = event_parse(body)
    assert (
        ignored.content.reason
        == "entry[0].changes[0].value.messages[0].id: falta o es demasiado largo"
    )
    assert [m.body for m in good.content.messages] == ["¿Tienen HBO Max?"]


def test_unknown_fields_and_change_errors_are_ignored():
    assert only("quality_update").content.reason == "campo no usado: phone_number_quality_update"
    assert (
        only("value_errors").content.reason == "Meta informó un error 131000: Something went wrong"
    )


# --- fuzz -------------------------------------------------------------------------------------

WEBHOOKS = [fixture_load(name) for name in webhook_fixtures()]
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True)
    | st.text(max_size=20)
    | st.sampled_from(["", "0", "1764000000", "text", "failed", "messages", "\ud83d", "9" * 40])
)
garbage = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3)
    ),
    max_leaves=8,
)


def paths(node):
    items = node.items() if isinstance(node, dict) else enumerate(node)
    for key, value in items:
        yield node, key
        if isinstance(value, dict | list):
            yield from paths(value)


@st.composite
def mutated(draw):
    body = copy.deepcopy(draw(st.sampled_from(WEBHOOKS)))
    for _ in range(draw(st.integers(1, 4))):
        spots = list(paths(body)) if isinstance(body, dict | list) else []
        if not spots:
            break
        node, key = draw(st.sampled_from(spots))
        if draw(st.booleans()) and isinstance(node, dict):
            del node[key]
        else:
            node[key] = draw(garbage)
    return body


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(body=mutated() | garbage)
def test_event_parse_never_raises(body):
    for envelope in event_parse(body):
        assert isinstance(envelope, Envelope)
        if isinstance(envelope.content, MessagesEvent):
            assert all(m.wa_id for m in envelope.content.messages)


# --- signature and handshake ------------------------------------------------------------------

RAW = json.dumps(fixture_load("messages_text"), ensure_ascii=False).encode()


def sign(raw: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()


def test_the_right_signature_verifies():
    assert signature_valid(RAW, sign(RAW), SECRET)
    assert signature_valid(RAW, sign(RAW).upper().replace("SHA256=", "sha256="), SECRET)


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "sha256=",
        sign(RAW, "other-secret"),
        sign(RAW + b" "),
        sign(RAW).removeprefix("sha256="),
        "sha1=" + hmac.new(SECRET.encode(), RAW, hashlib.sha1).hexdigest(),
        "sha256=ñ" + sign(RAW)[8:],
    ],
)
def test_wrong_or_missing_signatures_fail(header):
    assert not signature_valid(RAW, header, SECRET)


def test_no_app_secret_accepts_nothing():
    assert not signature_valid(RAW, sign(RAW, ""), "")


def test_the_signature_covers_the_exact_bytes():
    reserialised = json.dumps(json.loads(RAW)).encode()  # accents escaped: other bytes
    assert reserialised != RAW
    assert not signature_valid(reserialised, sign(RAW), SECRET)


def handshake(**changes):
    params = {"hub.mode": "subscribe", "hub.verify_token": "tok-1", "hub.challenge": "1158201444"}
    params.update(changes)
    return {k: v for k, v in params.items() if v is not None}


def test_the_handshake_answers_the_challenge():
    assert verification_answer(handshake(), "tok-1") == "1158201444"


@pytest.mark.parametrize(
    "params,token",
    [
        (handshake(**{"hub.verify_token": "wrong"}), "tok-1"),
        (handshake(**{"hub.verify_token": None}), "tok-1"),
        (handshake(**{"hub.mode": "unsubscribe"}), "tok-1"),
        (handshake(**{"hub.challenge": None}), "tok-1"),
        (handshake(**{"hub.challenge": ""}), "tok-1"),
        (handshake(**{"hub.verify_token": ""}), ""),
        (handshake(**{"hub.verify_token": "tóken"}), "tok-1"),
    ],
)
def test_the_handshake_refuses(params, token):
    assert verification_answer(params, token) is None
