"""The Cloud API simulator as chatdesk meets it: `manage.py cloudapi_sim` on a free loopback port,
the real client talking to it over HTTP, a small server recording its signed webhooks."""

import asyncio
import json

import httpx
import pytest

from provider.cloudapi import CloudApiClient
from provider.cloudapi.payloads import event_parse, signature_valid
from provider.cloudapi.simulator import embedded_app
from provider.errors import ProviderError
from provider.records import MessagesEvent, StatusEvent
from provider.sending import Quote, SendRequest, TemplateSend
from tests.provider.conftest import WebhookReceiver, configure, receiving, sim_running

SECRET = "cloud-sim-secret"
TOKEN = "simulator-token"
PNID = "100000000000001"
CUSTOMER = "593968196046"

pytestmark = pytest.mark.integration


class Receiver(WebhookReceiver):
    """Plays chatdesk's /webhooks/meta/: wait_for reads the envelopes in the signed hooks."""

    def seen(self) -> list:
        return self.envelopes()

    def envelopes(self) -> list:
        return [e for h in self.hooks for e in event_parse(json.loads(h["raw"]))]


def updates(envelopes, wa_id) -> list:
    return [
        u
        for e in envelopes
        if isinstance(e.content, StatusEvent)
        for u in e.content.updates
        if u.wa_id == wa_id
    ]


@pytest.fixture(scope="module")
def receiver():
    with receiving(Receiver("/webhooks/meta/")) as receiver:
        yield receiver


@pytest.fixture(scope="module")
def sim_url(receiver):
    options = ["--webhook-url", receiver.url, "--app-secret", SECRET]
    options += ["--status-delays", "0.05,0.05,0.05", "--seed", "7"]
    with sim_running("cloudapi_sim", *options) as url:
        yield url


@pytest.fixture
def sim(sim_url, receiver):
    knobs = {
        "throughput_per_second": 80,
        "burst": 0,
        "pair_rate_seconds": 0,
        "marketing_cap": 0,
        "async_errors": True,
        "window_check": True,
        "lost_answers": 0,
        "accept_then_5xx": 0,
        "timeout_seconds": 20,
        "fail_5xx": 0,
        "echo_first": 0,
    }
    httpx.post(sim_url + "/_sim/config", json=knobs).raise_for_status()
    httpx.post(sim_url + "/_sim/reset").raise_for_status()
    receiver.wait_for(lambda _: httpx.get(sim_url + "/_sim/stats").json()["in_flight"] == 0)
    with receiver.changed:
        receiver.hooks.clear()
    return sim_url


@pytest.fixture
def client(sim):
    client = CloudApiClient(base_url=sim, phone_number_id=PNID, access_token=TOKEN, timeout=5)
    yield client
    client.http.close()


def customer_writes(sim, phone=CUSTOMER, **extra) -> str:
    answer = httpx.post(sim + "/_sim/inbound", json={"phone": phone, "text": "Hola", **extra})
    assert answer.json()["data"]["delivered"] is True
    return answer.json()["data"]["id"]


def test_a_customer_message_arrives_signed(sim, receiver):
    wamid = customer_writes(sim, name="María González")
    [hook] = receiver.hooks
    assert signature_valid(hook["raw"], hook["headers"]["X-Hub-Signature-256"], SECRET)
    assert not signature_valid(hook["raw"], hook["headers"]["X-Hub-Signature-256"], "other")
    [envelope] = receiver.envelopes()
    assert envelope.account == PNID
    [message] = envelope.content.messages
    assert (message.wa_id, message.phone, message.body, message.push_name) == (
        wamid,
        CUSTOMER,
        "Hola",
        "María González",
    )


