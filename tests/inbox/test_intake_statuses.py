"""Statuses, message.sent, our own sends echoing back, and the session state."""

from datetime import UTC, datetime

import pytest

from inbox.models import Conversation, Message, SessionState, WebhookEvent
from tests.inbox.conftest import fixture_load, outbound_row

WA_ID = "3EB0C0FFEE0000000001"


def at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


def status_body(status, *, wa_id: str = WA_ID, timestamp: int = 1764000960, from_me=True):
    return {
        "event": "messages.update",
        "timestamp": timestamp,
        "data": {
            "update": {"status": status},
            "key": {"id": wa_id, "fromMe": from_me, "remoteJid": "593968196046@s.whatsapp.net"},
        },
    }


@pytest.fixture
def sent(db):
    return outbound_row(provider_msg_id=100123, wa_id=WA_ID)


def test_it_moves_a_status_forward_from_a_number(post, sent):
    post("messages_update_status_numeric")
    sent.refresh_from_db()
    assert sent.status == "delivered"
    assert sent.delivered_at == at(1764000960.123)  # the envelope time, in milliseconds
    assert WebhookEvent.objects.get().state == "processed"


def test_it_reads_a_list_of_string_statuses(post, sent):
    post("messages_update_status_string_list")
    sent.refresh_from_db()
    assert (sent.status, sent.read_at) == ("read", at(1764001020))


def test_read_without_delivered_stamps_delivered_too(post, sent):
    post(status_body("read", timestamp=1764001000))
    sent.refresh_from_db()
    assert sent.status == "read"
    assert sent.delivered_at == sent.read_at == at(1764001000)


def test_a_late_delivered_never_moves_read_back(post, sent):
    post("messages_update_status_string_list")  # read at 1764001020
    post("messages_update_status_numeric")  # delivered at 1764000960.123, arriving late
    sent.refresh_from_db()
    assert sent.status == "read"
    # ...but its earlier time is kept: the same times whatever the order of arrival.
    assert sent.delivered_at == at(1764000960.123)
    assert sent.read_at == at(1764001020)


def test_repeated_statuses_are_no_ops(post, sent):
    for _ in range(3):
        post("messages_update_status_numeric")
    sent.refresh_from_db()
    assert (sent.status, sent.delivered_at) == ("delivered", at(1764000960.123))


@pytest.mark.parametrize(
    "word,expected",
    [
        ("DELIVERED", "delivered"),
        ("Read", "read"),
        ("played", "played"),
        ("3", "delivered"),
        (5, "played"),
        ("server_ack", "sent"),
    ],
)
def test_statuses_in_any_spelling(post, sent, word, expected):
    sent.status = "sending"
    sent.save()
    post(status_body(word))
    sent.refresh_from_db()
    assert sent.status == expected


def test_pending_changes_nothing(post, sent):
    post(status_body(1))
    sent.refresh_from_db()
    assert sent.status == "sent"
    assert WebhookEvent.objects.get().state == "processed"


def test_a_mixed_list_with_number_and_upper_case(post, db):
    two = outbound_row(wa_id="3EB0C0FFEE0000000002")
    four = outbound_row(phone="593992223344", wa_id="3EB0C0FFEE0000000004")
    post("messages_update_status_mixed_list")
    two.refresh_from_db()
    four.refresh_from_db()
    assert (two.status, four.status) == ("read", "delivered")


def test_error_marks_the_message_failed_with_a_reason(post, db):
    row = outbound_row(wa_id="3EB0C0FFEE0000000003")
    post("messages_update_error")
    row.refresh_from_db()
    assert row.status == "failed"
    assert row.failure_reason == "WhatsApp informó un error al entregar el mensaje."
    assert row.failed_at == at(1764001200)


def test_error_does_not_undo_a_delivery(post, sent):
    post("messages_update_status_numeric")
    post(status_body(0, timestamp=1764001300))
    sent.refresh_from_db()
    assert sent.status == "delivered"


def test_error_is_terminal(post, sent):
    post(status_body(0))
    post(status_body("read"))
    sent.refresh_from_db()
    assert sent.status == "failed"


def test_statuses_never_touch_inbound_messages(post):
    post("messages_received_text")
    post(status_body("read", wa_id="3EB0A1B2C3D4E5F60718", from_me=False))
    assert Message.objects.get().status == "received"


def test_a_status_for_an_unknown_message_waits_then_is_ignored(post, db):
    from datetime import timedelta

    from inbox import intake

    post("messages_update_status_numeric")
    event = WebhookEvent.objects.get()
    assert (event.state, event.attempts) == ("pending", 1)
    assert "aún desconocido" in event.error
    assert event.retry_at > event.received_at
    intake.webhook_event_retry(event.pk, now=event.received_at + timedelta(minutes=11))
    event.refresh_from_db()
    assert event.state == "ignored"


def test_a_status_that_came_before_message_sent_is_applied_on_retry(post, db):
    from datetime import timedelta

    from inbox import intake

    row = outbound_row(provider_msg_id=100123)
    post("messages_update_status_numeric")  # wa_id not linked yet
    post("message_sent")
    event = WebhookEvent.objects.get(event="messages.update")
    intake.webhook_event_retry(event.pk, now=event.retry_at + timedelta(seconds=1))
    row.refresh_from_db()
    assert (row.wa_id, row.status) == (WA_ID, "delivered")
    event.refresh_from_db()
    assert event.state == "processed"


