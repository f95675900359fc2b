"""Files an agent attaches to a reply: what they really are, whether they may go, where they
wait until the send pipeline uploads them to WaSender (POST /upload, a public URL for 24 h).

It lives in outbound because only sending uses it: the inbox view hands the upload here, then
to `message_send`; the pipeline uploads the stored copy just before the send. The type comes
from the first bytes (magic numbers), never from the browser's Content-Type or the name; the
stored name is ours (a random id and the sniffed extension), the agent's name is only shown.
"""

import io
import re
import secrets
import struct
import unicodedata
import zipfile
from dataclasses import dataclass

from django.conf import settings
from django.core.files.storage import default_storage
from django.utils import timezone
from django.utils.translation import gettext as _

from outbound.services import SendRejected

SNIFF_BYTES = 64
# A zip's end record sits in its last 64 KB (22 bytes and a comment of up to 65,535). Office
# documents have tens of entries; an archive declaring thousands is refused before its central
# directory is read.
ZIP_TAIL = 22 + 65535
ZIP_MAX_ENTRIES = 5000
ZIP_MAX_DIRECTORY = 1024 * 1024
NAME_MAX = 120
# OOXML and OpenDocument files are zip archives: the first entry names tell them apart.
OOXML = {
    "word/": ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", ".docx"),
    "xl/": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", ".xlsx"),
    "ppt/": ("application/vnd.openxmlformats-officedocument.presentationml.presentation", ".pptx"),
}
OPENDOCUMENT = {
    "application/vnd.oasis.opendocument.text": ".odt",
    "application/vnd.oasis.opendocument.spreadsheet": ".ods",
    "application/vnd.oasis.opendocument.presentation": ".odp",
}
MP4_AUDIO_BRANDS = {b"M4A ", b"M4B "}
MP4_VIDEO_BRANDS = {b"isom", b"iso2", b"mp41", b"mp42", b"avc1", b"3gp4", b"3gp5", b"3g2a"}


@dataclass(frozen=True)
class Sniffed:
    kind: str  # image, audio, video or document (the WaSender send field)
    mime: str
    extension: str


@dataclass(frozen=True)
class Attachment:
    """A stored upload, ready for `message_send(attachment=...)`."""

    kind: str
    mime: str
    name: str  # the agent's file name, cleaned: shown and sent as fileName, never a path
    path: str  # in default_storage (MEDIA_ROOT)
    size: int


def _mp4(head: bytes) -> Sniffed | None:
    if head[4:8] != b"ftyp":
        return None
    brand = head[8:12]
    if brand in MP4_AUDIO_BRANDS:
        return Sniffed("audio", "audio/mp4", ".m4a")
    if brand in MP4_VIDEO_BRANDS:
        return Sniffed("video", "video/mp4", ".mp4")
    return None


def _mp3(head: bytes) -> bool:
    # An ID3 tag, or an MPEG-1/2 layer III frame header (sync bits, then layer III).
    return head[:3] == b"ID3" or (
        len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0 and head[1] & 0x06 == 0x02
    )


def _zip_entries(upload) -> int | None:
    """How many entries the zip's end record declares, read from its last 64 KB, before
    zipfile reads the whole central directory into memory. None for no zip, a directory over
    1 MB, or Zip64 (which no office document needs: more than 65,535 entries or 4 GB)."""
    upload.seek(0, io.SEEK_END)
    size = upload.tell()
    upload.seek(max(0, size - ZIP_TAIL))
    tail = upload.read(ZIP_TAIL)
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) - at < 22:
        return None
    entries, directory_size, directory_at = struct.unpack("<HLL", tail[at + 10 : at + 20])
    if entries == 0xFFFF or 0xFFFFFFFF in (directory_size, directory_at):
        return None
    return entries if directory_size <= ZIP_MAX_DIRECTORY else None


