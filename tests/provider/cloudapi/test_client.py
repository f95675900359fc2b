"""The Cloud API client against Meta's documented answers (canned at the HTTP seam): what each
becomes, a SendResult or a ProviderError with Meta's code, retry decision and Spanish reason."""

import json

import httpx
import pytest

from provider.cloudapi import CloudApiClient
from provider.errors import ProviderError
from provider.sending import Quote, SendRequest, TemplateSend
from tests.provider.cloudapi.conftest import fixture_load


def client_with(status=200, body=None, seen=None) -> CloudApiClient:
    def answer(request):
        if seen is not None:
            seen.append(request)
        return httpx.Response(status, json=body)

    return CloudApiClient(
        phone_number_id="106540352242922",
        access_token="tok",
        transport=httpx.MockTransport(answer),
    )


def sent_payload(request: SendRequest) -> dict:
    seen = []
    client_with(body=fixture_load("send_ok"), seen=seen).send(request)
    [call] = seen
    assert str(call.url) == "https://graph.facebook.com/v21.0/106540352242922/messages"
    assert call.headers["authorization"] == "Bearer tok"
    return json.loads(call.content)


def test_a_text_send_answers_the_wamid():
    result = client_with(body=fixture_load("send_ok")).send(
        SendRequest(to="+593968196046", text="Hola")
    )
    assert result.provider_id == result.wa_id == fixture_load("send_ok")["messages"][0]["id"]
    assert result.status == "accepted"


def test_payload_shapes():
    assert sent_payload(
        SendRequest(to="+593 96 819 6046", text="Hola", quote=Quote(wa_id="wamid.X"))
    ) == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "593968196046",
        "context": {"message_id": "wamid.X"},
        "type": "text",
        "text": {"body": "Hola", "preview_url": False},
    }
    media = sent_payload(
        SendRequest(
            to="593968196046",
            text="Factura",
            media_kind="document",
            media_ref="12345",
            file_name="f.pdf",
        )
    )
    assert media["document"] == {"id": "12345", "caption": "Factura", "filename": "f.pdf"}
    audio = sent_payload(
        SendRequest(
            to="593968196046", text="x", media_kind="audio", media_ref="https://e.com/a.ogg"
        )
    )
    assert audio["audio"] == {"link": "https://e.com/a.ogg"}
    template = sent_payload(
        SendRequest(
            to="593968196046",
            template=TemplateSend(
                name="promo_mes",
                language="es",
                body_params=("María",),
                header_kind="image",
                header_ref="https://e.com/p.jpg",
            ),
        )
    )
    assert template["template"] == {
        "name": "promo_mes",
        "language": {"code": "es"},
        "components": [
            {
                "type": "header",
                "parameters": [{"type": "image", "image": {"link": "https://e.com/p.jpg"}}],
            },
            {"type": "body", "parameters": [{"type": "text", "text": "María"}]},
        ],
    }


@pytest.mark.parametrize(
    "fixture,status,code,permanent,retry_after,per_recipient,reason",
    [
        ("error_rate_limit", 400, "130429", False, 2.0, False, "Meta limitó los envíos"),
        ("error_pair_rate", 400, "131056", False, 6.0, True, "Demasiados mensajes seguidos"),
        ("error_marketing_cap", 400, "131049", False, 86400.0, True, "Limitado por Meta"),
        ("error_window_closed", 400, "131047", True, None, False, "Pasaron más de 24 horas"),
        ("error_spam_rate", 400, "131048", False, 3600.0, False, "Meta restringió"),
        ("error_template_params", 400, "132000", True, None, False, "La cantidad de variables"),
        ("error_template_paused", 400, "132015", True, None, False, "La plantilla está pausada"),
        ("error_invalid_parameter", 400, "100", True, None, False, "Meta rechazó un dato"),
        ("error_token_expired", 401, "190", True, None, False, "El token de acceso de Meta"),
        ("error_policy_block", 400, "368", True, None, False, "Meta bloqueó temporalmente"),
    ],
)
def test_meta_errors_are_mapped(
    fixture, status, code, permanent, retry_after, per_recipient, reason
):
    with pytest.raises(ProviderError) as caught:
        client_with(status, fixture_load(fixture)).send(SendRequest(to="593968196046", text="Hola"))
    error = caught.value
    assert (error.code, error.status, error.permanent, error.ambiguous) == (
        code,
        status,
        permanent,
        False,
    )
    assert (error.retry_after, error.per_recipient) == (retry_after, per_recipient)
    assert error.reason.startswith(reason)


@pytest.mark.parametrize(
    "status,body",
    [(500, fixture_load("error_internal")), (503, None), (200, {"messaging_product": "whatsapp"})],
)
def test_unclear_answers_are_ambiguous(status, body):
    with pytest.raises(ProviderError) as caught:
        client_with(status, body).send(SendRequest(to="593968196046", text="Hola"))
    assert (caught.value.permanent, caught.value.ambiguous) == (False, True)


def test_an_unopened_connection_is_not_ambiguous():
    def refuse(request):
        raise httpx.ConnectError("refused", request=request)

    client = CloudApiClient(
        phone_number_id="1", access_token="t", transport=httpx.MockTransport(refuse)
    )
    with pytest.raises(ProviderError) as caught:
        client.send(SendRequest(to="593968196046", text="Hola"))
    assert (caught.value.permanent, caught.value.ambiguous) == (False, False)


def test_templates_list_reads_meta_shape():
    templates = client_with(body=fixture_load("templates_list")).templates_list("102290129340398")
    assert [(t.name, t.status, t.category) for t in templates] == [
        ("recordatorio_pago", "APPROVED", "UTILITY"),
        ("oferta_navidad", "REJECTED", "MARKETING"),
    ]
    assert (templates[0].body_params_count(), templates[1].header_format()) == (2, "image")


def test_media_fetch_refuses_a_foreign_url():
    body = {**fixture_load("media_info"), "url": "http://169.254.169.254/latest/"}
    with pytest.raises(ProviderError) as caught:
        client_with(body=body).media_fetch("1003383421387256", max_bytes=10**6)
    assert caught.value.permanent is True
    assert client_with().host_allowed(fixture_load("media_info")["url"])
