"""The WaSender client against canned responses: what each answer becomes (result or
ProviderError, transient or permanent, the reason a person reads)."""

import json
import time

import httpx
import pytest

from provider.errors import ProviderError
from provider.sending import SendResult
from provider.wasender import WaSenderClient
from provider.wasender import api as wasender

BASE = "https://www.wasenderapi.com/api"
VALIDATION_ERROR = {
    "success": False,
    "message": "Validation failed",
    "errors": {
        "to": ["The to field is required."],
        "text": ["The text field is required when no media is present."],
    },
}
MESSAGE_INFO = {
    "success": True,
    "data": {
        "msgId": 100123,
        "remoteJid": "593968196046@s.whatsapp.net",
        "id": "3EB0C0FFEE0000000001",
        "key": {
            "id": "3EB0C0FFEE0000000001",
            "fromMe": True,
            "remoteJid": "593968196046@s.whatsapp.net",
        },
        "message": {"extendedTextMessage": {"text": "Son $12.99"}},
        "messageTimestamp": "1764000900",
        "status": 2,
    },
}


def client_with(handler, **kwargs) -> tuple[WaSenderClient, list[httpx.Request]]:
    seen = []

    def record(request):
        seen.append(request)
        return handler(request)

    return WaSenderClient(
        base_url=BASE, api_key="k-123", timeout=5, transport=httpx.MockTransport(record), **kwargs
    ), seen


def answer(status=200, body=None, headers=None):
    return lambda request: httpx.Response(status, json=body, headers=headers)


def send_error(status, body=None, headers=None) -> ProviderError:
    client, _ = client_with(answer(status, body, headers))
    with pytest.raises(ProviderError) as caught:
        client.send_message(to="+593968196046", text="Hola")
    return caught.value


def test_it_sends_text_with_the_key_and_returns_the_msg_id():
    ok = {
        "success": True,
        "data": {"msgId": 100123, "jid": "+593968196046", "status": "in_progress"},
    }
    client, seen = client_with(answer(200, ok))
    result = client.send_message(to="+593968196046", text="Hola María")
    assert result == SendResult(provider_id="100123", status="in_progress")
    assert seen[0].method == "POST"
    assert str(seen[0].url) == BASE + "/send-message"
    assert seen[0].headers["authorization"] == "Bearer k-123"
    assert json.loads(seen[0].content) == {"to": "+593968196046", "text": "Hola María"}


def test_it_sends_media_with_the_documented_keys():
    client, seen = client_with(answer(200, {"success": True, "data": {"msgId": 7}}))
    client.send_message(
        to="+593968196046",
        text="Tu factura",
        document_url="https://x.test/f.pdf",
        file_name="factura.pdf",
        reply_to=41,
    )
    client.send_message(to="+593968196046", image_url="https://x.test/a.jpg")
    client.send_message(
        to="+593968196046", video_url="https://x.test/v.mp4", audio_url="https://x.test/a.ogg"
    )
    bodies = [json.loads(r.content) for r in seen]
    assert bodies[0] == {
        "to": "+593968196046",
        "text": "Tu factura",
        "documentUrl": "https://x.test/f.pdf",
        "fileName": "factura.pdf",
        "replyTo": 41,
    }
    assert bodies[1] == {"to": "+593968196046", "imageUrl": "https://x.test/a.jpg"}
    assert bodies[2]["videoUrl"] == "https://x.test/v.mp4"
    assert bodies[2]["audioUrl"] == "https://x.test/a.ogg"


def test_it_reads_rate_limit_headers_with_reset_as_unix_time():
    headers = {
        "X-RateLimit-Limit": "256",
        "X-RateLimit-Remaining": "255",
        "X-RateLimit-Reset": "1764000960",
    }
    client, _ = client_with(answer(200, {"success": True, "data": {"msgId": 1}}, headers))
    assert client.last_rate_limit is None
    client.send_message(to="+593968196046", text="Hola")
    assert client.last_rate_limit == wasender.RateLimitInfo(
        limit=256, remaining=255, reset_at=1764000960.0
    )


def test_it_reads_rate_limit_reset_as_seconds_until():
    headers = {"X-RateLimit-Limit": "1", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "42"}
    client, _ = client_with(answer(200, {"status": "connected"}, headers))
    before = time.time()
    client.session_status()
    info = client.last_rate_limit
    assert (info.limit, info.remaining) == (1, 0)
    assert before + 42 <= info.reset_at <= time.time() + 42


def test_it_treats_429_as_transient_with_retry_after_from_the_body():
    body = {
        "message": "You are on a free trial. You can only send 1 message every 1 minute.",
        "retry_after": 60,
    }
    error = send_error(429, body, {"Retry-After": "5"})
    assert (error.permanent, error.status, error.retry_after) == (False, 429, 60)


def test_it_takes_retry_after_from_the_header_when_the_body_has_none():
    error = send_error(429, {"message": "Too Many Requests"}, {"Retry-After": "7"})
    assert (error.permanent, error.retry_after) == (False, 7)


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_it_treats_5xx_as_transient(status):
    error = send_error(status, {"success": False, "message": "Server Error"})
    assert (error.permanent, error.status) == (False, status)
    assert str(status) in error.reason