def test_a_text_inside_the_window_goes_out_with_its_statuses(client, sim, receiver):
    quoted = customer_writes(sim)
    result = client.send(
        SendRequest(to="+" + CUSTOMER, text="Son $12.99", quote=Quote(wa_id=quoted))
    )
    assert result.provider_id.startswith("wamid.")
    envelopes = receiver.wait_for(lambda es: len(updates(es, result.wa_id)) == 3)
    assert [u.status for u in updates(envelopes, result.wa_id)] == ["sent", "delivered", "read"]
    for hook in receiver.hooks:
        assert signature_valid(hook["raw"], hook["headers"]["X-Hub-Signature-256"], SECRET)
    [sent] = httpx.get(sim + "/_sim/messages").json()
    assert (sent["context"], sent["text"]) == (quoted, "Son $12.99")


def test_outside_the_window_a_text_fails_with_131047_as_a_status(client, sim, receiver):
    result = client.send(SendRequest(to=CUSTOMER, text="Hola"))
    envelopes = receiver.wait_for(lambda es: updates(es, result.wa_id))
    [failed] = updates(envelopes, result.wa_id)
    assert (failed.status, failed.error_code) == ("error", "131047")
    assert failed.error_reason.startswith("Pasaron más de 24 horas")


def test_outside_the_window_a_text_fails_with_131047_synchronously(client, sim):
    configure(sim, async_errors=False)
    customer_writes(sim, hours_ago=25)
    with pytest.raises(ProviderError) as caught:
        client.send(SendRequest(to=CUSTOMER, text="Hola"))
    assert (caught.value.code, caught.value.permanent, caught.value.ambiguous) == (
        "131047",
        True,
        False,
    )
    assert httpx.get(sim + "/_sim/stats").json()["sends_accepted"] == 0


def test_a_template_passes_outside_the_window(client, sim, receiver):
    request = SendRequest(
        to=CUSTOMER,
        template=TemplateSend(
            name="recordatorio_pago", language="es", body_params=("María", "Netflix")
        ),
    )
    result = client.send(request)
    receiver.wait_for(
        lambda es: [u.status for u in updates(es, result.wa_id)] == ["sent", "delivered", "read"]
    )
    assert httpx.get(sim + "/_sim/stats").json()["templates_sent"] == 1


@pytest.mark.parametrize(
    "template,params,code",
    [
        ("recordatorio_pago", ("María",), "132000"),
        ("encuesta", (), "132015"),
        ("oferta_navidad", ("x",), "132001"),
    ],
)
def test_template_problems(client, template, params, code):
    with pytest.raises(ProviderError) as caught:
        client.send(
            SendRequest(
                to=CUSTOMER, template=TemplateSend(name=template, language="es", body_params=params)
            )
        )
    assert (caught.value.code, caught.value.permanent) == (code, True)


def test_the_marketing_cap_is_mapped(client, sim):
    configure(sim, marketing_cap=1.0, async_errors=False)
    template = TemplateSend(name="promo_mes", language="es", body_params=("María",))
    with pytest.raises(ProviderError) as caught:
        client.send(SendRequest(to=CUSTOMER, template=template))
    error = caught.value
    assert (error.code, error.permanent, error.per_recipient, error.retry_after) == (
        "131049",
        False,
        True,
        86400.0,
    )
    assert error.reason.startswith("Limitado por Meta")


def test_throughput_and_pair_rate_are_mapped(client, sim):
    customer_writes(sim)
    customer_writes(sim, phone="593987654321")
    configure(sim, throughput_per_second=0.01, burst=1)
    client.send(SendRequest(to=CUSTOMER, text="uno"))
    with pytest.raises(ProviderError) as caught:
        client.send(SendRequest(to="593987654321", text="dos"))
    assert (caught.value.code, caught.value.permanent, caught.value.per_recipient) == (
        "130429",
        False,
        False,
    )
    configure(sim, throughput_per_second=80, burst=0, pair_rate_seconds=60)
    with pytest.raises(ProviderError) as caught:
        client.send(SendRequest(to=CUSTOMER, text="tres"))
    assert (caught.value.code, caught.value.per_recipient) == ("131056", True)
    client.send(SendRequest(to="593987654321", text="cuatro"))  # another customer is fine


