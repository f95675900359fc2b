"""The WaSender simulator as chatdesk meets it: `manage.py wasender_sim` on a free loopback port,
the real client talking to it over HTTP, and a small HTTP server recording its webhooks."""

import asyncio
import json
import re
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from provider.errors import ProviderError
from provider.wasender import WaSenderClient
from provider.wasender.simulator import SimConfig, Simulator, embedded_app
from tests.provider.conftest import WebhookReceiver, configure, receiving, sim_running

SECRET = "sim-test-secret"
KEY = "simulator-key"
NO_WHATSAPP = "+593900000000"
STATUS_NUMBERS = {"sent": 2, "delivered": 3, "read": 4}


class Receiver(WebhookReceiver):
    def events(self, name: str) -> list[dict]:
        return [h["body"] for h in self.hooks if h["body"]["event"] == name]


@pytest.fixture(scope="module")
def receiver():
    with receiving(Receiver("/webhooks/wasender/")) as receiver:
        yield receiver


@pytest.fixture(scope="module")
def sim_url(receiver):
    options = ["--webhook-url", receiver.url, "--secret", SECRET, "--not-on-whatsapp", NO_WHATSAPP]
    options += ["--status-delays", "0.05,0.05,0.05", "--variants", "0.5", "--seed", "7"]
    with sim_running("wasender_sim", *options) as url:
        yield url


@pytest.fixture
def sim(sim_url, receiver):
    """A clean simulator per test: knobs at the module's defaults, counters at zero."""
    httpx.post(
        sim_url + "/_sim/config",
        json={
            "rate_per_minute": 256,
            "burst": 0,
            "fail_5xx": 0,
            "timeouts": 0,
            "duplicates": 0,
            "out_of_order": 0,
            "latency_ms": 0,
            "timeout_seconds": 20,
            "lost_answers": 0,
            "accept_then_5xx": 0,
            "accept_then_drop": 0,
            "answer_without_id": 0,
            "echo_first": 0,
        },
    ).raise_for_status()
    httpx.post(sim_url + "/_sim/reset").raise_for_status()
    # A push the reset cancelled may already be on the wire: let the previous test's traffic
    # drain before this test starts counting.
    for _ in range(20):
        with receiver.changed:
            receiver.hooks.clear()
        time.sleep(0.2)
        if not receiver.hooks:
            break
    return sim_url


def stats(sim_url) -> dict:
    return httpx.get(sim_url + "/_sim/stats").json()


@pytest.fixture
def client(sim):
    client = WaSenderClient(base_url=sim + "/api", api_key=KEY, timeout=5)
    yield client
    client.http.close()


def statuses_for(receiver, wa_id) -> list[int]:
    """messages.update statuses for one message, whichever form (object/list, int/str) came."""
    found = []
    for body in receiver.events("messages.update"):
        for update in body["data"] if isinstance(body["data"], list) else [body["data"]]:
            if update["key"]["id"] == wa_id:
                status = update["update"]["status"]
                found.append(STATUS_NUMBERS.get(status, status))
    return found


pytestmark = pytest.mark.integration


def test_it_accepts_a_send_and_pushes_its_lifecycle(client, receiver):
    result = client.send_message(to="+593968196046", text="Hola María")
    assert int(result.provider_id) >= 100000
    assert result.status == "in_progress"
    hooks = receiver.wait_for(
        lambda hooks: sum(h["body"]["event"] == "messages.update" for h in hooks) == 3
    )
    assert {h["headers"]["X-Webhook-Signature"] for h in hooks} == {SECRET}
    assert {h["path"] for h in hooks} == {"/webhooks/wasender/"}
    [sent] = receiver.events("message.sent")
    assert str(sent["data"]["msgId"]) == result.provider_id
    assert sent["data"]["status"] == "sent"
    key = sent["data"]["key"]
    assert re.fullmatch(r"3EB0[0-9A-F]{16}", key["id"])
    assert key == {"id": key["id"], "fromMe": True, "remoteJid": "593968196046@s.whatsapp.net"}
    [echo] = receiver.events("messages.upsert")
    assert echo["data"]["messages"][0]["key"]["id"] == key["id"]
    assert echo["data"]["messages"][0]["key"]["fromMe"] is True
    assert echo["data"]["messages"][0]["messageBody"] == "Hola María"
    assert statuses_for(receiver, key["id"]) == [2, 3, 4]
    info = client.message_info(int(result.provider_id))
    assert (str(info.msg_id), info.wa_id, info.status) == (result.provider_id, key["id"], 4)


