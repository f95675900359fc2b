"""Meta's templates on a Cloud API number, against the Cloud API simulator over HTTP: the sync
and the status webhook, the composer with the window closed, campaigns that need an approved
template, and Meta's marketing cap (131049) retried on a new row."""

import json
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from django.urls import reverse
from django.utils import timezone

from customers.models import Customer, Service, Subscription
from inbox import channels
from inbox.intake import webhook_event_receive
from inbox.models import Channel, Conversation, Message
from outbound import meta_templates
from outbound.campaigns.create import CampaignInvalid, campaign_create
from outbound.campaigns.results import campaign_results
from outbound.models import Campaign, CampaignRecipient, MessageTemplate, MetaSend, MetaTemplate
from outbound.pipeline import deliver
from provider.cloudapi import CloudApiClient
from tests.outbound.helpers import NoWait
from tests.procs import PYTHON, free_port, process_env, running

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "cloudapi"
PNID = "100000000000001"  # the simulator's phone_number_id and WABA
WABA = "200000000000001"
TOKEN = "simulator-token"
PHONE = "+593968196046"


@pytest.fixture(scope="module")
def sim_url():
    port = free_port()
    args = [PYTHON, "manage.py", "cloudapi_sim", "--port", str(port), "--seed", "3"]
    url = f"http://127.0.0.1:{port}"
    with running(args, env=process_env(), ready_url=url + "/_sim/stats"):
        yield url


@pytest.fixture
def sim(sim_url):
    knobs = {"marketing_cap": 0, "async_errors": True, "window_check": True}
    httpx.post(sim_url + "/_sim/config", json=knobs).raise_for_status()
    httpx.post(sim_url + "/_sim/reset").raise_for_status()
    return sim_url


def configure(sim, **knobs):
    httpx.post(sim + "/_sim/config", json=knobs).raise_for_status()


def sent(sim) -> list[dict]:
    return httpx.get(sim + "/_sim/messages").json()


@pytest.fixture
def meta_client(sim):
    client = CloudApiClient(base_url=sim, phone_number_id=PNID, access_token=TOKEN, timeout=5)
    yield client
    client.http.close()


@pytest.fixture
def soporte(db):
    channels._cached.clear()
    channels.labels_forget()
    channel = Channel.objects.create(
        key="soporte",
        name="Soporte",
        provider=Channel.Provider.CLOUDAPI,
        account=PNID,
        waba_id=WABA,
        colour="blue",
    )
    yield channel
    channels._cached.clear()
    channels.labels_forget()


@pytest.fixture
def synced(soporte, meta_client):
    meta_templates.meta_templates_sync(channel=soporte, client=meta_client)
    return soporte


@pytest.fixture
def recordatorio(db):
    return MessageTemplate.objects.create(
        name="Pago por Meta",
        category="notification",
        body="Hola {nombre}, tu suscripción de {servicio} vence mañana.",
        meta_name="recordatorio_pago",
        meta_language="es",
        meta_params=["nombre", "servicio"],
    )


@pytest.fixture
def maria(db):
    customer = Customer.objects.create(phone=PHONE, name="María José Cedeño")
    netflix = Service.objects.create(name="Netflix", normal_price="7.99")
    today = timezone.localdate()
    Subscription.objects.create(
        customer=customer,
        service=netflix,
        price="6.50",
        started_on=today - timedelta(days=30),
        expires_on=today + timedelta(days=1),
    )
    return customer


@pytest.fixture
def conversation(soporte, maria):
    return Conversation.objects.create(customer=maria, channel_id=soporte.key)


def test_it_syncs_meta_templates_with_their_approval_state(synced):
    states = dict(MetaTemplate.objects.filter(channel=synced).values_list("name", "status"))
    assert states["recordatorio_pago"] == "APPROVED"
    assert states["oferta_navidad"] == "REJECTED"
    assert states["encuesta"] == "PAUSED"
    pago = MetaTemplate.objects.get(channel=synced, name="recordatorio_pago")
    assert (pago.params_count, pago.body) == (
        2,
        "Hola {{1}}, tu suscripción de {{2}} vence mañana.",
    )
    assert MetaTemplate.objects.get(name="promo_mes").header_format == "image"


def test_a_template_meta_no_longer_lists_is_marked_deleted(synced, meta_client, sim):
    configure(
        sim,
        templates=[
            {
                "id": "1",
                "name": "bienvenida",
                "language": "es",
                "status": "APPROVED",
                "category": "UTILITY",
                "components": [],
            }
        ],
    )
    meta_templates.meta_templates_sync(channel=synced, client=meta_client)
    assert MetaTemplate.objects.get(name="recordatorio_pago").status == "DELETED"
    assert MetaTemplate.objects.get(name="bienvenida").status == "APPROVED"
    configure(sim, templates=meta_templates_default())


