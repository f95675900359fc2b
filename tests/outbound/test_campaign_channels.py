"""Campaigns and reminders on several WhatsApp numbers (issue 20, point 4): a campaign picks its
channel (form, API, page), its fan-out writes into each customer's conversation on that
channel, a reminder rule goes out from its own; and a Cloud API number's messaging limit
(distinct customers in 24 h) stops the fan-out before it and says so."""

from datetime import date, time, timedelta

import dramatiq
import pytest
from django.urls import reverse
from django.utils import timezone

from chatdesk.models import ApiToken
from customers.models import Customer
from inbox import channels
from inbox.models import DEFAULT_CHANNEL, Channel, Conversation, Message
from outbound.campaigns import (
    CampaignInvalid,
    campaign_create,
    campaign_duplicate,
    campaign_fanout_step,
    campaign_launch,
    campaign_waiting,
)
from outbound.models import (
    Campaign,
    CampaignRecipient,
    MessageTemplate,
    MetaTemplate,
    ReminderRule,
)
from outbound.reminders import reminders_run
from tests.outbound.automations import at, customer_with, in_memory_layer  # noqa: F401

R = CampaignRecipient.State


@pytest.fixture(autouse=True)
def broker_empty():
    dramatiq.get_broker().flush_all()
    yield
    dramatiq.get_broker().flush_all()


@pytest.fixture
def soporte(db):
    channels.labels_forget()
    channel = Channel.objects.create(
        key="soporte",
        name="Soporte",
        provider=Channel.Provider.CLOUDAPI,
        account="106540352242922",
        colour="blue",
    )
    yield channel
    channels.labels_forget()


@pytest.fixture
def promo(soporte):
    """A template linked to a Meta template approved on Soporte (a Cloud API number sends
    campaigns only as one)."""
    MetaTemplate.objects.create(
        channel=soporte, name="promo_mes", language="es", status="APPROVED", params_count=1
    )
    return MessageTemplate.objects.create(
        name="Promo",
        category="marketing",
        body="Hola {nombre}",
        meta_name="promo_mes",
        meta_language="es",
        meta_params=["nombre"],
    )


def book(count: int) -> list[Customer]:
    return Customer.objects.bulk_create(
        Customer(name=f"Cliente {i}", phone=f"+5939811{i:05d}") for i in range(count)
    )


def launched(**kwargs) -> Campaign:
    campaign = campaign_create(
        title="Promo",
        body="Hola {nombre}",
        filters={},
        window_start=time(0, 0),
        window_end=time(23, 59, 59),
        **kwargs,
    )
    campaign_launch(campaign_id=campaign.pk)
    campaign.refresh_from_db()
    return campaign


def step(campaign: Campaign):
    return campaign_fanout_step(campaign_id=campaign.pk, token=campaign.fanout_token, paced=False)


# --- a campaign picks its channel -------------------------------------------------------------


def test_the_fan_out_writes_into_each_customers_conversation_on_the_campaigns_channel(promo):
    ana, beto = book(2)
    on_default = Conversation.objects.create(customer=ana)  # she wrote to the default number
    campaign = launched(channel="soporte", template=promo)
    assert campaign.channel_id == "soporte"
    step(campaign)
    messages = Message.objects.filter(author_kind="campaign")
    assert messages.count() == 2
    assert {m.conversation.channel_id for m in messages} == {"soporte"}
    assert {m.conversation.customer_id for m in messages} == {ana.pk, beto.pk}
    assert not on_default.messages.exists()


def test_a_campaign_goes_out_from_the_default_channel_unless_told(soporte):
    book(1)
    campaign = launched()
    assert campaign.channel_id == DEFAULT_CHANNEL
    step(campaign)
    assert Message.objects.get().conversation.channel_id == DEFAULT_CHANNEL


def test_it_refuses_an_unknown_or_inactive_channel(soporte):
    for key in ("nadie", "soporte"):
        if key == "soporte":
            Channel.objects.filter(key=key).update(active=False)
        with pytest.raises(CampaignInvalid) as refused:
            campaign_create(title="x", body="Hola", filters={}, channel=key)
        assert refused.value.errors == {
            "channel": "Ese número de WhatsApp no existe o está desactivado."
        }
    assert not Campaign.objects.exists()