def test_it_gives_increasing_msg_ids(client):
    ids = [int(client.send_message(to="+593968196046", text=f"n{i}").provider_id) for i in range(3)]
    assert ids == sorted(ids)
    assert len(set(ids)) == 3


def test_it_requires_the_api_key(sim):
    missing = httpx.post(sim + "/api/send-message", json={"to": "+593968196046", "text": "x"})
    assert missing.status_code == 401
    assert missing.json() == {"success": False, "message": "API key is required"}
    bad = WaSenderClient(base_url=sim + "/api", api_key="wrong", timeout=5)
    with pytest.raises(ProviderError) as caught:
        bad.send_message(to="+593968196046", text="x")
    assert (caught.value.permanent, caught.value.status) == (True, 401)
    assert caught.value.reason == "La clave de WaSender no es válida"
    assert stats(sim)["sends_accepted"] == 0


def test_it_validates_like_wasender(client, sim):
    raw = httpx.post(sim + "/api/send-message", json={}, headers={"Authorization": f"Bearer {KEY}"})
    assert raw.status_code == 422
    assert raw.json() == {
        "success": False,
        "message": "Validation failed",
        "errors": {
            "to": ["The to field is required."],
            "text": ["The text field is required when no media is present."],
        },
    }
    with pytest.raises(ProviderError) as caught:
        client.send_message(to="", text="Hola")
    assert caught.value.permanent is True
    assert caught.value.reason == "WaSender rechazó el mensaje: The to field is required."
    # media alone, with its caption, is a valid message
    client.send_message(to="+593968196046", image_url="https://example.com/a.jpg")
    assert stats(sim)["sends_accepted"] == 1


def test_it_answers_429_over_the_rate_limit(client, sim):
    configure(sim, rate_per_minute=2)
    client.send_message(to="+593968196046", text="uno")
    client.send_message(to="+593968196046", text="dos")
    assert client.last_rate_limit.limit == 2
    assert client.last_rate_limit.remaining == 0
    assert client.last_rate_limit.reset_at > time.time()
    with pytest.raises(ProviderError) as caught:
        client.send_message(to="+593968196046", text="tres")
    assert (caught.value.permanent, caught.value.status) == (False, 429)
    assert 0 < caught.value.retry_after <= 30
    raw = httpx.post(
        sim + "/api/send-message",
        json={"to": "+593968196046", "text": "cuatro"},
        headers={"Authorization": f"Bearer {KEY}"},
    )
    assert raw.status_code == 429
    assert set(raw.json()) == {"message", "retry_after"}
    assert int(raw.headers["retry-after"]) == raw.json()["retry_after"]
    counts = stats(sim)
    assert (counts["sends_accepted"], counts["responses_429"]) == (2, 2)


def test_it_uses_the_trial_plan_wording_at_one_per_minute(sim):
    configure(sim, rate_per_minute=1)
    auth = {"Authorization": f"Bearer {KEY}"}
    body = {"to": "+593968196046", "text": "x"}
    assert httpx.post(sim + "/api/send-message", json=body, headers=auth).status_code == 200
    limited = httpx.post(sim + "/api/send-message", json=body, headers=auth)
    assert limited.json()["message"] == (
        "You are on a free trial. You can only send 1 message every 1 minute."
    )
    assert 50 <= limited.json()["retry_after"] <= 60