def test_a_lost_answer_is_ambiguous_and_the_message_still_goes_out(sim, receiver):
    customer_writes(sim)
    configure(sim, lost_answers=1.0, timeout_seconds=2)
    impatient = CloudApiClient(base_url=sim, phone_number_id=PNID, access_token=TOKEN, timeout=1)
    with pytest.raises(ProviderError) as caught:
        impatient.send(SendRequest(to=CUSTOMER, text="Hola"))
    assert (caught.value.permanent, caught.value.ambiguous) == (False, True)
    assert caught.value.reason == "Meta no respondió a tiempo."
    [sent] = httpx.get(sim + "/_sim/messages").json()
    receiver.wait_for(lambda es: updates(es, sent["id"]))


def test_5xx_after_acceptance_is_ambiguous(client, sim):
    customer_writes(sim)
    configure(sim, accept_then_5xx=1.0)
    with pytest.raises(ProviderError) as caught:
        client.send(SendRequest(to=CUSTOMER, text="Hola"))
    assert (caught.value.ambiguous, caught.value.code) == (True, "131000")
    assert httpx.get(sim + "/_sim/stats").json()["sends_accepted"] == 1


def test_a_wrong_token_is_refused(sim):
    bad = CloudApiClient(base_url=sim, phone_number_id=PNID, access_token="wrong", timeout=5)
    with pytest.raises(ProviderError) as caught:
        bad.send(SendRequest(to=CUSTOMER, text="Hola"))
    assert (caught.value.code, caught.value.status, caught.value.permanent) == ("190", 401, True)


def test_media_upload_send_and_fetch(client, sim, receiver):
    customer_writes(sim)
    media_id = client.media_upload(
        content=b"%PDF-1.4 factura", content_type="application/pdf", file_name="f.pdf"
    )
    assert client.media_fetch(media_id, max_bytes=1000) == (b"%PDF-1.4 factura", "application/pdf")
    with pytest.raises(ProviderError):
        client.media_fetch(media_id, max_bytes=5)
    result = client.send(
        SendRequest(to=CUSTOMER, text="Factura", media_kind="document", media_ref=media_id)
    )
    assert result.wa_id
    customer_writes(sim, type="image", text="Comprobante")
    envelopes = receiver.wait_for(
        lambda es: any(
            isinstance(e.content, MessagesEvent) and e.content.messages[0].media for e in es
        )
    )
    [image] = [
        m
        for e in envelopes
        if isinstance(e.content, MessagesEvent)
        for m in e.content.messages
        if m.media
    ]
    content, mime = client.media_fetch(image.media.media_id, max_bytes=10_000)
    assert (content[:4], mime) == (b"\x89PNG", "image/png")


def test_templates_list(client):
    names = {t.name: t.status for t in client.templates_list("200000000000001")}
    assert names["recordatorio_pago"] == "APPROVED" and names["encuesta"] == "PAUSED"


def test_embedded_app_routes_by_listening_port(settings):
    seen = []

    async def chatdesk(scope, receive, send):
        seen.append(scope["type"])

    app = embedded_app(chatdesk_app=chatdesk, chatdesk_port=8000, simulator_port=8002)
    app.simulator.config.demo = False
    sent = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    def scope(port):
        return {
            "type": "http",
            "method": "GET",
            "path": "/_sim/stats",
            "headers": [],
            "scheme": "http",
            "server": ("127.0.0.1", port),
            "query_string": b"",
        }

    async def scenario():
        await app(scope(8002), receive, send)
        await app(scope(8000), receive, send)

    asyncio.run(scenario())
    assert sent[0]["status"] == 200 and seen == ["http"]
    assert app.simulator.config.webhook_url == "http://127.0.0.1:8000/webhooks/meta/"