def meta_templates_default():
    from provider.cloudapi.simulator import default_templates

    return default_templates()


def test_the_status_webhook_pauses_a_template(synced):
    payload = json.loads((FIXTURES / "template_status_paused.json").read_text())
    payload["entry"][0]["id"] = WABA
    MetaTemplate.objects.filter(name="recordatorio_pago").update(template_id="594425479261596")
    event = webhook_event_receive(payload=payload, provider=Channel.Provider.CLOUDAPI)
    assert event.state == "processed"
    assert MetaTemplate.objects.get(name="recordatorio_pago").status == "PAUSED"


def test_the_edit_page_shows_the_meta_template_and_its_state(
    client_for, alice, synced, recordatorio
):
    page = client_for(alice).get(reverse("outbound:template_edit", args=[recordatorio.pk]))
    html = page.content.decode()
    assert "recordatorio_pago (es)" in html
    assert "Aprobada" in html
    assert "Sincronizar plantillas con Meta" in html


def test_the_edit_page_saves_the_link_and_refuses_unknown_variables(
    client_for, carla, recordatorio
):
    url = reverse("outbound:template_edit", args=[recordatorio.pk])
    data = {
        "name": recordatorio.name,
        "category": "notification",
        "body": recordatorio.body,
        "meta_name": "recordatorio_pago",
        "meta_language": "es",
        "meta_params": "{nombre}, apodo",
        "meta_header_url": "",
    }
    refused = client_for(carla).post(url, data)
    assert refused.status_code == 200
    assert "Variables desconocidas: {apodo}" in refused.content.decode()
    data["meta_params"] = "{nombre}, servicio"
    assert client_for(carla).post(url, data).status_code == 302
    recordatorio.refresh_from_db()
    assert recordatorio.meta_params == ["nombre", "servicio"]


def test_with_the_window_closed_the_composer_offers_approved_templates_filled_for_the_customer(
    client_for, bob, synced, recordatorio, conversation
):
    MessageTemplate.objects.create(
        name="Navidad",
        category="marketing",
        body="¡{nombre}, feliz Navidad!",
        meta_name="oferta_navidad",
        meta_params=["nombre"],
    )
    page = client_for(bob).get(reverse("inbox:conversation", args=[conversation.pk]))
    html = page.content.decode()
    assert 'id="composer-template"' in html
    assert "Hola María, tu suscripción de Netflix vence mañana." in html
    assert "Navidad" not in html  # Meta rejected it
    assert 'name="text"' not in html


def test_the_composer_sends_the_template_and_the_thread_reads_its_text(
    client_for, bob, synced, recordatorio, conversation, meta_client, sim
):
    answer = client_for(bob).post(
        reverse("inbox:reply", args=[conversation.pk]), {"meta_template": recordatorio.pk}
    )
    assert answer.status_code == 302
    message = Message.objects.get(conversation=conversation)
    assert message.body == "Hola María, tu suscripción de Netflix vence mañana."
    assert deliver(message.pk, client=meta_client, bucket=NoWait()) == "sent"
    [out] = sent(sim)
    assert (out["type"], out["template"]) == ("template", "recordatorio_pago")


def test_free_text_is_still_refused_with_the_window_closed(client_for, bob, synced, conversation):
    client_for(bob).post(reverse("inbox:reply", args=[conversation.pk]), {"text": "hola"})
    assert not Message.objects.filter(conversation=conversation).exists()


def test_a_campaign_on_a_cloud_api_number_needs_an_approved_linked_template(synced, recordatorio):
    unlinked = MessageTemplate.objects.create(name="Libre", category="marketing", body="Hola")
    with pytest.raises(CampaignInvalid) as refused:
        campaign_create(title="x", template=unlinked, channel=synced.key)
    assert "no está vinculada" in refused.value.errors["template"]
    rejected = MessageTemplate.objects.create(
        name="Navidad",
        category="marketing",
        body="¡{nombre}!",
        meta_name="oferta_navidad",
        meta_params=["nombre"],
    )
    with pytest.raises(CampaignInvalid) as refused:
        campaign_create(title="x", template=rejected, channel=synced.key)
    assert "no está aprobada (estado: Rechazada)" in refused.value.errors["template"]
    assert campaign_create(title="ok", template=recordatorio, channel=synced.key).pk
    assert campaign_create(title="wa", template=unlinked).pk  # WaSender: as before


