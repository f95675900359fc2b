"""Inbound messages through the real endpoint: every shape, customers, LIDs, duplicates."""

import copy
from datetime import UTC, datetime

import pytest
from django.utils import timezone

from customers.models import Customer
from inbox.models import Conversation, Message, WebhookEvent
from tests.inbox.conftest import fixture_load


def at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


def test_it_stores_a_received_text(post):
    assert post("messages_received_text").status_code == 200
    message = Message.objects.get()
    assert (message.wa_id, message.direction, message.author_kind) == (
        "3EB0A1B2C3D4E5F60718",
        "in",
        "customer",
    )
    assert (message.status, message.kind, message.body) == (
        "received",
        "text",
        "Gracias, quiero renovar",
    )
    assert message.created_at == at(1764000000)
    customer = message.conversation.customer
    assert (customer.phone, customer.name) == ("+593968196046", "María González")
    assert customer.whatsapp_lid == "201946283747390@lid"


def test_it_updates_the_conversation(post):
    post("messages_received_text")
    conversation = Conversation.objects.get()
    assert conversation.status == "new"
    assert conversation.unread_count == 1
    assert conversation.last_message_at == at(1764000000)
    assert conversation.last_message_preview == "Gracias, quiero renovar"


def test_it_reopens_a_resolved_conversation(post):
    post("messages_upsert_text_list")
    Conversation.objects.update(status="resolved", unread_count=0)
    post("messages_received_text")
    conversation = Conversation.objects.get()
    assert (conversation.status, conversation.unread_count) == ("new", 1)


def test_an_older_message_does_not_rewind_the_preview(post):
    post("messages_upsert_text_list")  # 1764000300
    post("messages_received_text")  # 1764000000, arrives late
    conversation = Conversation.objects.get()
    assert conversation.last_message_at == at(1764000300)
    assert conversation.last_message_preview == "¿Cuánto cuesta?"
    assert conversation.unread_count == 2


def test_a_message_in_the_same_second_moves_the_preview(post):
    post("messages_received_text")  # 1764000000
    same_second = copy.deepcopy(fixture_load("messages_received_text"))
    same_second["data"]["messages"]["key"]["id"] = "3EB0SAMESECOND0001"
    same_second["data"]["messages"]["messageBody"] = "Y otra cosa"
    same_second["data"]["messages"]["message"] = {"conversation": "Y otra cosa"}
    post(same_second)
    conversation = Conversation.objects.get()
    assert conversation.last_message_at == at(1764000000)
    assert conversation.last_message_preview == "Y otra cosa"


def test_it_reads_the_upsert_list(post):
    post("messages_upsert_text_list")
    message = Message.objects.get()
    assert (message.wa_id, message.body) == ("3EB0FF00112233445566", "¿Cuánto cuesta?")


