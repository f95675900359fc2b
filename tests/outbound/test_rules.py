"""Auto-replies, opt-out / opt-in and the away message, driven through the real webhook."""

import itertools
from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.utils import timezone

from customers.models import Customer
from inbox.models import Conversation, Message
from outbound import rules
from outbound.models import AutomationSettings, AutoReplyRule, InboundReaction, MessageTemplate
from outbound.rules import inbound_react, keyword_match, keyword_normalize, keywords_parse
from outbound.segments import segment_count
from outbound.services import message_send
from tests.outbound.automations import in_memory_layer  # noqa: F401

PHONE = "593968196046"
_ids = itertools.count(1)


def payload(text: str, *, wa_id: str | None = None, phone: str = PHONE, at=None) -> dict:
    seconds = int((at or timezone.now()).timestamp())
    jid = f"{phone}@s.whatsapp.net"
    return {
        "event": "messages.received",
        "timestamp": seconds,
        "data": {
            "messages": {
                "key": {
                    "id": wa_id or f"3EBTESTRULES{next(_ids):08d}",
                    "fromMe": False,
                    "remoteJid": jid,
                    "addressingMode": "pn",
                    "senderPn": jid,
                    "cleanedSenderPn": phone,
                },
                "pushName": "María González",
                "messageTimestamp": seconds,
                "messageBody": text,
                "message": {"conversation": text},
            }
        },
    }


@pytest.fixture
def write(client, db, django_capture_on_commit_callbacks, monkeypatch):
    """write("baja") -> the customer's message goes through the real webhook endpoint, and what
    runs after commit runs; the rules' job runs at once, as the worker would run it."""
    monkeypatch.setattr(rules.inbound_react_actor, "send", rules.inbound_react_actor.fn)

    def send(text: str = "", *, body: dict | None = None, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(
                "/webhooks/wasender/",
                body or payload(text, **kwargs),
                content_type="application/json",
                headers={"X-Webhook-Signature": "dev-webhook-secret"},
            )
        assert response.status_code == 200
        return response

    return send


@pytest.fixture
def open_hours(db):
    """Business open around the clock, every day: no away message in the way."""
    AutomationSettings.objects.update_or_create(pk=1, defaults={"away_enabled": False})


def bot_replies() -> list[str]:
    return list(
        Message.objects.filter(author_kind="bot").order_by("id").values_list("body", flat=True)
    )


def maria() -> Customer:
    return Customer.objects.get(phone="+" + PHONE)


# --- keyword matching -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "normal"),
    [
        ("si", "si"),
        ("SÍ", "si"),
        ("Sí.", "si"),
        ("  baja ", "baja"),
        ("No más", "no mas"),
        ("STOP!", "stop"),
        ("¡¡Sí!! 👍", "si"),
        ("DESUSCRIBIR 🙏", "desuscribir"),
        ("", ""),
    ],
)
def test_it_normalises_case_accents_punctuation_and_emoji(text, normal):
    assert keyword_normalize(text) == normal


def test_it_matches_exact_and_whole_words_when_contained():
    keywords = keywords_parse("SÍ, no más,, URGENTE ")
    assert keywords == ["si", "no mas", "urgente"]
    assert keyword_match(keyword_normalize("Sí."), keywords, exact=True) == "si"
    assert keyword_match(keyword_normalize("si quiero"), keywords, exact=True) is None
    assert keyword_match(keyword_normalize("Es URGENTE!!"), keywords, exact=False) == "urgente"
    assert keyword_match(keyword_normalize("sigo esperando"), keywords, exact=False) is None
    assert keyword_match(keyword_normalize("No más, gracias"), keywords, exact=False) == "no mas"


# --- opt-out / opt-in -----------------------------------------------------------------------
@pytest.mark.parametrize("word", ["baja", "  BAJA ", "Stop!", "No más", "desuscribir"])
def test_it_opts_a_customer_out_with_any_opt_out_keyword(write, open_hours, word):
    write(word)
    customer = maria()
    assert customer.marketing_opt_out_at is not None
    assert customer.marketing_opt_out_reason == f"Pidió la baja por WhatsApp: {word.strip()}"
    assert bot_replies() == ["Listo, no te enviaremos más promociones. Escribe ALTA para volver."]


def test_it_confirms_the_opt_out_once_even_if_the_webhook_is_replayed(write, open_hours):
    body = payload("BAJA")
    write(body=body)
    write(body=body)
    write(body=body)
    assert Message.objects.filter(direction="in").count() == 1
    assert len(bot_replies()) == 1