def _campaign_message(campaign, conversation) -> Message:
    message = Message.objects.create(
        conversation=conversation,
        direction=Message.Direction.OUT,
        author_kind=Message.Author.CAMPAIGN,
        body="Hola María, tu suscripción de Netflix vence mañana.",
        status=Message.Status.QUEUED,
        marketing=campaign.kind == Campaign.Kind.MARKETING,
    )
    CampaignRecipient.objects.create(
        campaign=campaign, customer=conversation.customer, state="queued", message=message
    )
    return message


def test_a_campaign_message_goes_out_as_its_meta_template(
    synced, recordatorio, conversation, meta_client, sim
):
    campaign = campaign_create(title="Pago", template=recordatorio, channel=synced.key)
    message = _campaign_message(campaign, conversation)
    assert deliver(message.pk, client=meta_client, bucket=NoWait()) == "sent"
    [out] = sent(sim)
    assert out["template"] == "recordatorio_pago"
    assert MetaSend.objects.get(message=message).body_params == ["María", "Netflix"]


@pytest.fixture
def promo(db):
    return MessageTemplate.objects.create(
        name="Promo",
        category="marketing",
        body="¡{nombre}, este mes tenemos 20% de descuento!",
        meta_name="promo_mes",
        meta_params=["nombre"],
        meta_header_url="https://example.com/promo.png",
    )


def test_meta_s_marketing_cap_fails_the_row_and_schedules_a_new_one(
    synced, promo, conversation, meta_client, sim
):
    configure(sim, marketing_cap=1.0, async_errors=False)
    campaign = campaign_create(title="Promo", template=promo, channel=synced.key)
    message = _campaign_message(campaign, conversation)
    assert deliver(message.pk, client=meta_client, bucket=NoWait()) == "retry"
    message.refresh_from_db()
    assert message.status == "failed"
    assert message.failure_reason.startswith("Limitado por Meta")
    retry = MetaSend.objects.get(retry_of=message)
    assert retry.attempt == 2
    later = Message.objects.get(pk=retry.message_id)
    assert later.status == "scheduled"
    assert later.scheduled_for - timezone.now() > timedelta(minutes=55)
    recipient = CampaignRecipient.objects.get(campaign=campaign)
    assert recipient.message_id == later.pk
    assert campaign_results(campaign=campaign)["funnel"]["meta_capped"] == 1
    # Due: queued by the scheduler's sweep, capped again, a third row six hours on.
    Message.objects.filter(pk=later.pk).update(status="queued")
    assert deliver(later.pk, client=meta_client, bucket=NoWait()) == "retry"
    third = MetaSend.objects.get(retry_of_id=later.pk)
    assert third.attempt == 3
    assert Message.objects.get(pk=third.message_id).scheduled_for - timezone.now() > timedelta(
        hours=5
    )
    assert len(sent(sim)) == 0  # Meta held both before accepting anything


def test_the_cap_by_status_webhook_is_retried_once_however_often_it_arrives(
    synced, recordatorio, conversation
):
    message = Message.objects.create(
        conversation=conversation,
        direction=Message.Direction.OUT,
        author_kind=Message.Author.AGENT,
        body="Hola",
        status=Message.Status.SENT,
        wa_id="wamid.capped",
    )
    MetaSend.objects.create(message=message, name="recordatorio_pago", language="es")
    payload = json.loads((FIXTURES / "statuses_failed_marketing_cap.json").read_text())
    payload["entry"][0]["changes"][0]["value"]["metadata"]["phone_number_id"] = PNID
    payload["entry"][0]["changes"][0]["value"]["statuses"][0]["id"] = "wamid.capped"
    webhook_event_receive(payload=payload, provider=Channel.Provider.CLOUDAPI)
    webhook_event_receive(payload=payload, provider=Channel.Provider.CLOUDAPI)
    message.refresh_from_db()
    assert message.status == "failed"
    assert "Limitado por Meta" in message.failure_reason
    assert MetaSend.objects.filter(retry_of=message).count() == 1


def test_the_cap_gives_up_after_meta_marketing_retry_days(settings, synced, conversation):
    settings.META_MARKETING_RETRY_DAYS = 3
    message = Message.objects.create(
        conversation=conversation,
        direction=Message.Direction.OUT,
        author_kind=Message.Author.CAMPAIGN,
        body="Hola",
        status=Message.Status.SENT,
    )
    MetaSend.objects.create(
        message=message,
        name="promo_mes",
        language="es",
        attempt=4,
        first_capped_at=timezone.now() - timedelta(days=2, hours=12),
    )
    assert meta_templates.marketing_capped(message_id=message.pk) == "gave_up"
    message.refresh_from_db()
    assert message.status == "failed"
    assert "tras 4 intentos en 3 días" in message.failure_reason
    assert not MetaSend.objects.filter(retry_of=message).exists()
