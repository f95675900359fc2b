"""POST /webhooks/wasender/: WaSender pushes every message, status and session change here.

Verify the shared secret, then store the raw body (with what it means, or alone for a worker
during a burst: inbox.intake) and answer 200 once it is committed: from then on nothing is
lost. What we merely do not understand still gets 200 (stored, marked ignored), so the sender
does not retry it forever; if applying it fails, the raw body is stored alone and
inbox.intake retries it. WaSender documents no redelivery, so a 5xx (the database is down) is
the only answer that leaves the event with the sender.
"""

import hmac
import json
import logging
import math

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.db import DatabaseError, InterfaceError, OperationalError
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from inbox.intake import webhook_event_accept

log = logging.getLogger(__name__)


def _error(status: int, code: str) -> JsonResponse:
    return JsonResponse({"ok": False, "error": code}, status=status)


def _secret_ok(given: str) -> bool:
    """WaSender sends the secret itself, not an HMAC: compare it in constant time."""
    expected = settings.WASENDER_WEBHOOK_SECRET
    return bool(expected) and hmac.compare_digest(given.encode(), expected.encode())


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("non-finite number")
    return value


def _reject_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def _clean(value):
    """Text the databases cannot store (NUL, lone surrogates) becomes U+FFFD."""
    if isinstance(value, str):
        text = value.replace("\x00", "\ufffd")
        return text.encode("utf-8", "replace").decode("utf-8") if not text.isascii() else text
    if isinstance(value, list):
        return [_clean(v) for v in value]
    if isinstance(value, dict):
        return {_clean(k): _clean(v) for k, v in value.items()}
    return value


def payload_load(body: bytes) -> dict:
    payload = json.loads(body, parse_float=_finite, parse_constant=_reject_constant)
    if not isinstance(payload, dict):
        raise ValueError("not an object")
    return _clean(payload)


def _declared_length(request) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


@login_not_required
@csrf_exempt
@require_POST
def wasender_webhook(request):
    if not _secret_ok(request.headers.get("X-Webhook-Signature", "")):
        return _error(401, "unauthorized")
    cap = settings.WASENDER_WEBHOOK_MAX_BYTES
    if _declared_length(request) > cap:
        return _error(413, "too_large")
    body = request.read(cap + 1)
    if len(body) > cap:
        return _error(413, "too_large")
    try:
        payload = payload_load(body)
    except (ValueError, RecursionError):
        return _error(400, "invalid_json")
    try:
        webhook_event_accept(payload=payload)
    except (OperationalError, InterfaceError):
        log.exception("webhook not stored: database unavailable")
        return _error(503, "unavailable")
    except DatabaseError:
        log.exception("webhook not stored: rejected by the database")
        return _error(400, "unstorable")
    return JsonResponse({"ok": True})
