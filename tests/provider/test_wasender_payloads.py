"""The strict parse on its own: the variants WASENDER.md lists, and typed errors."""

from datetime import UTC, datetime

import pytest

from provider.records import (
    IgnoredEvent,
    MessagesEvent,
    ParseError,
    SentEvent,
    SessionEvent,
    StatusEvent,
)
from provider.wasender.payloads import event_parse, status_word, timestamp_parse
from tests.inbox.conftest import fixture_load


@pytest.mark.parametrize(
    "value,expected",
    [
        (1764000000, 1764000000),
        ("1764000000", 1764000000),
        (1764000000123, 1764000000.123),
        ("1764000000123", 1764000000.123),
        ({"low": 1764000000, "high": 0}, 1764000000),
        (1764000000.5, 1764000000),
    ],
)
def test_timestamps_in_every_form(value, expected):
    assert timestamp_parse(value) == datetime.fromtimestamp(expected, tz=UTC)


@pytest.mark.parametrize("value", [True, "yesterday", [], -5, 10**30, "1e9", {"low": "x"}])
def test_bad_timestamps_are_parse_errors(value):
    with pytest.raises(ParseError):
        timestamp_parse(value)


@pytest.mark.parametrize(
    "value,expected",
    [
        (0, "error"),
        (1, "pending"),
        (2, "sent"),
        (3, "delivered"),
        (4, "read"),
        (5, "played"),
        ("ERROR", "error"),
        ("Pending", "pending"),
        ("delivery_ack", "delivered"),
        (" read ", "read"),
        (None, None),
    ],
)
def test_status_words(value, expected):
    assert status_word(value, "s") == expected


@pytest.mark.parametrize("value", [6, -1, "seen", True, {"status": 3}])
def test_unknown_statuses_are_parse_errors(value):
    with pytest.raises(ParseError):
        status_word(value, "s")


def test_each_fixture_parses_to_its_shape():
    shapes = {
        "messages_received_text": MessagesEvent,
        "messages_upsert_text_list": MessagesEvent,
        "messages_upsert_flat_image": MessagesEvent,
        "message_sent": SentEvent,
        "message_sent_data_id": SentEvent,
        "messages_update_status_numeric": StatusEvent,
        "messages_update_status_string_list": StatusEvent,
        "session_status": SessionEvent,
        "session_status_upper": SessionEvent,
        "unknown_event": IgnoredEvent,
    }
    for name, shape in shapes.items():
        assert isinstance(event_parse(fixture_load(name)).content, shape), name


def test_the_session_comes_from_session_id_or_data():
    assert event_parse(fixture_load("session_status")).session == "session-123"
    assert event_parse(fixture_load("messages_update_status_numeric")).session == (
        "session-key-redacted"
    )
    assert event_parse(fixture_load("messages_received_text")).session == "default"


def test_the_phone_never_comes_from_a_lid():
    body = fixture_load("messages_received_lid_only")
    (message,) = event_parse(body).content.messages
    assert (message.phone, message.lid) == ("", "99887766554433@lid")


def test_our_own_messages_take_the_phone_from_the_chat():
    body = fixture_load("messages_upsert_fromme_echo")
    body["data"]["messages"][0]["key"]["cleanedSenderPn"] = "593900000000"  # that is us
    (message,) = event_parse(body).content.messages
    assert (message.from_me, message.phone) == (True, "593968196046")


def test_wrappers_nest_but_not_forever():
    inner = {"conversation": "hola"}
    for _ in range(6):
        inner = {"ephemeralMessage": {"message": inner}}
    body = fixture_load("messages_received_text")
    del body["data"]["messages"]["messageBody"]
    body["data"]["messages"]["message"] = inner
    with pytest.raises(ParseError, match="demasiados envoltorios"):
        event_parse(body)


def test_message_sent_accepts_a_digit_string_msg_id():
    body = fixture_load("message_sent")
    body["data"]["msgId"] = "100123"
    assert event_parse(body).content == SentEvent(
        msg_id=100123, wa_id="3EB0C0FFEE0000000001", phone="593968196046"
    )


def test_an_empty_upsert_list_is_a_parse_error():
    with pytest.raises(ParseError):
        event_parse({"event": "messages.upsert", "data": {"messages": []}})


def test_updates_without_a_status_are_ignored():
    body = {"event": "messages.update", "data": [{"key": {"id": "X"}, "update": {"starred": True}}]}
    assert isinstance(event_parse(body).content, IgnoredEvent)