def test_an_unknown_status_from_someone_else_is_ignored_at_once(post, db):
    post(status_body("read", wa_id="NOT-OURS", from_me=False))
    assert WebhookEvent.objects.get().state == "ignored"


# --- message.sent and echoes -------------------------------------------------------------------


def test_message_sent_links_the_whatsapp_id(post, db):
    row = outbound_row(provider_msg_id=100123)
    post("message_sent")
    row.refresh_from_db()
    assert row.wa_id == WA_ID
    assert WebhookEvent.objects.get().state == "processed"


def test_message_sent_with_the_msg_id_at_data_id(post, db):
    row = outbound_row(phone="593992223344", provider_msg_id=100124)
    post("message_sent_data_id")
    row.refresh_from_db()
    assert row.wa_id == "3EB0C0FFEE0000000004"


def test_message_sent_for_an_unknown_send_waits(post, db):
    post("message_sent")
    event = WebhookEvent.objects.get()
    assert event.state == "pending"
    assert not Message.objects.exists()


def test_message_sent_never_relinks_a_row(post, db):
    row = outbound_row(provider_msg_id=100123, wa_id="SOMETHING-ELSE")
    post("message_sent")
    row.refresh_from_db()
    assert row.wa_id == "SOMETHING-ELSE"
    assert WebhookEvent.objects.get().state == "ignored"


def test_echo_after_message_sent_is_one_row(post, db):
    row = outbound_row(provider_msg_id=100123, body="Son $12.99, te envío el link de pago")
    post("message_sent")
    post("messages_upsert_fromme_echo")
    assert list(Message.objects.values_list("pk", "wa_id", "author_kind")) == [
        (row.pk, WA_ID, "agent")
    ]


def test_echo_before_message_sent_is_merged_into_one_row(post, db):
    row = outbound_row(provider_msg_id=100123, body="Son $12.99, te envío el link de pago")
    post("messages_upsert_fromme_echo")
    assert Message.objects.filter(author_kind="phone").count() == 1  # for now, a phone row
    post("messages_update_status_string_list")  # read, applied to the phone row
    post("message_sent")
    row.refresh_from_db()
    assert list(Message.objects.values_list("pk", flat=True)) == [row.pk]
    assert (row.wa_id, row.author_kind, row.status) == (WA_ID, "agent", "read")
    assert row.read_at == at(1764001020)
    assert set(WebhookEvent.objects.values_list("state", flat=True)) == {"processed"}


def test_message_info_links_through_the_same_service(db, post):
    """The sweeper learns msgId -> key.id from message info (message_info.json)."""
    from inbox.services import message_wa_id_link

    info = fixture_load("message_info")["data"]
    row = outbound_row(provider_msg_id=info["msgId"], status="unknown")
    post("messages_upsert_fromme_echo")
    assert message_wa_id_link(provider_msg_id=info["msgId"], wa_id=info["key"]["id"]) == "linked"
    assert list(Message.objects.values_list("pk", "wa_id")) == [(row.pk, WA_ID)]
    row.refresh_from_db()
    assert row.status == "sent"  # the echo's "sent" lifts "unknown"


def test_a_message_typed_on_the_phone_is_stored_as_outbound(post):
    post("messages_upsert_phone_typed")
    message = Message.objects.get()
    assert (message.direction, message.author_kind, message.status) == ("out", "phone", "sent")
    assert message.body == "Listo Carlos, ya quedó activado"
    assert message.sent_at == message.created_at == at(1764000860)
    conversation = Conversation.objects.get()
    assert conversation.unread_count == 0
    assert conversation.last_message_preview == "Listo Carlos, ya quedó activado"
    assert conversation.customer.name == ""  # pushName on our own message is our name


def test_a_phone_message_echoed_twice_is_one_row(post):
    post("messages_upsert_phone_typed")
    post("messages_upsert_phone_typed")
    assert Message.objects.count() == 1


# --- session ------------------------------------------------------------------------------------


def test_it_stores_the_session_status(post, db):
    post("session_status")
    state = SessionState.objects.get()
    assert (state.session, state.status) == ("session-123", "disconnected")


def test_it_lower_cases_the_session_status(post, db):
    post("session_status")
    post("session_status_upper")
    assert SessionState.objects.get(session="session-123").status == "need_scan"


def test_an_older_session_status_does_not_win(post, db):
    post("session_status_upper")  # 1764002100
    post("session_status")  # 1764002000, late
    assert SessionState.objects.get().status == "need_scan"


def test_unknown_events_are_recorded_and_ignored(post, db):
    assert post("unknown_event").status_code == 200
    event = WebhookEvent.objects.get()
    assert (event.state, event.error) == ("ignored", "evento desconocido: chats.update")


def test_group_receipts_are_recorded_and_ignored(post, db):
    post({"event": "message-receipt.update", "data": [{"key": {"id": "X"}}]})
    assert WebhookEvent.objects.get().state == "ignored"