def test_it_injects_5xx_in_roughly_the_configured_share(client, sim):
    configure(sim, fail_5xx=0.3)
    failures = 0
    for _ in range(200):
        try:
            client.session_status()
        except ProviderError as e:
            assert (e.permanent, e.status in (500, 502, 503)) == (False, True)
            failures += 1
    assert stats(sim)["injected_5xx"] == failures
    assert 30 <= failures <= 90


def test_an_injected_5xx_on_a_send_sends_nothing(client, sim):
    configure(sim, fail_5xx=1.0)
    with pytest.raises(ProviderError) as caught:
        client.send_message(to="+593968196046", text="Hola")
    assert caught.value.permanent is False
    assert stats(sim)["sends_accepted"] == 0


@pytest.mark.parametrize(
    ("knob", "counter", "reason"),
    [
        ("accept_then_5xx", "accepted_then_5xx", "WaSender tuvo un error temporal"),
        ("accept_then_drop", "accepted_then_dropped", "Se cortó la conexión con WaSender"),
        ("answer_without_id", "answered_without_id", "WaSender no devolvió el identificador"),
        ("lost_answers", "lost_answers", "WaSender no respondió a tiempo"),
    ],
)
def test_a_fault_after_acceptance_sends_the_message_and_is_ambiguous(
    sim, receiver, knob, counter, reason
):
    configure(sim, **{knob: 1.0, "timeout_seconds": 2})
    impatient = WaSenderClient(base_url=sim + "/api", api_key=KEY, timeout=1)
    with pytest.raises(ProviderError) as caught:
        impatient.send_message(to="+593968196046", text="Hola")
    assert (caught.value.permanent, caught.value.ambiguous) == (False, True)
    assert caught.value.reason.startswith(reason)
    counts = stats(sim)
    assert (counts[counter], counts["sends_by_recipient"]) == (1, {"+593968196046": 1})
    # The customer gets it: WhatsApp's echo of it follows, as with any send.
    receiver.wait_for(lambda hooks: any(h["body"]["event"] == "messages.upsert" for h in hooks))


def test_it_can_echo_a_send_before_answering_it(client, sim, receiver):
    configure(sim, echo_first=1.0)
    result = client.send_message(to="+593968196046", text="Hola")
    # By the time the answer is here, both webhooks have been delivered and answered.
    with receiver.changed:
        events = [h["body"]["event"] for h in receiver.hooks]
    assert events[:2] == ["message.sent", "messages.upsert"]
    assert str(receiver.events("message.sent")[0]["data"]["msgId"]) == result.provider_id
    assert stats(sim)["echoes_first"] == 1


def test_it_injects_timeouts_past_the_client_timeout(sim):
    configure(sim, timeouts=1.0, timeout_seconds=3)
    impatient = WaSenderClient(base_url=sim + "/api", api_key=KEY, timeout=0.5)
    with pytest.raises(ProviderError) as caught:
        impatient.send_message(to="+593968196046", text="Hola")
    assert caught.value.permanent is False
    assert caught.value.reason == "WaSender no respondió a tiempo."
    counts = stats(sim)
    assert (counts["injected_timeouts"], counts["sends_accepted"]) == (1, 0)


def test_it_refuses_numbers_not_on_whatsapp(client, sim):
    with pytest.raises(ProviderError) as caught:
        client.send_message(to=NO_WHATSAPP, text="Hola")
    assert caught.value.permanent is True
    assert caught.value.reason == "El número no tiene WhatsApp"
    assert client.on_whatsapp(NO_WHATSAPP) is False
    assert client.on_whatsapp("+593968196046") is True
    configure(sim, not_on_whatsapp=["+593911111111"])
    client.send_message(to=NO_WHATSAPP, text="Hola")
    assert stats(sim)["sends_by_recipient"] == {NO_WHATSAPP: 1}
    configure(sim, not_on_whatsapp=[NO_WHATSAPP])