def test_the_form_offers_the_channels_only_when_there_are_several(client_for, carla):
    client = client_for(carla)
    assert 'name="channel"' not in client.get(reverse("outbound:campaign_new")).text
    Channel.objects.create(key="sucursal", name="Sucursal", provider="wasender", account="s-2")
    channels.labels_forget()
    page = client.get(reverse("outbound:campaign_new")).text
    assert 'name="channel"' in page and ">Sucursal</option>" in page
    response = client.post(
        reverse("outbound:campaign_new"),
        {
            "title": "Promo sucursal",
            "kind": "marketing",
            "body": "Hola {nombre}",
            "audience": "preset:all",
            "when": "draft",
            "window_start": "09:00",
            "window_end": "20:00",
            "channel": "sucursal",
        },
    )
    campaign = Campaign.objects.get()
    assert response.status_code == 302 and campaign.channel_id == "sucursal"
    detail = client.get(reverse("outbound:campaign_detail", args=[campaign.pk])).text
    assert "desde el número Sucursal" in detail
    channels.labels_forget()


def test_the_form_refuses_a_channel_it_does_not_offer(client_for, carla, soporte):
    response = client_for(carla).post(
        reverse("outbound:campaign_new"),
        {
            "title": "Promo",
            "kind": "marketing",
            "body": "Hola",
            "audience": "preset:all",
            "when": "draft",
            "window_start": "09:00",
            "window_end": "20:00",
            "channel": "nadie",
        },
    )
    assert response.status_code == 200 and not Campaign.objects.exists()
    assert "Escoja una opción válida" in response.text


def test_the_api_takes_and_shows_the_channel_with_a_spanish_error(client, carla, promo):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {ApiToken.issue(user=carla, name='t')[1]}"}
    body = {"title": "Promo", "template_id": promo.pk, "filters": {}, "channel": "soporte"}
    created = client.post("/api/v1/campaigns", body, content_type="application/json", **headers)
    assert created.status_code == 201 and created.json()["channel"] == "soporte"
    assert Campaign.objects.get().channel_id == "soporte"
    body["channel"] = "nadie"
    refused = client.post("/api/v1/campaigns", body, content_type="application/json", **headers)
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"] == ["body", "payload", "channel"]
    assert refused.json()["detail"][0]["msg"] == (
        "Ese número de WhatsApp no existe o está desactivado."
    )
    assert Campaign.objects.count() == 1


def test_a_duplicate_keeps_the_channel(promo):
    campaign = campaign_create(title="Promo", template=promo, filters={}, channel="soporte")
    assert campaign_duplicate(campaign=campaign).channel_id == "soporte"


# --- reminder rules -----------------------------------------------------------------------------

MONDAY = date(2026, 3, 2)


def test_a_reminder_rule_goes_out_from_its_channel(soporte):
    ReminderRule.objects.exclude(days_from_expiry=-3).update(active=False)
    ReminderRule.objects.filter(days_from_expiry=-3).update(channel="soporte")
    subscription = customer_with("+593990000001", expires_on=MONDAY + timedelta(days=3))
    reminders_run(now=at(MONDAY, 10))
    message = Message.objects.get(author_kind="reminder")
    assert message.conversation.channel_id == "soporte"
    assert message.conversation.customer_id == subscription.customer_id


def test_a_new_reminder_rule_defaults_to_the_default_channel(db):
    template = MessageTemplate.objects.create(name="t", category="notification", body="Hola")
    assert ReminderRule.objects.create(name="r", template=template).channel_id == DEFAULT_CHANNEL


def test_the_reminder_form_offers_the_channels_only_when_there_are_several(client_for, alice):
    client = client_for(alice)
    url = reverse("outbound:automation_reminder_create")
    assert 'name="channel"' not in client.get(url).text
    Channel.objects.create(key="soporte", name="Soporte", provider="cloudapi", account="1")
    assert 'name="channel"' in client.get(url).text


def test_a_reminder_on_a_cloud_api_number_needs_an_approved_linked_template(
    client_for, alice, promo
):
    unlinked = MessageTemplate.objects.create(name="Libre", category="notification", body="Hola")
    form = {
        "name": "Aviso",
        "kind": "expiry",
        "days_from_expiry": "-3",
        "window_start": "09:00",
        "window_end": "20:00",
        "include_opted_out": "on",
        "channel": "soporte",
        "active": "on",
    }
    url = reverse("outbound:automation_reminder_create")
    refused = client_for(alice).post(url, {**form, "template": unlinked.pk})
    assert refused.status_code == 200
    assert "no está vinculada a ninguna plantilla de Meta" in refused.text
    assert not ReminderRule.objects.filter(name="Aviso").exists()
    client_for(alice).post(url, {**form, "template": promo.pk})
    assert ReminderRule.objects.get(name="Aviso").channel_id == "soporte"


