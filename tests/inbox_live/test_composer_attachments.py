"""The composer's attachments, through the view: stored, queued, refused with a reason, names
escaped; and the status check of a line stuck in "sent"."""

import base64

import httpx
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from inbox.models import Message
from provider import wasender
from tests.inbox_live.conftest import HOSTILE
from tests.outbound.helpers import Script, client_for

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGA"
    "WjR9awAAAABJRU5ErkJggg=="
)


@pytest.fixture
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


@pytest.fixture
def provider(monkeypatch):
    """provider(*responses): WaSender answers these over the HTTP seam."""

    def answer(*responses):
        script = Script(*responses)
        monkeypatch.setattr(wasender, "client", lambda: client_for(script))
        return script

    return answer


def reply(client, conversation, **data):
    return client.post(f"/inbox/c/{conversation.pk}/reply/", data, **HTMX)


def test_it_queues_an_attachment_without_calling_the_provider(
    client_for, bob, carlos, media_root, provider
):
    script = provider(httpx.Response(500))
    upload = SimpleUploadedFile("recibo.jpg", PNG, content_type="image/jpeg")
    response = reply(client_for(bob), carlos, text="Tu recibo", attachment=upload)
    assert response.status_code == 200
    message = Message.objects.get(direction="out")
    assert (message.kind, message.media_mime, message.media_filename, message.status) == (
        "image",
        "image/png",
        "recibo.jpg",
        "queued",
    )
    assert (media_root / message.media_file.name).read_bytes() == PNG
    assert script.requests == []  # the upload is the worker's job
    html = response.content.decode()
    assert f"/inbox/m/{message.pk}/media/" in html
    media = client_for(bob).get(f"/inbox/m/{message.pk}/media/")
    assert (media.status_code, media["Content-Type"]) == (200, "image/png")


def test_it_sends_an_attachment_without_text(client_for, bob, carlos, media_root):
    upload = SimpleUploadedFile("lista.pdf", b"%PDF-1.4 precios")
    assert reply(client_for(bob), carlos, text="", attachment=upload).status_code == 200
    assert Message.objects.get(direction="out").kind == "document"


def test_it_refuses_a_disguised_file_in_spanish_and_keeps_the_text(
    client_for, bob, carlos, media_root
):
    upload = SimpleUploadedFile(
        "factura.pdf", b"MZ\x90\x00 programa", content_type="application/pdf"
    )
    response = reply(client_for(bob), carlos, text="Mira esto", attachment=upload)
    assert response.status_code == 422
    html = response.content.decode()
    assert "«factura.pdf» no es un tipo de archivo permitido" in html
    assert "Mira esto" in html
    assert not Message.objects.filter(direction="out").exists()
    assert [p for p in media_root.rglob("*") if p.is_file()] == []


def test_it_refuses_a_file_too_big_for_its_kind(client_for, bob, carlos, media_root, settings):
    settings.ATTACHMENT_MAX_BYTES = {**settings.ATTACHMENT_MAX_BYTES, "audio": 1024 * 1024}
    upload = SimpleUploadedFile("nota.ogg", b"OggS" + b"\x00" * (2 * 1024 * 1024))
    response = reply(client_for(bob), carlos, attachment=upload)
    assert response.status_code == 422
    assert "«nota.ogg» pesa 2 MB; el máximo para un audio es 1 MB." in response.content.decode()
    assert not Message.objects.filter(direction="out").exists()


def test_it_escapes_the_file_name_wherever_it_shows(client_for, bob, carlos, media_root):
    client = client_for(bob)
    refused = reply(client, carlos, attachment=SimpleUploadedFile(HOSTILE + ".exe", b"MZ"))
    assert HOSTILE not in refused.content.decode()
    assert "&lt;img src=x onerror=alert(1)&gt;" in refused.content.decode()
    reply(client, carlos, attachment=SimpleUploadedFile(HOSTILE + ".pdf", b"%PDF-1.4"))
    html = client.get(f"/inbox/c/{carlos.pk}/").content.decode()
    assert HOSTILE not in html
    assert "&lt;img src=x onerror=alert(1)&gt;.pdf" in html