def test_it_counts_sends_per_recipient_exactly_under_concurrency(client, sim):
    phones = [f"+59396819600{i}" for i in range(4)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(
            pool.map(lambda n: client.send_message(to=phones[n % 4], text=str(n)), range(40))
        )
    assert len({r.provider_id for r in results}) == 40
    counts = stats(sim)
    assert counts["sends_accepted"] == 40
    assert counts["sends_by_recipient"] == dict.fromkeys(phones, 10)


def test_it_delivers_a_customer_message_on_demand(sim, receiver):
    answer = httpx.post(
        sim + "/_sim/inbound",
        json={"phone": "+593987654321", "text": "¿Cuánto cuesta?", "name": "Carlos Pérez"},
    )
    assert answer.json()["data"]["delivered"] is True
    [hook] = receiver.wait_for(lambda hooks: len(hooks) == 1)
    assert hook["headers"]["X-Webhook-Signature"] == SECRET
    assert hook["body"]["event"] == "messages.received"
    message = hook["body"]["data"]["messages"]
    assert message["key"]["id"] == answer.json()["data"]["id"]
    assert message["key"]["fromMe"] is False
    assert message["key"]["cleanedSenderPn"] == "593987654321"
    assert (message["messageBody"], message["pushName"]) == ("¿Cuánto cuesta?", "Carlos Pérez")
    assert stats(sim)["inbound"] == 1


def test_it_can_deliver_a_customer_message_as_upsert_list(sim, receiver):
    httpx.post(
        sim + "/_sim/inbound",
        json={"phone": "+593987654321", "text": "Hola", "event": "messages.upsert"},
    ).raise_for_status()
    [hook] = receiver.wait_for(lambda hooks: len(hooks) == 1)
    assert hook["body"]["event"] == "messages.upsert"
    assert hook["body"]["data"]["messages"][0]["messageBody"] == "Hola"


def test_it_duplicates_webhooks_when_asked(sim, receiver):
    configure(sim, duplicates=1.0)
    httpx.post(sim + "/_sim/inbound", json={"phone": "+593987654321", "text": "Hola"})
    hooks = receiver.wait_for(lambda hooks: len(hooks) == 2)
    assert hooks[0]["body"] == hooks[1]["body"]
    counts = stats(sim)
    assert (counts["webhooks_pushed"], counts["webhooks_duplicated"]) == (2, 1)


def test_it_sends_statuses_out_of_order_when_asked(client, sim, receiver):
    configure(sim, out_of_order=1.0)
    for n in range(4):
        client.send_message(to="+593968196046", text=str(n))
    receiver.wait_for(
        lambda hooks: len([h for h in hooks if h["body"]["event"] == "message.sent"]) == 4
    )
    ids = [e["data"]["key"]["id"] for e in receiver.events("message.sent")]
    # two statuses already tell: no shuffle starts with [2, 3]
    receiver.wait_for(lambda hooks: all(len(statuses_for(receiver, i)) >= 2 for i in ids))
    for wa_id in ids:
        assert statuses_for(receiver, wa_id) != [2, 3, 4]
        assert set(statuses_for(receiver, wa_id)) <= {2, 3, 4}


def test_it_uploads_and_serves_media(client):
    url = client.upload(content=b"%PDF-1.4 factura", content_type="application/pdf")
    assert url.startswith(client.base_url.removesuffix("/api") + "/media/")
    assert client.download(url, max_bytes=1000) == (b"%PDF-1.4 factura", "application/pdf")


def test_download_refuses_an_oversized_body(client):
    url = client.upload(content=b"x" * 10_000, content_type="image/jpeg")
    with pytest.raises(ProviderError) as caught:
        client.download(url, max_bytes=9_999)
    assert caught.value.permanent is True


def test_download_refuses_a_foreign_host(client, receiver):
    for url in [
        f"http://127.0.0.1:{receiver.port}/webhooks/wasender/",
        "http://169.254.169.254/latest/meta-data/",
    ]:
        with pytest.raises(ProviderError) as caught:
            client.download(url, max_bytes=1000)
        assert caught.value.permanent is True
    assert receiver.hooks == []


def test_it_decrypts_media_a_customer_sent(client, sim, receiver):
    httpx.post(
        sim + "/_sim/inbound", json={"phone": "+593987654321", "text": "Comprobante", "image": True}
    ).raise_for_status()
    [hook] = receiver.wait_for(lambda hooks: len(hooks) == 1)
    message = hook["body"]["data"]["messages"]
    assert message["message"]["imageMessage"]["caption"] == "Comprobante"
    url = client.decrypt_media(message)
    content, mime = client.download(url, max_bytes=10_000)
    assert (content[:4], mime) == (b"\x89PNG", "image/png")


def test_it_reports_the_session_status(client, sim):
    assert client.session_status() == "connected"
    configure(sim, session_status="need_scan")
    assert client.session_status() == "need_scan"
    configure(sim, session_status="connected")


def test_it_refuses_unknown_knobs(sim):
    assert httpx.post(sim + "/_sim/config", json={"nope": 1}).status_code == 400


# --- in process: configuration and the embedded router ----------------------------------------


def test_config_reads_env_and_coerces_types():
    config = SimConfig.from_env(
        {
            "WASENDER_SIM_RATE_PER_MINUTE": "120",
            "WASENDER_SIM_DEMO": "1",
            "WASENDER_SIM_NOT_ON_WHATSAPP": "+593900000000, 593911111111",
            "WASENDER_SIM_STATUS_DELAYS": "0.1,0.2",
        },
        api_key="k",
    )
    assert config.rate_per_minute == 120.0
    assert config.demo is True
    assert config.not_on_whatsapp == {"593900000000", "593911111111"}
    assert config.status_delays == [0.1, 0.2]
    assert config.api_key == "k"


async def call(app, path, port):
    sent = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http",
        "method": "GET",
        "path": path,
        "headers": [],
        "scheme": "http",
        "server": ("127.0.0.1", port),
        "query_string": b"",
    }
    await app(scope, receive, send)
    return sent