def _zip_document(upload) -> Sniffed | None:
    """Which office document a zip is, from its entry names; any other zip is refused. Bounded
    whatever the archive claims: the entry count is read first, and the mimetype entry through
    a stream that decompresses only the bytes asked for (a zip bomb's entry is never inflated)."""
    try:
        entries = _zip_entries(upload)
        if entries is None or entries > ZIP_MAX_ENTRIES:
            return None
        upload.seek(0)
        with zipfile.ZipFile(upload) as archive:
            names = archive.namelist()
            if "mimetype" in names:
                with archive.open("mimetype") as entry:
                    mime = entry.read(100).decode("ascii", "replace").strip()
                if mime in OPENDOCUMENT:
                    return Sniffed("document", mime, OPENDOCUMENT[mime])
    except (zipfile.BadZipFile, OSError, RuntimeError, KeyError, ValueError, struct.error):
        return None
    finally:
        upload.seek(0)
    if "[Content_Types].xml" not in names:
        return None
    for prefix, (mime, extension) in OOXML.items():
        if any(name.startswith(prefix) for name in names):
            return Sniffed("document", mime, extension)
    return None


def attachment_sniff(upload) -> Sniffed | None:
    """The file's real type from its first bytes (an open binary file), or None."""
    upload.seek(0)
    head = upload.read(SNIFF_BYTES)
    upload.seek(0)
    if head.startswith(b"\xff\xd8\xff"):
        return Sniffed("image", "image/jpeg", ".jpg")
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return Sniffed("image", "image/png", ".png")
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return Sniffed("image", "image/webp", ".webp")
    if head.startswith(b"%PDF-"):
        return Sniffed("document", "application/pdf", ".pdf")
    if head.startswith(b"PK\x03\x04"):
        return _zip_document(upload)
    if head.startswith(b"OggS"):
        return Sniffed("audio", "audio/ogg", ".ogg")
    if _mp3(head):
        return Sniffed("audio", "audio/mpeg", ".mp3")
    return _mp4(head)


def attachment_name_clean(raw: str) -> str:
    """The base name only, without control or format characters (no bidi tricks), short."""
    name = re.split(r"[\\/]", raw or "")[-1]
    name = "".join(c for c in name if unicodedata.category(c)[0] != "C").strip(" .")
    return name[-NAME_MAX:] or _("archivo")


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.1f}".rstrip("0").rstrip(".") + " MB"


def _kind_label(kind: str) -> str:
    return {
        "image": _("una imagen"),
        "audio": _("un audio"),
        "video": _("un video"),
        "document": _("un documento"),
    }[kind]


def attachment_accept(*, upload) -> Attachment:
    """Check an uploaded file (Django's UploadedFile) and store it under MEDIA_ROOT.
    Raises SendRejected with a Spanish reason for a refused type or size."""
    name = attachment_name_clean(upload.name)
    # The size first (known without reading): nothing larger than the largest cap is looked at.
    largest = max(settings.ATTACHMENT_MAX_BYTES.values())
    if upload.size > largest:
        raise SendRejected(
            "attachment",
            _("«%(name)s» pesa %(size)s; el máximo es %(max)s.")
            % {"name": name, "size": _megabytes(upload.size), "max": _megabytes(largest)},
        )
    sniffed = attachment_sniff(upload)
    if sniffed is None:
        raise SendRejected(
            "attachment",
            _(
                "«%(name)s» no es un tipo de archivo permitido. Adjunta una imagen (JPG, PNG, "
                "WebP), un documento (PDF, Word, Excel, PowerPoint, OpenDocument) o un audio "
                "(OGG, MP3, M4A)."
            )
            % {"name": name},
        )
    limit = settings.ATTACHMENT_MAX_BYTES[sniffed.kind]
    if upload.size > limit:
        raise SendRejected(
            "attachment",
            _("«%(name)s» pesa %(size)s; el máximo para %(kind)s es %(max)s.")
            % {
                "name": name,
                "size": _megabytes(upload.size),
                "kind": _kind_label(sniffed.kind),
                "max": _megabytes(limit),
            },
        )
    stored = f"outbox/{timezone.now():%Y/%m}/{secrets.token_hex(16)}{sniffed.extension}"
    upload.seek(0)
    path = default_storage.save(stored, upload)
    return Attachment(kind=sniffed.kind, mime=sniffed.mime, name=name, path=path, size=upload.size)


def attachment_discard(attachment: Attachment | None) -> None:
    """Drop a stored file whose message was not written after all."""
    if attachment is not None:
        default_storage.delete(attachment.path)


def attachment_read(path: str) -> bytes:
    with default_storage.open(path, "rb") as f:
        return f.read()


def sniff_bytes(content: bytes) -> Sniffed | None:
    """The same check on bytes in memory (tests, the API)."""
    return attachment_sniff(io.BytesIO(content))