@pytest.mark.parametrize(
    "exc", [httpx.ReadTimeout, httpx.ConnectTimeout, httpx.ConnectError, httpx.RemoteProtocolError]
)
def test_it_treats_timeouts_and_connection_errors_as_transient(exc):
    def fail(request):
        raise exc("boom", request=request)

    client, _ = client_with(fail)
    with pytest.raises(ProviderError) as caught:
        client.send_message(to="+593968196046", text="Hola")
    assert caught.value.permanent is False
    assert caught.value.status is None
    assert "WaSender" in caught.value.reason


def test_it_treats_a_body_that_is_not_json_as_transient():
    client, _ = client_with(lambda request: httpx.Response(200, text="<html>maintenance</html>"))
    with pytest.raises(ProviderError) as caught:
        client.send_message(to="+593968196046", text="Hola")
    assert caught.value.permanent is False
    assert caught.value.reason == "WaSender respondió algo que no es JSON."


@pytest.mark.parametrize("status", [401, 403])
def test_it_treats_a_bad_key_as_permanent(status):
    error = send_error(status, {"success": False, "message": "API key is required"})
    assert (error.permanent, error.status) == (True, status)
    assert error.reason == "La clave de WaSender no es válida"


@pytest.mark.parametrize("status", [400, 422])
def test_it_explains_validation_errors_in_spanish(status):
    error = send_error(status, VALIDATION_ERROR)
    assert error.permanent is True
    assert error.reason.startswith("WaSender rechazó el mensaje: The to field is required.")
    assert "The text field is required when no media is present." in error.reason


def test_it_uses_the_message_when_there_are_no_field_errors():
    error = send_error(422, {"success": False, "message": "The reply to message was not found."})
    assert error.reason == "WaSender rechazó el mensaje: The reply to message was not found."


def test_it_treats_404_as_permanent():
    error = send_error(404, {"success": False, "message": "Not Found"})
    assert (error.permanent, error.status) == (True, 404)


def test_it_treats_a_4xx_that_is_not_json_as_permanent():
    client, _ = client_with(lambda request: httpx.Response(405, text="Method Not Allowed"))
    with pytest.raises(ProviderError) as caught:
        client.send_message(to="+593968196046", text="Hola")
    assert caught.value.permanent is True


@pytest.mark.parametrize(
    "message",
    [
        "The number +593900000000 is not registered on WhatsApp.",
        "Number is not on WhatsApp",
        "The number does not exist on WhatsApp",
    ],
)
def test_it_recognises_a_number_without_whatsapp(message):
    error = send_error(422, {"success": False, "message": message})
    assert error.permanent is True
    assert error.reason == "El número no tiene WhatsApp"


def test_it_treats_success_false_with_200_as_permanent():
    error = send_error(200, {"success": False, "message": "Session is not connected"})
    assert error.permanent is True
    assert error.reason == "WaSender rechazó el mensaje: Session is not connected"


def test_it_does_not_call_a_success_without_msg_id_permanent():
    error = send_error(200, {"success": True, "data": {}})
    assert error.permanent is False


def test_it_reads_message_info():
    client, seen = client_with(answer(200, MESSAGE_INFO))
    info = client.message_info(100123)
    assert info == wasender.MessageInfo(msg_id=100123, wa_id="3EB0C0FFEE0000000001", status=2)
    assert str(seen[0].url) == BASE + "/messages/100123/info"


def test_it_reads_the_wa_id_from_data_id_and_string_statuses():
    body = {"success": True, "data": {"msgId": "5", "id": "3EB0AA", "status": "delivered"}}
    client, _ = client_with(answer(200, body))
    assert client.message_info(5) == wasender.MessageInfo(msg_id=5, wa_id="3EB0AA", status=3)


def test_it_checks_whether_a_number_is_on_whatsapp():
    client, seen = client_with(
        lambda r: httpx.Response(
            200, json={"success": True, "data": {"exists": "593900" not in str(r.url)}}
        )
    )
    assert client.on_whatsapp("+593968196046") is True
    assert client.on_whatsapp("+593900000000") is False
    assert seen[0].url.raw_path == b"/api/on-whatsapp/%2B593968196046"


def test_it_reads_the_session_status_in_lower_case():
    client, _ = client_with(answer(200, {"status": "NEED_SCAN"}))
    assert client.session_status() == "need_scan"
    client, _ = client_with(answer(200, {"success": True, "data": {"status": "Connected"}}))
    assert client.session_status() == "connected"


def test_it_uploads_raw_bytes_and_returns_the_public_url():
    body = {"success": True, "publicUrl": "https://www.wasenderapi.com/media/abc.png"}
    client, seen = client_with(answer(200, body))
    url = client.upload(content=b"\x89PNG...", content_type="image/png")
    assert url == "https://www.wasenderapi.com/media/abc.png"
    assert seen[0].content == b"\x89PNG..."
    assert seen[0].headers["content-type"] == "image/png"