def test_it_confirms_once_when_the_customer_writes_baja_again(write, open_hours):
    write("baja")
    write("BAJA!!")
    assert len(bot_replies()) == 1
    assert maria().marketing_opt_out_reason == "Pidió la baja por WhatsApp: baja"


def test_it_leaves_the_opted_out_customer_out_of_the_next_marketing_audience(write, open_hours):
    write("hola")
    assert segment_count({}) == (1, 0)
    write("baja")
    assert segment_count({}) == (0, 1)
    write("ALTA")
    assert segment_count({}) == (1, 0)


def test_an_opt_out_cancels_the_customers_waiting_marketing_at_once(write, open_hours):
    write("hola")
    customer = maria()
    promo = message_send(customer=customer, text="Promo", author_kind="campaign", marketing=True)
    later = message_send(
        customer=customer,
        text="Promo de mañana",
        author_kind="campaign",
        marketing=True,
        scheduled_for=timezone.now() + timedelta(days=1),
    )
    notice = message_send(customer=customer, text="Tu Netflix vence mañana", author_kind="reminder")
    write("BAJA")
    statuses = {m.pk: (m.status, m.failure_reason) for m in Message.objects.all()}
    cancelled = ("cancelled", "Cancelado: el cliente se dio de baja de la publicidad.")
    assert statuses[promo.pk] == statuses[later.pk] == cancelled
    assert statuses[notice.pk] == ("queued", "")


def test_an_opt_out_from_long_ago_still_counts_without_a_reply(write, open_hours):
    """A phone syncing a backlog, or workers down for a day: the customer asked anyway."""
    asked = timezone.now() - timedelta(days=2)
    write("BAJA", at=asked)
    customer = maria()
    assert customer.marketing_opt_out_at == asked.replace(microsecond=0)
    assert bot_replies() == []
    assert InboundReaction.objects.get().action == "opt_out"


def test_it_brings_the_customer_back_with_alta(write, open_hours):
    write("baja")
    write("Alta")
    customer = maria()
    assert customer.marketing_opt_out_at is None
    assert customer.marketing_opt_out_reason == ""
    assert bot_replies()[-1].startswith("¡Listo! Volverás a recibir nuestras promociones.")
    write("alta")
    assert len(bot_replies()) == 2  # already in: nothing to confirm


def test_it_tells_the_agents_about_the_opt_out(write, open_hours):
    write("hola")
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)("inbox", channel)
    write("BAJA")
    events = []
    while layer.channels.get(channel) and not layer.channels[channel].empty():
        events.append(async_to_sync(layer.receive)(channel))
    conversation_id = Conversation.objects.get().id
    kinds = [(e["type"], e["conversation_id"]) for e in events]
    assert ("conversation.updated", conversation_id) in kinds
    assert ("message.created", conversation_id) in kinds  # the confirmation


# --- keyword rules -------------------------------------------------------------------------
@pytest.mark.parametrize("word", ["si", "SÍ", "Sí.", "sí 👍"])
def test_it_tags_an_interested_customer_and_replies(write, open_hours, word):
    write(word)
    assert list(maria().tags.values_list("name", flat=True)) == ["interesado"]
    assert bot_replies() == [MessageTemplate.objects.get(name="Respuesta: interesado").body]
    reply = Message.objects.get(author_kind="bot")
    assert (reply.direction, reply.status) == ("out", "queued")
    assert reply.reply_to == Message.objects.get(direction="in")


def test_an_auto_reply_answers_the_conversation_but_leaves_it_unread(write, open_hours):
    write("si")
    conversation = Conversation.objects.get()
    assert (conversation.status, conversation.unread_count) == ("answered", 1)


def test_an_opt_out_confirmation_answers_the_conversation(write, open_hours):
    write("baja")
    assert Conversation.objects.get().status == "answered"


def test_it_escalates_urgente_and_answers_with_the_support_template(write, open_hours):
    write("Por favor es URGENTE, no me funciona")
    conversation = Conversation.objects.get()
    assert conversation.urgent is True
    assert bot_replies() == [MessageTemplate.objects.get(name="Respuesta: urgente").body]


def test_it_renders_the_rule_template_for_the_customer_and_assigns(write, open_hours, bob):
    template = MessageTemplate.objects.create(
        name="Precio", category="support", body="Hola {nombre}, te paso los precios."
    )
    AutoReplyRule.objects.create(
        name="Precios",
        keywords="precio, precios",
        match="contains",
        template=template,
        assign_to=bob,
        priority=1,
    )
    write("¿Cuál es el precio de Netflix?")
    assert bot_replies() == ["Hola María, te paso los precios."]
    assert Conversation.objects.get().assignee == bob