# --- Meta's messaging limit ---------------------------------------------------------------------


def reached_before(channel_key: str, customers: list[Customer], *, ago: timedelta, **fields):
    """Business-initiated messages that reached these customers `ago` (a reminder each)."""
    conversations = Conversation.objects.bulk_create(
        Conversation(customer=c, channel_id=channel_key) for c in customers
    )
    fields.setdefault("author_kind", "reminder")
    fields.setdefault("status", "delivered")
    Message.objects.bulk_create(
        Message(
            conversation=c,
            direction="out",
            body="Hola",
            created_at=timezone.now() - ago,
            **fields,
        )
        for c in conversations
    )


def test_it_stops_before_meta_limit_and_says_until_when(promo):
    Channel.objects.filter(key="soporte").update(daily_customer_limit=5)
    channels.labels_forget()
    earlier = book(7)
    reached_before("soporte", earlier[:3], ago=timedelta(hours=20))
    # Not counted: older than 24 h, an agent's reply, another number, a failed send.
    reached_before("soporte", earlier[3:4], ago=timedelta(hours=25))
    reached_before("soporte", earlier[4:5], ago=timedelta(hours=1), author_kind="agent")
    reached_before(DEFAULT_CHANNEL, earlier[5:6], ago=timedelta(hours=1))
    reached_before("soporte", earlier[6:7], ago=timedelta(hours=1), status="failed")
    Customer.objects.filter(pk__in=[c.pk for c in earlier]).update(
        marketing_opt_out_at=timezone.now()
    )
    book_now = Customer.objects.bulk_create(
        Customer(name=f"Nuevo {i}", phone=f"+5939822{i:05d}") for i in range(4)
    )
    campaign = launched(channel="soporte", template=promo)
    assert campaign.recipients_total == 4

    delay = step(campaign)
    assert Message.objects.filter(author_kind="campaign").count() == 2  # 3 + 2 = the limit
    assert delay is not None and delay > 0
    campaign.refresh_from_db()
    held = step(campaign)
    assert Message.objects.filter(author_kind="campaign").count() == 2
    assert timedelta(hours=3, minutes=59) < timedelta(seconds=held) <= timedelta(hours=4)

    now = timezone.now()
    waiting = campaign_waiting(campaign=campaign, now=now)
    until = timezone.localtime(waiting.until)
    assert waiting.code == "meta_limit"
    assert abs(waiting.until - (now + timedelta(hours=4))) < timedelta(minutes=1)
    when = "sigue a las" if until.date() == timezone.localtime(now).date() else "sigue mañana a las"
    assert waiting.text == (
        f"Pausada por el límite de Meta: 5 clientes en 24 h en el número Soporte; "
        f"{when} {until:%H:%M}"
    )
    assert {r.customer_id for r in campaign.recipients.filter(state=R.PENDING)} < {
        c.pk for c in book_now
    }


def test_the_waiting_reason_shows_on_the_campaign_page(client_for, carla, promo):
    Channel.objects.filter(key="soporte").update(daily_customer_limit=1000)
    channels.labels_forget()
    reached_before("soporte", book(1000), ago=timedelta(hours=1), marketing=True)
    Customer.objects.update(marketing_opt_out_at=timezone.now())
    Customer.objects.create(name="Nueva", phone="+593982299999")
    campaign = launched(channel="soporte", template=promo)
    step(campaign)
    assert not Message.objects.filter(author_kind="campaign").exists()
    page = client_for(carla).get(reverse("outbound:campaign_detail", args=[campaign.pk])).text
    assert "Pausada por el límite de Meta" in page
    assert "1.000 clientes en 24 h en el número Soporte; sigue" in page


def test_a_cloud_api_number_without_a_tier_has_no_such_limit(promo):
    book(3)
    campaign = launched(channel="soporte", template=promo)  # no tier set
    step(campaign)
    assert Message.objects.filter(author_kind="campaign").count() == 3
    assert campaign_waiting(campaign=campaign) is None