def test_embedded_app_routes_by_listening_port(settings):
    settings.WASENDER_WEBHOOK_SECRET = SECRET
    seen = []

    async def chatdesk(scope, receive, send):
        seen.append(scope["type"])

    app = embedded_app(chatdesk_app=chatdesk, chatdesk_port=8000, simulator_port=8001)
    app.simulator.config.demo = False

    async def scenario():
        to_sim = await call(app, "/_sim/stats", 8001)
        to_chatdesk = await call(app, "/_sim/stats", 8000)
        await app({"type": "lifespan"}, None, None)
        return to_sim, to_chatdesk

    to_sim, to_chatdesk = asyncio.run(scenario())
    assert to_sim[0]["status"] == 200
    assert to_chatdesk == []
    assert seen == ["http", "lifespan"]
    assert app.simulator.config.webhook_url == "http://127.0.0.1:8000/webhooks/wasender/"
    assert app.simulator.config.webhook_secret == SECRET


def test_counts_stay_exact_with_many_concurrent_sends():
    simulator = Simulator(SimConfig(rate_per_minute=100, burst=100, sent_delay=0))

    async def send(n):
        body = json.dumps({"to": f"+59399000000{n % 5}", "text": "x"}).encode()
        sent = []

        async def receive():
            return {"type": "http.request", "body": body, "more_body": False}

        async def capture(message):
            sent.append(message)

        scope = {
            "type": "http",
            "method": "POST",
            "path": "/api/send-message",
            "headers": [(b"authorization", b"Bearer simulator-key")],
            "scheme": "http",
            "server": ("127.0.0.1", 1),
        }
        await simulator(scope, receive, capture)
        return sent[0]["status"]

    async def scenario():
        codes = await asyncio.gather(*(send(n) for n in range(150)))
        counts = json.loads(json.dumps(simulator.stats))
        simulator.reset()  # cancels the pending webhook tasks (no webhook URL anyway)
        return codes, counts

    codes, counts = asyncio.run(scenario())
    assert (codes.count(200), codes.count(429)) == (100, 50)
    assert (counts["sends_accepted"], counts["responses_429"]) == (100, 50)
    assert counts["sends_by_recipient"] == {f"+59399000000{n}": 20 for n in range(5)}
