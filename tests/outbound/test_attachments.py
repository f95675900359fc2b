"""Attachments: the type comes from the bytes, the size is capped per kind, and the pipeline
uploads the stored copy to WaSender just before the send (never in the web request)."""

import base64
import functools
import io
import json
import zipfile

import httpx
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from inbox.models import Message
from outbound.attachments import attachment_accept, attachment_name_clean, sniff_bytes
from outbound.pipeline import deliver
from outbound.services import SendRejected, message_send
from tests.outbound.helpers import NoWait, Script, client_for, sent_ok

PHONE = "+593968196046"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
ODT = "application/vnd.oasis.opendocument.text"
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGA"
    "WjR9awAAAABJRU5ErkJggg=="
)


def office(prefix: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr(f"{prefix}document.xml", "<x/>")
    return buffer.getvalue()


def opendocument(mime: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("mimetype", mime)
        archive.writestr("content.xml", "<x/>")
    return buffer.getvalue()


def plain_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("setup.exe", "MZ")
    return buffer.getvalue()


@pytest.fixture
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


def stored_files(root) -> list:
    return [p for p in root.rglob("*") if p.is_file()]


@pytest.mark.parametrize(
    ("content", "kind", "mime"),
    [
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "image", "image/jpeg"),
        (PNG, "image", "image/png"),
        (b"RIFF\x24\x00\x00\x00WEBPVP8 ", "image", "image/webp"),
        (b"%PDF-1.7\n", "document", "application/pdf"),
        (office("word/"), "document", DOCX),
        (office("xl/"), "document", XLSX),
        (opendocument(ODT), "document", ODT),
        (b"OggS\x00\x02" + b"\x00" * 20, "audio", "audio/ogg"),
        (b"ID3\x04\x00\x00", "audio", "audio/mpeg"),
        (b"\xff\xfb\x90\x64", "audio", "audio/mpeg"),
        (b"\x00\x00\x00\x20ftypM4A \x00\x00\x00\x00", "audio", "audio/mp4"),
        (b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00", "video", "video/mp4"),
    ],
)
def test_it_sniffs_the_type_from_the_bytes(content, kind, mime):
    sniffed = sniff_bytes(content)
    assert (sniffed.kind, sniffed.mime) == (kind, mime)


@pytest.mark.parametrize(
    "content",
    [
        b"MZ\x90\x00",
        b"<html><script>alert(1)</script>",
        b"#!/bin/sh\n",
        b"",
        plain_zip(),
        b"GIF89a\x01\x00",
        b"PK\x03\x04broken",
    ],
)
def test_it_refuses_what_it_cannot_identify(content):
    assert sniff_bytes(content) is None


def test_it_keeps_only_a_plain_base_name():
    assert attachment_name_clean("C:\\Users\\ana\\factura.pdf") == "factura.pdf"
    assert attachment_name_clean("../../etc/passwd") == "passwd"
    assert attachment_name_clean("evil\u202etxt.exe") == "eviltxt.exe"
    assert attachment_name_clean("") == "archivo"


def test_it_trusts_neither_the_name_nor_the_browsers_type(db, media_root):
    upload = SimpleUploadedFile("foto.pdf", PNG, content_type="application/pdf")
    attachment = attachment_accept(upload=upload)
    assert (attachment.kind, attachment.mime, attachment.name) == ("image", "image/png", "foto.pdf")
    assert attachment.path.endswith(".png") and attachment.path.startswith("outbox/")
    assert (media_root / attachment.path).read_bytes() == PNG


def test_it_refuses_a_file_over_its_kinds_limit(db, media_root, settings):
    settings.ATTACHMENT_MAX_BYTES = {**settings.ATTACHMENT_MAX_BYTES, "image": 1024 * 1024}
    big = PNG + b"\x00" * (1024 * 1024)
    with pytest.raises(SendRejected) as refused:
        attachment_accept(upload=SimpleUploadedFile("grande.png", big, content_type="image/png"))
    assert refused.value.field == "attachment"
    assert refused.value.message == "«grande.png» pesa 1 MB; el máximo para una imagen es 1 MB."
    assert stored_files(media_root) == []


def test_it_uploads_the_file_just_before_the_send(db, media_root):
    attachment = attachment_accept(upload=SimpleUploadedFile("recibo.png", PNG))
    message = message_send(
        phone=PHONE, text="Tu recibo", author_kind="agent", attachment=attachment
    )
    assert (message.kind, message.media_url, message.status) == ("image", "", "queued")
    upload_ok = httpx.Response(
        200, json={"success": True, "publicUrl": "https://wasender.test/m/1"}
    )
    script = Script(upload_ok, sent_ok(777))
    assert deliver(message.id, client=client_for(script), bucket=NoWait()) == "sent"
    upload, send = script.requests
    assert (upload.url.path, upload.headers["content-type"], upload.content) == (
        "/api/upload",
        "image/png",
        PNG,
    )
    assert json.loads(send.content) == {
        "to": PHONE,
        "text": "Tu recibo",
        "imageUrl": "https://wasender.test/m/1",
    }
    message.refresh_from_db()
    assert (message.status, message.media_url) == ("sent", "https://wasender.test/m/1")


def test_it_sends_a_document_under_the_agents_file_name(db, media_root):
    attachment = attachment_accept(upload=SimpleUploadedFile("Cotización 2026.pdf", b"%PDF-1.4"))
    message = message_send(phone=PHONE, author_kind="agent", attachment=attachment)
    upload_ok = httpx.Response(
        200, json={"success": True, "data": {"publicUrl": "https://w.test/d"}}
    )
    script = Script(upload_ok, sent_ok())
    deliver(message.id, client=client_for(script), bucket=NoWait())
    assert json.loads(script.requests[1].content) == {
        "to": PHONE,
        "documentUrl": "https://w.test/d",
        "fileName": "Cotización 2026.pdf",
    }


def test_a_failed_upload_is_retried_like_a_failed_send(db, media_root):
    attachment = attachment_accept(upload=SimpleUploadedFile("nota.ogg", b"OggS" + b"\x00" * 40))
    message = message_send(phone=PHONE, author_kind="agent", attachment=attachment)
    script = Script(httpx.Response(503, json={"success": False, "message": "busy"}))
    assert deliver(message.id, client=client_for(script), bucket=NoWait()) == "retry"
    message.refresh_from_db()
    assert (message.status, message.media_url) == ("queued", "")
    assert [r.url.path for r in script.requests] == ["/api/upload"]


def test_a_missing_file_fails_the_message_with_a_reason(db, media_root):
    attachment = attachment_accept(upload=SimpleUploadedFile("a.png", PNG))
    message = message_send(phone=PHONE, author_kind="agent", attachment=attachment)
    (media_root / attachment.path).unlink()
    script = Script(sent_ok())
    assert deliver(message.id, client=client_for(script), bucket=NoWait()) == "failed"
    message.refresh_from_db()
    assert message.failure_reason == "El archivo adjunto ya no está disponible."
    assert script.requests == []
    assert Message.objects.get(pk=message.pk).status == "failed"


# --- hostile files: memory stays bounded whatever the file claims ---------------------------------

BOMB_INFLATED = 512 * 1024 * 1024


@functools.cache
def zip_bomb() -> bytes:
    """An OpenDocument-looking zip whose "mimetype" entry inflates to 512 MB of zeros (about
    0.5 MB on the wire): reading that entry whole is what took a process past 1 GB."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        with archive.open("mimetype", "w", force_zip64=False) as entry:
            zeros = bytes(1024 * 1024)
            for _ in range(BOMB_INFLATED // len(zeros)):
                entry.write(zeros)
        archive.writestr("content.xml", "<x/>")
    return buffer.getvalue()


def png_bomb() -> bytes:
    """A PNG declaring 50,000 x 50,000 pixels (7.5 GB decoded) in a few KB of zeros."""
    import struct
    import zlib

    def part(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", 50_000, 50_000, 8, 2, 0, 0, 0)
    pixels = zlib.compress(bytes(50_000 * 3 + 1) * 200, 9)  # the first rows; enough to inflate
    return b"\x89PNG\r\n\x1a\n" + part(b"IHDR", header) + part(b"IDAT", pixels) + part(b"IEND", b"")


def peak_bytes(work) -> int:
    import tracemalloc

    tracemalloc.start()
    try:
        work()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_it_refuses_a_zip_bomb_without_inflating_it(db, media_root):
    bomb = zip_bomb()
    upload = SimpleUploadedFile("informe.odt", bomb)

    def accept():
        with pytest.raises(SendRejected, match="no es un tipo de archivo permitido"):
            attachment_accept(upload=upload)

    peak = peak_bytes(accept)
    assert peak < 5 * 1024 * 1024, f"{peak / 1024 / 1024:.1f} MB for a {len(bomb)} byte file"
    assert stored_files(media_root) == []


def test_it_refuses_a_zip_declaring_more_entries_than_a_document_has(db, media_root):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        for n in range(6000):
            archive.writestr(f"word/{n}.xml", "")
    with pytest.raises(SendRejected):
        attachment_accept(upload=SimpleUploadedFile("muchos.docx", buffer.getvalue()))


def test_it_takes_a_png_bomb_as_bytes_without_decoding_it(db, media_root):
    """Only the magic number is read: the picture is never decoded here (WhatsApp gets the
    file as it is), so its declared size costs nothing."""
    bomb = png_bomb()
    found = []
    peak = peak_bytes(
        lambda: found.append(attachment_accept(upload=SimpleUploadedFile("foto.png", bomb)))
    )
    assert found[0].kind == "image"
    assert peak < 5 * 1024 * 1024, f"{peak / 1024 / 1024:.1f} MB"


def test_it_refuses_a_file_over_the_largest_cap_before_looking_inside(db, media_root, settings):
    settings.ATTACHMENT_MAX_BYTES = {"image": 10, "audio": 10, "video": 10, "document": 100}
    with pytest.raises(SendRejected, match="el máximo es"):
        attachment_accept(upload=SimpleUploadedFile("x.odt", b"PK\x03\x04" + b"x" * 200))
