"""The echo of our own send (messages.upsert with fromMe) may come before the send's answer, or
instead of an answer that was lost: it is matched to our row, never stored as a second one.

The rows here are made by the real services (message_send, then the pipeline's claim), as an
agent's reply, an API send or a campaign leaves them while WaSender is being asked.
"""

import copy
from datetime import timedelta

import pytest
from django.utils import timezone

from customers.models import Customer
from inbox.models import Message, WebhookEvent
from outbound.pipeline import message_claim, message_unconfirmed, sent_record
from outbound.services import message_send, messages_send_bulk
from provider.sending import SendResult
from tests.inbox.conftest import fixture_load

PHONE = "+593968196046"
TEXT = "Son $12.99, te envío el link de pago"  # the echo fixture's text


def claimed(text: str = TEXT, *, author_kind: str = "agent") -> Message:
    """An outbound row in `sending`: the worker is waiting for WaSender's answer."""
    message = message_send(phone=PHONE, text=text, author_kind=author_kind)
    assert message_claim(message)
    message.refresh_from_db()
    return message


def echo(*, wa_id: str = "3EB0C0FFEE0000000001", text: str = TEXT, at=None) -> dict:
    body = fixture_load("messages_upsert_fromme_echo")
    item = body["data"]["messages"][0]
    item["key"]["id"] = wa_id
    item["messageBody"] = text
    item["message"] = {"extendedTextMessage": {"text": text}}
    item["messageTimestamp"] = int((at or timezone.now()).timestamp())
    return body


def message_sent(*, msg_id: int, wa_id: str = "3EB0C0FFEE0000000001") -> dict:
    body = fixture_load("message_sent")
    body["data"]["msgId"], body["data"]["key"]["id"] = msg_id, wa_id
    return body


def outbound() -> list[tuple]:
    return list(
        Message.objects.filter(direction="out")
        .order_by("pk")
        .values_list("author_kind", "status", "wa_id", "provider_msg_id")
    )


def test_an_echo_before_the_answer_is_linked_to_the_row_being_sent(post, db):
    row = claimed()
    post(echo())
    assert outbound() == [("agent", "sent", "3EB0C0FFEE0000000001", None)]
    assert WebhookEvent.objects.get().error == f"eco de nuestro envío {row.pk}"
    sent_record(row, SendResult(provider_id="100123", status="in_progress"))
    assert outbound() == [("agent", "sent", "3EB0C0FFEE0000000001", 100123)]
    post(message_sent(msg_id=100123))
    assert outbound() == [("agent", "sent", "3EB0C0FFEE0000000001", 100123)]


def test_statuses_after_an_early_echo_move_the_same_row(post, db):
    claimed()
    post(echo())
    post("messages_update_status_numeric")
    [(author, status, *_)] = outbound()
    assert (author, status) == ("agent", "delivered")


def test_an_echo_settles_a_send_whose_answer_was_lost(post, db):
    row = claimed()
    assert message_unconfirmed(row, "WaSender no respondió a tiempo.")
    post(echo())
    row.refresh_from_db()
    assert (row.status, row.wa_id) == ("sent", "3EB0C0FFEE0000000001")
    assert row.sent_at is not None
    assert Message.objects.filter(direction="out").count() == 1


def test_an_echo_even_revives_a_send_the_sweeper_called_unknown(post, db):
    row = claimed()
    Message.objects.filter(pk=row.pk).update(status="unknown")
    post(echo())
    assert outbound() == [("agent", "sent", "3EB0C0FFEE0000000001", None)]


def test_message_sent_teaches_the_msg_id_to_a_row_the_echo_linked(post, db):
    row = claimed()
    message_unconfirmed(row, "x")
    post(echo())
    post(message_sent(msg_id=100777))
    assert outbound() == [("agent", "sent", "3EB0C0FFEE0000000001", 100777)]


def test_message_sent_alone_settles_the_one_unconfirmed_send_to_that_customer(post, db):
    row = claimed()
    message_unconfirmed(row, "x")
    post(message_sent(msg_id=100555))
    assert outbound() == [("agent", "sent", "3EB0C0FFEE0000000001", 100555)]


def test_message_sent_alone_does_not_guess_between_two_unconfirmed_sends(post, db):
    for text in ("uno", "dos"):
        message_unconfirmed(claimed(text), "x")
    post(message_sent(msg_id=100555))
    assert [status for _, status, *_ in outbound()] == ["unconfirmed", "unconfirmed"]
    assert WebhookEvent.objects.get().state == "pending"


def test_two_identical_replies_in_flight_take_one_echo_each(post, db):
    first, second = claimed("ok"), claimed("ok")
    post(echo(wa_id="3EB0AAAA", text="ok"))
    post(echo(wa_id="3EB0BBBB", text="ok"))
    assert outbound() == [
        ("agent", "sent", "3EB0AAAA", None),
        ("agent", "sent", "3EB0BBBB", None),
    ]
    assert {first.pk, second.pk} == set(Message.objects.values_list("pk", flat=True))


def test_the_same_echo_delivered_twice_is_still_one_row(post, db):
    claimed()
    post(echo())
    post(echo())
    assert len(outbound()) == 1


def test_an_echo_with_other_text_is_a_message_typed_on_the_phone(post, db):
    claimed("Hola, ¿en qué te ayudo?")
    post(echo(text="Te llamo en 5 minutos"))
    assert [(a, s) for a, s, *_ in outbound()] == [("agent", "sending"), ("phone", "sent")]


def test_an_echo_far_from_the_send_in_time_is_not_ours(post, db):
    row = claimed()
    Message.objects.filter(pk=row.pk).update(sending_at=timezone.now() - timedelta(hours=2))
    post(echo())
    assert [a for a, *_ in outbound()] == ["agent", "phone"]


def test_whitespace_does_not_hide_our_own_text(post, db):
    claimed("Hola  María,\nya está")
    post(echo(text="Hola María, ya está"))
    assert [a for a, *_ in outbound()] == ["agent"]


@pytest.mark.parametrize("author_kind", ["api", "reminder", "bot"])
def test_every_kind_of_send_is_matched(post, db, author_kind):
    claimed(author_kind=author_kind)
    post(echo())
    assert outbound() == [(author_kind, "sent", "3EB0C0FFEE0000000001", None)]


def test_a_campaign_send_is_matched(post, db):
    customer = Customer.objects.create(phone=PHONE, name="María")
    [row] = messages_send_bulk(sends=[(customer.pk, TEXT)], author_kind="campaign")
    message_claim(row)
    post(echo())
    assert outbound() == [("campaign", "sent", "3EB0C0FFEE0000000001", None)]


def test_an_echo_in_a_batch_with_a_customer_message_is_matched_too(post, db):
    claimed()
    body = echo()
    theirs = copy.deepcopy(body["data"]["messages"][0])
    theirs["key"].update(id="3AFROMCUSTOMER", fromMe=False, cleanedSenderPn="593968196046")
    body["data"]["messages"].append(theirs)
    post(body)
    assert [(m.direction, m.author_kind) for m in Message.objects.order_by("pk")] == [
        ("out", "agent"),
        ("in", "customer"),
    ]