# --- an audience split over several numbers ---------------------------------------------------


def channel_of(recipient: CampaignRecipient) -> str:
    return recipient.campaign.channel_of(recipient.channel)


def test_a_split_campaign_sends_each_customer_once_from_the_number_they_write_to_else_evenly(
    promo,
):
    customers = book(9)
    # Two already talk to Soporte, one to the default number (newest conversation wins).
    for customer in customers[:2]:
        Conversation.objects.create(customer=customer, channel_id="soporte")
    Conversation.objects.create(customer=customers[2], channel_id="soporte")
    Conversation.objects.create(
        customer=customers[2], channel_id=DEFAULT_CHANNEL, last_message_at=timezone.now()
    )
    campaign = launched(template=promo, split_channels=["soporte"])
    assert campaign.channel_keys == [DEFAULT_CHANNEL, "soporte"]
    by_customer = {
        r.customer_id: channel_of(r) for r in campaign.recipients.select_related("campaign")
    }
    assert by_customer[customers[0].pk] == by_customer[customers[1].pk] == "soporte"
    assert by_customer[customers[2].pk] == DEFAULT_CHANNEL
    # The six others dealt evenly: with the three above, the numbers end at 5 and 4.
    counts = sorted(list(by_customer.values()).count(key) for key in campaign.channel_keys)
    assert counts == [4, 5]
    while step(campaign) is not None and campaign.recipients.filter(state=R.PENDING).exists():
        campaign.refresh_from_db()
    messages = Message.objects.filter(author_kind="campaign").select_related("conversation")
    assert messages.count() == 9
    assert {m.conversation.customer_id: m.conversation.channel_id for m in messages} == by_customer


def test_a_number_at_its_meta_limit_is_dealt_only_what_it_still_has_room_for(promo):
    Channel.objects.filter(key="soporte").update(daily_customer_limit=3)
    channels.labels_forget()
    reached_before("soporte", book(2), ago=timedelta(hours=2))
    Customer.objects.update(marketing_opt_out_at=timezone.now())
    Customer.objects.bulk_create(
        Customer(name=f"Nuevo {i}", phone=f"+5939833{i:05d}") for i in range(8)
    )
    campaign = launched(template=promo, split_channels=["soporte"])
    keys = [channel_of(r) for r in campaign.recipients.select_related("campaign")]
    assert keys.count("soporte") == 1 and keys.count(DEFAULT_CHANNEL) == 7


def test_each_number_is_fanned_out_at_its_own_pace(promo, settings):
    settings.SEND_RATE_PER_MINUTE = 30  # WaSender: one every 2 s, so 1 in the 2 s look-ahead
    Channel.objects.filter(key="soporte").update(sends_per_second=80)
    channels.labels_forget()
    book(40)
    campaign = launched(template=promo, split_channels=["soporte"])
    campaign_fanout_step(campaign_id=campaign.pk, token=campaign.fanout_token)
    queued = Message.objects.filter(author_kind="campaign")
    on_default = queued.filter(conversation__channel_id=DEFAULT_CHANNEL).count()
    on_soporte = queued.filter(conversation__channel_id="soporte").count()
    # Meta's number ramps up from FANOUT_RAMP; WaSender's is held to its rate.
    assert (on_default, on_soporte) == (1, 10)


def test_a_cloud_api_number_without_its_own_pace_takes_metas_default(
    soporte, settings, monkeypatch
):
    settings.META_SENDS_PER_SECOND = 80
    assert soporte.sends_per_second is None and soporte.pace == 80
    assert Channel(key="w", provider="wasender").pace is None
    # The send pipeline asks the limiter for that pace (it once asked for WaSender's).
    from outbound import pipeline, ratelimit

    class Asked(Exception):
        pass

    def bucket(per_second=None):
        raise Asked(per_second)

    monkeypatch.setattr(ratelimit, "bucket", bucket)
    conversation = Conversation.objects.create(customer=book(1)[0], channel_id="soporte")
    message = Message.objects.create(
        conversation=conversation, direction="out", body="Hola", status="queued"
    )
    with pytest.raises(Asked) as asked:
        pipeline.deliver(message.pk, client=object())
    assert asked.value.args == (80,)