def test_it_decrypts_media_with_the_documented_body():
    message = {"key": {"id": "BAE5"}, "message": {"imageMessage": {"url": "https://mmg..."}}}
    client, seen = client_with(answer(200, {"success": True, "publicUrl": "https://x/p.jpg"}))
    assert client.decrypt_media(message) == "https://x/p.jpg"
    assert json.loads(seen[0].content) == {"data": {"messages": message}}


def test_it_treats_an_answer_without_public_url_as_transient():
    client, _ = client_with(answer(200, {"success": True}))
    with pytest.raises(ProviderError) as caught:
        client.decrypt_media({})
    assert caught.value.permanent is False


# --- download -------------------------------------------------------------------------------


def media_server(body=b"x" * 100, headers=None):
    return lambda request: httpx.Response(
        200, content=body, headers=headers or {"content-type": "image/jpeg; charset=binary"}
    )


@pytest.mark.parametrize(
    "url",
    [
        "https://www.wasenderapi.com/media/a.jpg",
        "https://media.wasenderapi.com/a.jpg",
        "https://mmg.whatsapp.net/o1/v/t62/a",
        "https://wasenderapi.com/a",
    ],
)
def test_it_downloads_from_the_provider(url):
    client, seen = client_with(media_server())
    assert client.download(url, max_bytes=1000) == (b"x" * 100, "image/jpeg")
    assert "authorization" not in seen[0].headers


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://127.0.0.1:6379/",
        "https://evilwasenderapi.com/a",
        "https://wasenderapi.com.evil.test/a",
        "http://mmg.whatsapp.net/a",
        "https://mmg.whatsapp.net:8443/a",
        "https://user@mmg.whatsapp.net/a",
        "file:///etc/passwd",
        "not a url",
    ],
)
def test_it_refuses_hosts_that_are_not_the_providers(url):
    client, seen = client_with(media_server())
    with pytest.raises(ProviderError) as caught:
        client.download(url, max_bytes=1000)
    assert caught.value.permanent is True
    assert seen == []


def test_it_allows_the_simulator_host_and_port_only():
    client, seen = client_with(media_server())
    client.base_url = "http://127.0.0.1:8001/api"
    client.allowed_netlocs = {"127.0.0.1:8001"}
    assert client.download("http://127.0.0.1:8001/media/x", max_bytes=1000)[0] == b"x" * 100
    with pytest.raises(ProviderError):
        client.download("http://127.0.0.1:8000/admin/", max_bytes=1000)
    assert len(seen) == 1


def test_it_refuses_a_body_larger_than_max_bytes():
    client, _ = client_with(media_server(b"x" * 5000))
    with pytest.raises(ProviderError) as caught:
        client.download("https://mmg.whatsapp.net/a", max_bytes=4999)
    assert caught.value.permanent is True
    assert caught.value.reason == "El archivo supera el tamaño máximo permitido."


def test_it_stops_streaming_past_max_bytes_without_content_length():
    def chunks():
        yield from [b"x" * 1000] * 10

    client, _ = client_with(lambda request: httpx.Response(200, content=chunks()))
    with pytest.raises(ProviderError) as caught:
        client.download("https://mmg.whatsapp.net/a", max_bytes=2500)
    assert caught.value.reason == "El archivo supera el tamaño máximo permitido."


def test_it_does_not_follow_redirects_away_from_the_provider():
    client, seen = client_with(
        lambda request: httpx.Response(302, headers={"location": "http://169.254.169.254/"})
    )
    with pytest.raises(ProviderError) as caught:
        client.download("https://mmg.whatsapp.net/a", max_bytes=1000)
    assert caught.value.permanent is True
    assert len(seen) == 1


def test_it_treats_expired_media_as_permanent_and_5xx_as_transient():
    client, _ = client_with(
        lambda request: httpx.Response(404 if "old" in str(request.url) else 503)
    )
    with pytest.raises(ProviderError) as expired:
        client.download("https://mmg.whatsapp.net/old", max_bytes=1000)
    with pytest.raises(ProviderError) as flaky:
        client.download("https://mmg.whatsapp.net/new", max_bytes=1000)
    assert (expired.value.permanent, flaky.value.permanent) == (True, False)


# --- the process-wide client ----------------------------------------------------------------


@pytest.fixture
def fresh_client():
    wasender.client.cache_clear()
    yield wasender.client
    wasender.client.cache_clear()


def test_it_uses_the_simulator_key_when_simulating(settings, fresh_client):
    settings.USE_SIMULATOR = True
    settings.WASENDER_BASE_URL = "http://127.0.0.1:8001/api"
    client = fresh_client()
    assert client.api_key == settings.WASENDER_SIMULATOR_KEY
    assert client is fresh_client()
    assert client.host_allowed("http://127.0.0.1:8001/media/x")


def test_it_uses_the_real_key_otherwise(settings, fresh_client):
    settings.USE_SIMULATOR = False
    settings.WASENDER_API_KEY = "live-key"
    settings.WASENDER_BASE_URL = "https://www.wasenderapi.com/api"
    settings.WASENDER_TIMEOUT = 3.5
    client = fresh_client()
    assert client.api_key == "live-key"
    assert client.http.timeout.read == 3.5
    assert not client.host_allowed("http://127.0.0.1:8001/media/x")