def test_it_skips_a_reply_it_cannot_fill_but_still_acts(write, open_hours):
    template = MessageTemplate.objects.create(
        name="Servicio", category="support", body="Tu {servicio} está activo."
    )
    AutoReplyRule.objects.create(
        name="Estado",
        keywords="estado",
        match="exact",
        template=template,
        tag="consulta",
        priority=1,
    )
    write("Estado")
    assert bot_replies() == []
    assert list(maria().tags.values_list("name", flat=True)) == ["consulta"]
    reaction = InboundReaction.objects.get()
    assert "{servicio}" in reaction.note


def test_it_answers_a_rule_once_per_cooldown_in_a_conversation(write, open_hours):
    write("URGENTE")
    write("urgente!!")
    assert len(bot_replies()) == 1
    message = Message.objects.filter(direction="in").last()
    InboundReaction.objects.filter(pk=message.pk).delete()
    later = timezone.now() + timedelta(minutes=11)
    assert "reply" in inbound_react(message.pk, now=later)
    assert len(bot_replies()) == 2


def test_it_never_answers_the_bot_itself_nor_the_same_message_twice(write, open_hours):
    write("si")
    reply = Message.objects.get(author_kind="bot")
    assert inbound_react(reply.pk) == ""
    inbound = Message.objects.get(direction="in")
    assert inbound_react(inbound.pk) == ""
    assert len(bot_replies()) == 1


def test_it_ignores_our_own_messages_typed_on_the_phone(write, open_hours):
    body = payload("si")
    body["data"]["messages"]["key"]["fromMe"] = True
    write(body=body)
    assert bot_replies() == []
    assert not InboundReaction.objects.exists()


def test_it_does_not_answer_a_message_from_long_ago(write, open_hours):
    write("si", at=timezone.now() - timedelta(days=2))
    assert bot_replies() == []
    assert InboundReaction.objects.get().action == "none"


# --- away message ------------------------------------------------------------------------
@pytest.fixture
def closed(db):
    AutomationSettings.objects.update_or_create(
        pk=1, defaults={"business_hours": {}, "away_enabled": True, "away_every_hours": 12}
    )


def away_text() -> str:
    return AutomationSettings.objects.get(pk=1).away_message


def test_it_sends_the_away_message_once_per_window(write, closed):
    write("hola")
    write("¿hay alguien?")
    write("hola??")
    assert bot_replies() == [away_text()]
    message = Message.objects.filter(direction="in").last()
    InboundReaction.objects.filter(pk=message.pk).delete()
    assert inbound_react(message.pk, now=timezone.now() + timedelta(hours=11)) == "none"
    InboundReaction.objects.filter(pk=message.pk).delete()
    assert inbound_react(message.pk, now=timezone.now() + timedelta(hours=13)) == "away"
    assert bot_replies() == [away_text(), away_text()]


def test_the_away_message_goes_out_on_the_number_the_customer_wrote_to(closed):
    from inbox.models import Channel

    Channel.objects.create(key="soporte", name="Soporte", provider="cloudapi", account="123")
    customer = Customer.objects.create(phone="+593968196046", name="María")
    conversation = Conversation.objects.create(customer=customer, channel_id="soporte")
    message = Message.objects.create(
        conversation=conversation,
        direction="in",
        author_kind="customer",
        body="hola",
        status="received",
        wa_id="wamid.1",
    )
    assert inbound_react(message.pk) == "away"
    [reply] = Message.objects.filter(author_kind="bot")
    assert reply.conversation_id == conversation.pk


def test_the_away_message_leaves_the_conversation_new_for_the_agents(write, closed):
    write("hola")
    assert bot_replies() == [away_text()]
    assert Conversation.objects.get().status == "new"


def test_it_answers_a_keyword_and_says_it_is_closed(write, closed):
    write("si")
    assert bot_replies() == [
        MessageTemplate.objects.get(name="Respuesta: interesado").body,
        away_text(),
    ]


def test_it_does_not_add_the_away_message_to_an_opt_out(write, closed):
    write("baja")
    assert len(bot_replies()) == 1


def test_it_stays_quiet_inside_business_hours(write, db):
    all_day = {str(day): ["00:00", "23:59:59.999999"] for day in range(7)}
    AutomationSettings.objects.update_or_create(pk=1, defaults={"business_hours": all_day})
    write("hola")
    assert bot_replies() == []
    assert InboundReaction.objects.get().action == "none"