def test_the_split_is_validated_kept_by_a_copy_and_shown_per_number(client_for, carla, promo):
    with pytest.raises(CampaignInvalid) as refused:
        campaign_create(title="x", body="Hola", filters={}, split_channels=["nadie"])
    assert refused.value.errors == {
        "split_channels": "Ese número de WhatsApp no existe o está desactivado."
    }
    with pytest.raises(CampaignInvalid) as refused:  # free text cannot go out on Soporte
        campaign_create(title="x", body="Hola", filters={}, split_channels=["soporte"])
    assert "solo se puede enviar una plantilla" in refused.value.errors["template"]
    book(4)
    campaign = launched(template=promo, split_channels=["soporte"])
    assert campaign_duplicate(campaign=campaign).split_channels == ["soporte"]
    step(campaign)
    page = client_for(carla).get(reverse("outbound:campaign_detail", args=[campaign.pk])).text
    assert "repartida entre los números" in page and "Por número" in page
    assert page.count('class="channel-chip') >= 2


def test_the_form_and_the_api_take_the_split(client_for, client, carla, promo):
    page = client_for(carla).get(reverse("outbound:campaign_new")).text
    assert 'name="split_channels"' in page
    response = client_for(carla).post(
        reverse("outbound:campaign_new"),
        {
            "title": "Promo repartida",
            "kind": "marketing",
            "template": promo.pk,
            "body": "",
            "audience": "preset:all",
            "when": "draft",
            "window_start": "09:00",
            "window_end": "20:00",
            "channel": DEFAULT_CHANNEL,
            "split_channels": ["soporte"],
        },
    )
    assert response.status_code == 302, response.text
    assert Campaign.objects.get().split_channels == ["soporte"]
    headers = {"HTTP_AUTHORIZATION": f"Bearer {ApiToken.issue(user=carla, name='t')[1]}"}
    body = {"title": "Promo", "template_id": promo.pk, "filters": {}, "split_channels": ["soporte"]}
    created = client.post("/api/v1/campaigns", body, content_type="application/json", **headers)
    assert created.status_code == 201 and created.json()["split_channels"] == ["soporte"]
    body["split_channels"] = "soporte"
    refused = client.post("/api/v1/campaigns", body, content_type="application/json", **headers)
    assert refused.status_code == 422


@pytest.mark.django_db(transaction=True)
def test_two_campaigns_fanning_out_at_once_never_pass_the_numbers_limit_together(monkeypatch):
    """Each run counts what the number reached and queues within it while holding a lock on
    the number: without it both read the same count and each queues up to the limit. The
    count is made slow, so that both runs are sure to count before either queues."""
    import threading
    import time

    from django.db import connection

    from outbound.campaigns import metalimit

    counted = metalimit.customers_reached

    def slow_count(**kwargs):
        found = counted(**kwargs)
        time.sleep(0.3)
        return found

    monkeypatch.setattr(metalimit, "customers_reached", slow_count)

    if connection.vendor != "postgresql":
        pytest.skip("the lock is PostgreSQL's (SQLite serialises its writers anyway)")
    channels.labels_forget()
    Channel.objects.create(
        key="soporte", name="Soporte", provider="cloudapi", account="1", daily_customer_limit=30
    )
    MetaTemplate.objects.create(
        channel=Channel.objects.get(key="soporte"),
        name="promo_mes",
        language="es",
        status="APPROVED",
        params_count=1,
    )
    template = MessageTemplate.objects.create(
        name="Promo",
        body="Hola {nombre}",
        meta_name="promo_mes",
        meta_language="es",
        meta_params=["nombre"],
    )
    customers = [c.pk for c in book(80)]
    first, second = (launched(channel="soporte", template=template) for _ in range(2))
    # Forty customers each: a customer reached by both would count once at Meta.
    first.recipients.filter(customer_id__in=customers[40:]).delete()
    second.recipients.filter(customer_id__in=customers[:40]).delete()
    start = threading.Barrier(2)

    def fan_out(campaign: Campaign) -> None:
        try:
            start.wait()
            for _ in range(4):
                campaign_fanout_step(
                    campaign_id=campaign.pk, token=campaign.fanout_token, paced=False
                )
        finally:
            connection.close()

    threads = [threading.Thread(target=fan_out, args=(c,)) for c in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    reached = (
        Message.objects.filter(author_kind="campaign", conversation__channel_id="soporte")
        .values("conversation__customer_id")
        .distinct()
        .count()
    )
    assert reached == 30
    channels.labels_forget()