def test_it_retries_a_failed_attachment_with_the_same_file(client_for, bob, carlos, media_root):
    client = client_for(bob)
    reply(client, carlos, attachment=SimpleUploadedFile("a.png", PNG))
    failed = Message.objects.get(direction="out")
    Message.objects.filter(pk=failed.pk).update(
        status="failed", media_url="https://wasender.test/expired"
    )
    client.post(f"/inbox/m/{failed.pk}/retry/", **HTMX)
    copy = Message.objects.exclude(pk=failed.pk).get(direction="out")
    assert (copy.media_file.name, copy.media_url, copy.kind) == (
        failed.media_file.name,
        "",
        "image",
    )


# --- "Consultar estado" -------------------------------------------------------------------------


def sent_line(conversation, **fields) -> Message:
    fields = {"status": "sent", "provider_msg_id": 100321, **fields}
    return Message.objects.create(
        conversation=conversation, direction="out", author_kind="agent", body="Listo", **fields
    )


def info(status, wa_id="3EB0INFO0001") -> httpx.Response:
    data = {"msgId": 100321, "key": {"id": wa_id, "fromMe": True}, "status": status}
    return httpx.Response(200, json={"success": True, "data": data})


def test_it_offers_the_check_only_on_lines_stuck_in_sent(client_for, bob, carlos):
    stuck = sent_line(carlos)
    delivered = sent_line(carlos, status="delivered", wa_id="3EB0OTHER", provider_msg_id=9)
    html = client_for(bob).get(f"/inbox/c/{carlos.pk}/").content.decode()
    assert f"/inbox/m/{stuck.pk}/status/" in html
    assert f"/inbox/m/{delivered.pk}/status/" not in html


def test_it_moves_a_stuck_line_forward_from_message_info(client_for, bob, carlos, provider):
    line = sent_line(carlos)
    script = provider(info(4))
    response = client_for(bob).post(f"/inbox/m/{line.pk}/status/", **HTMX)
    assert response.status_code == 200
    assert script.requests[0].url.path == "/api/messages/100321/info"
    line.refresh_from_db()
    assert (line.status, line.wa_id) == ("read", "3EB0INFO0001")
    assert line.delivered_at is not None and line.read_at is not None
    html = response.content.decode()
    assert f'id="msg-{line.pk}"' in html and 'data-status="read"' in html


def test_it_never_moves_a_status_back(client_for, bob, carlos, provider):
    line = sent_line(carlos, wa_id="3EB0INFO0001")
    Message.objects.filter(pk=line.pk).update(status="delivered")
    provider(info(2))
    response = client_for(bob).post(f"/inbox/m/{line.pk}/status/", **HTMX)
    line.refresh_from_db()
    assert line.status == "delivered"
    assert "Sin cambios" in response.content.decode()


def test_it_answers_a_provider_failure_with_a_note_not_an_error(client_for, bob, carlos, provider):
    line = sent_line(carlos)
    provider(httpx.ConnectError("refused"))
    response = client_for(bob).post(f"/inbox/m/{line.pk}/status/", **HTMX)
    assert response.status_code == 200
    assert "No se pudo consultar: No se pudo conectar con WaSender." in response.content.decode()
    line.refresh_from_db()
    assert line.status == "sent"


def test_it_marks_a_reported_error_as_failed(client_for, bob, carlos, provider):
    line = sent_line(carlos)
    provider(info(0))
    client_for(bob).post(f"/inbox/m/{line.pk}/status/", **HTMX)
    line.refresh_from_db()
    assert (line.status, line.failure_reason) == (
        "failed",
        "WhatsApp informó un error al entregar el mensaje.",
    )


def test_it_forbids_the_check_to_users_without_a_support_role(client_for, carla, carlos):
    line = sent_line(carlos)
    response = client_for(carla).post(f"/inbox/m/{line.pk}/status/", **HTMX)
    assert response.status_code in (302, 403)
    line.refresh_from_db()
    assert line.status == "sent"