def test_it_reads_the_flat_upsert_with_an_image(post, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        post("messages_upsert_flat_image")
    message = Message.objects.get()
    assert (message.kind, message.body) == ("image", "Este es el comprobante de pago")
    assert message.media_mime == "image/jpeg"
    assert message.media_size == 48213
    assert message.media_url.startswith("https://mmg.whatsapp.net/")
    assert message.media_source["key"]["id"] == "BAE5A93B52084A3B"
    assert "imageMessage" in message.media_source["message"]
    # Phone from the @s.whatsapp.net remoteJid, as no senderPn came.
    assert message.conversation.customer.phone == "+593987654321"
    assert len(callbacks) >= 2  # the media download, the rules hook (and live events)


def test_it_looks_through_the_ephemeral_wrapper(post):
    post("messages_received_ephemeral")
    message = Message.objects.get()
    assert (message.kind, message.body) == ("text", "Hola, ¿tienen Disney+?")


def test_it_looks_through_view_once_v2(post):
    post("messages_upsert_view_once_v2")
    message = Message.objects.get()
    assert (message.kind, message.body, message.media_size) == ("image", "Mira mi pantalla", 91234)
    assert message.conversation.customer.phone == "+593991234567"  # from senderPn


def test_it_looks_through_document_with_caption(post):
    post("messages_upsert_document_with_caption")
    message = Message.objects.get()
    assert (message.kind, message.body) == ("document", "Factura de noviembre")
    assert (message.media_filename, message.media_mime) == (
        "factura-noviembre.pdf",
        "application/pdf",
    )
    assert message.media_size == 204800  # a Baileys {low, high} long


def test_it_reads_millisecond_timestamps(post):
    post("messages_received_ms_timestamp")
    assert Message.objects.get().created_at == at(1764000800.456)


def test_it_reads_string_timestamps(post):
    post("messages_received_string_timestamp")
    message = Message.objects.get()
    assert message.created_at == at(1764000810)
    assert message.body == "¿Me pasan la cuenta para depositar?"


def test_without_a_message_timestamp_it_uses_the_envelope_one(post):
    body = fixture_load("messages_received_text")
    del body["data"]["messages"]["messageTimestamp"]
    body["timestamp"] = 1764000042
    post(body)
    assert Message.objects.get().created_at == at(1764000042)


def test_it_stores_location_and_contact_minimally(post):
    post("messages_received_location")
    post("messages_received_contact")
    location = Message.objects.get(kind="location")
    assert location.body == "Quito, parque La Carolina (-0.1807, -78.4678)"
    assert Message.objects.get(kind="contact").body == "Ana Torres"


@pytest.mark.parametrize(
    "part,kind",
    [
        ("videoMessage", "video"),
        ("audioMessage", "audio"),
        ("stickerMessage", "sticker"),
        ("documentMessage", "document"),
    ],
)
def test_it_stores_every_media_kind(post, part, kind):
    body = fixture_load("messages_upsert_flat_image")
    body["data"]["message"] = {part: body["data"]["message"]["imageMessage"]}
    post(body)
    assert Message.objects.get().kind == kind


def test_text_prefers_message_body_then_conversation_then_extended_text(post):
    body = fixture_load("messages_received_text")
    body["data"]["messages"]["messageBody"] = "del cuerpo"
    post(body)
    assert Message.objects.get().body == "del cuerpo"
    del body["data"]["messages"]["messageBody"]
    body["data"]["messages"]["key"]["id"] = "SECOND"
    body["data"]["messages"]["message"] = {"extendedTextMessage": {"text": "extendido"}}
    post(body)
    assert Message.objects.get(wa_id="SECOND").body == "extendido"


def test_it_ignores_group_messages(post):
    assert post("messages_group_received").status_code == 200
    event = WebhookEvent.objects.get()
    assert (event.state, event.error) == ("ignored", "mensaje de grupo: no se usan")
    assert not Message.objects.exists()
    assert not Customer.objects.exists()


def test_a_participant_key_alone_marks_a_group(post):
    body = fixture_load("messages_received_text")
    body["data"]["messages"]["key"]["participant"] = "593968196046@s.whatsapp.net"
    post(body)
    assert WebhookEvent.objects.get().state == "ignored"


def test_it_never_takes_the_phone_from_a_lid_jid(post):
    post("messages_received_lid_only")
    event = WebhookEvent.objects.get()
    assert event.state == "ignored"
    assert "LID desconocido" in event.error
    assert not Customer.objects.exists()
    assert not Message.objects.exists()


def test_a_lid_seen_beside_a_phone_finds_that_customer_later(post):
    post("messages_received_text")  # carries both the phone and senderLid
    body = fixture_load("messages_received_lid_only")
    body["data"]["messages"]["key"]["remoteJid"] = "201946283747390@lid"
    body["data"]["messages"]["key"]["senderLid"] = "201946283747390@lid"
    post(body)
    assert Customer.objects.count() == 1
    assert Message.objects.filter(conversation__customer__phone="+593968196046").count() == 2


def test_a_lid_remote_jid_with_a_sender_pn_uses_the_phone(post):
    body = fixture_load("messages_received_lid_only")
    body["data"]["messages"]["key"]["senderPn"] = "593992223344@s.whatsapp.net"
    post(body)
    customer = Customer.objects.get()
    assert (customer.phone, customer.whatsapp_lid) == ("+593992223344", "99887766554433@lid")


def test_it_fills_an_empty_name_but_keeps_a_given_one(post):
    post("messages_upsert_fromme_echo")  # our own message: pushName (if any) is ours
    assert Customer.objects.get().name == ""
    post("messages_received_text")
    assert Customer.objects.get().name == "María González"
    body = fixture_load("messages_upsert_text_list")
    body["data"]["messages"][0]["pushName"] = "Mary"
    post(body)
    assert Customer.objects.get().name == "María González"


def test_an_impossible_number_is_ignored_with_a_reason(post):
    body = fixture_load("messages_received_text")
    key = body["data"]["messages"]["key"]
    key["cleanedSenderPn"], key["senderLid"] = "12", ""
    post(body)
    event = WebhookEvent.objects.get()
    assert (event.state, event.error) == ("ignored", "remitente con un número imposible (12)")
    assert not Customer.objects.exists()


def test_a_sender_the_phone_library_calls_invalid_is_still_a_customer(post):
    """WhatsApp delivered it, so the number exists: the library's metadata lags behind."""
    body = fixture_load("messages_received_text")
    key = body["data"]["messages"]["key"]
    key["cleanedSenderPn"], key["senderLid"] = "593944080003", ""
    key["remoteJid"] = "593944080003@s.whatsapp.net"
    post(body)
    assert WebhookEvent.objects.get().state == "processed"
    customer = Customer.objects.get()
    assert (customer.phone, customer.phone_valid) == ("+593944080003", False)
    assert Message.objects.get().conversation.customer == customer


def test_a_message_with_no_sender_at_all_is_ignored_with_a_reason(post):
    body = fixture_load("messages_received_text")
    key = body["data"]["messages"]["key"]
    for field in ("cleanedSenderPn", "senderPn", "senderLid"):
        key.pop(field, None)
    key["remoteJid"] = ""
    post(body)
    event = WebhookEvent.objects.get()
    assert (event.state, event.error) == ("ignored", "mensaje sin remitente")


@pytest.mark.parametrize(
    "event", ["messages.received", "messages-personal.received", "messages.upsert"]
)
def test_the_same_message_under_three_event_names_is_one_row(post, event):
    post("messages_received_text")
    post("messages_personal_received")
    body = fixture_load("messages_received_text")
    body["event"] = event
    if event == "messages.upsert":
        body["data"]["messages"] = [body["data"]["messages"]]
    post(body)
    assert Message.objects.count() == 1
    assert Conversation.objects.get().unread_count == 1
    assert set(WebhookEvent.objects.values_list("state", flat=True)) == {"processed"}


def test_a_message_delivered_three_times_is_one_row(post):
    for _ in range(3):
        assert post("messages_upsert_flat_image").status_code == 200
    assert Message.objects.count() == 1


def test_a_race_on_the_same_message_is_settled_by_the_unique_constraint(post, monkeypatch):
    """Another worker inserted the row after our check: the insert fails, the row is reused."""
    from django.db.models import QuerySet

    from inbox import services

    post("messages_received_text")
    existing = Message.objects.get()
    real_first = QuerySet.first
    monkeypatch.setattr(
        QuerySet, "first", lambda qs: None if qs.model is Message else real_first(qs)
    )
    message, created = services.message_inbound_create(
        conversation=existing.conversation,
        wa_id=existing.wa_id,
        kind="text",
        body="otra vez",
        created_at=existing.created_at,
    )
    assert (message.pk, created) == (existing.pk, False)
    assert Message.objects.count() == 1
    assert Conversation.objects.get().unread_count == 1


def test_the_one_statement_path_stores_the_event_and_the_reaction(post):
    from outbound.models import InboundReaction

    post("messages_received_text")
    again = copy.deepcopy(fixture_load("messages_received_text"))
    again["data"]["messages"]["key"]["id"] = "3EB0ONESTATEMENT01"
    assert post(again).status_code == 200
    message = Message.objects.get(wa_id="3EB0ONESTATEMENT01")
    event = WebhookEvent.objects.order_by("-pk").first()
    assert (event.state, event.error, event.payload) == ("processed", "", again)
    assert event.processed_at is not None and event.retry_at is None
    reaction = InboundReaction.objects.get(message_id=message.pk)
    assert (reaction.conversation_id, reaction.action) == (message.conversation_id, "")
    assert Conversation.objects.get().unread_count == 2
    assert post(again).status_code == 200  # delivered twice: stored once, the event says so
    assert Message.objects.filter(wa_id="3EB0ONESTATEMENT01").count() == 1
    assert WebhookEvent.objects.order_by("-pk").first().error == "ya registrado"
    assert InboundReaction.objects.count() == 2
    assert Conversation.objects.get().unread_count == 2


def test_a_known_customer_message_already_stored_is_not_counted_again(post):
    """The one-statement path (lookup, insert ON CONFLICT, note): a copy of a stored message,
    delivered again or inserted by a racing request first, changes nothing."""
    from inbox import services

    post("messages_received_text")
    existing = Message.objects.get()
    conversation = existing.conversation
    before = Conversation.objects.values("unread_count", "last_message_preview").get()
    message, created, _ = services.message_inbound_create_known(
        phone=conversation.customer.phone,
        channel=conversation.channel_id,
        wa_id=existing.wa_id,
        kind="text",
        body="otra vez",
        created_at=existing.created_at,
    )
    assert created is False
    assert message.conversation.pk == conversation.pk
    assert Message.objects.count() == 1
    assert Message.objects.get().body == existing.body
    assert Conversation.objects.values("unread_count", "last_message_preview").get() == before


def test_the_one_statement_path_needs_the_conversation_on_that_number(post):
    from inbox import services

    post("messages_received_text")
    customer = Message.objects.get().conversation.customer
    found = services.message_inbound_create_known(
        phone=customer.phone,
        channel="otro-numero",
        wa_id="3EB0OTHERCHANNEL01",
        kind="text",
        body="hola",
        created_at=timezone.now(),
    )
    assert found is None
    assert not Message.objects.filter(wa_id="3EB0OTHERCHANNEL01").exists()


def test_protocol_and_reaction_messages_are_not_stored(post):
    body = fixture_load("messages_received_text")
    del body["data"]["messages"]["messageBody"]
    body["data"]["messages"]["message"] = {"reactionMessage": {"text": "👍"}}
    post(body)
    assert WebhookEvent.objects.get().state == "ignored"
    assert not Message.objects.exists()


def test_a_malformed_message_is_ignored_with_the_reason(post):
    body = fixture_load("messages_received_text")
    body["data"]["messages"]["key"]["fromMe"] = "no"
    assert post(body).status_code == 200
    event = WebhookEvent.objects.get()
    assert event.state == "ignored"
    assert event.error == (
        "No se pudo leer el evento: data.messages.key.fromMe: se esperaba verdadero o falso"
    )
    assert not Customer.objects.exists()


def test_a_customer_message_leaves_one_pending_reaction_and_one_job_for_the_worker(
    post, monkeypatch, django_capture_on_commit_callbacks
):
    from outbound import rules
    from outbound.models import InboundReaction

    sent = []
    monkeypatch.setattr(rules.inbound_react_actor, "send", sent.append)
    with django_capture_on_commit_callbacks(execute=True):
        post("messages_received_text")
        post("messages_personal_received")  # the same message again: nothing more
    message = Message.objects.get(direction="in")
    assert sent == [message.pk]
    assert list(InboundReaction.objects.values_list("message_id", "action")) == [(message.pk, "")]


def test_the_worker_reacts_once_to_a_stored_message(
    post, monkeypatch, django_capture_on_commit_callbacks
):
    from outbound import rules
    from outbound.models import InboundReaction

    monkeypatch.setattr(rules.inbound_react_actor, "send", lambda message_id: None)
    with django_capture_on_commit_callbacks(execute=True):
        post("messages_received_text")
    message = Message.objects.get(direction="in")
    assert rules.inbound_react_actor.fn(message.pk) is None
    assert rules.inbound_react(message.pk) == ""  # a second worker finds it done
    reaction = InboundReaction.objects.get()
    assert (reaction.message_id, reaction.action != "") == (message.pk, True)


def test_the_sweep_reacts_to_a_message_whose_job_was_lost(
    post, monkeypatch, django_capture_on_commit_callbacks
):
    from outbound import rules
    from outbound.models import InboundReaction

    monkeypatch.setattr(rules.inbound_react_actor, "send", lambda message_id: None)  # lost
    with django_capture_on_commit_callbacks(execute=True):
        post("messages_received_text")
    assert rules.inbound_reactions_react_due() == 0  # the worker may still be on its way
    later = timezone.now() + rules.SWEEP_AFTER
    assert rules.inbound_reactions_react_due(now=later) == 1
    assert InboundReaction.objects.get().action != ""
    assert rules.inbound_reactions_react_due(now=later) == 0


def test_a_fuzzed_copy_does_not_change_the_fixture(post):
    body = fixture_load("messages_received_text")
    before = copy.deepcopy(body)
    post(body)
    assert body == before


def test_a_known_customer_message_reaches_the_publish_in_few_queries(
    post, django_assert_max_num_queries, django_capture_on_commit_callbacks, postgres
):
    """The path before the live push is one statement (issue 19): the lookup (the
    conversation with its customer, by phone), the message (ON CONFLICT on its wa_id: no
    lookup first, no savepoint), the conversation's note, the pending reaction and the raw
    event, committed alone (no BEGIN, no COMMIT outside a test)."""
    post("messages_received_text")
    again = copy.deepcopy(fixture_load("messages_received_text"))
    again["data"]["messages"]["key"]["id"] = "3EB0QUERYCOUNT0001"
    with django_assert_max_num_queries(1), django_capture_on_commit_callbacks(execute=True) as run:
        assert post(again).status_code == 200
    assert Message.objects.filter(wa_id="3EB0QUERYCOUNT0001").exists()
    assert run  # the push (and the reaction's job) left after the commit
