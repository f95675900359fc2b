"""/webhooks/meta/: Meta's WhatsApp Cloud API webhook, for every Cloud API number.

GET is Meta's verification handshake (hub.mode=subscribe, hub.verify_token, answered with
hub.challenge). POST carries events signed with X-Hub-Signature-256: an HMAC-SHA256 of the raw
body with the app's secret, checked in constant time against each Cloud API channel's secret
before the body is read as JSON. From there the promises are WaSender's (inbox/webhooks.py):
the raw event is committed before the 200; the intake routes each change to its channel by
metadata.phone_number_id and deduplicates on the wamid.
"""

import logging

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.db import DatabaseError, InterfaceError, OperationalError
from django.http import HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from inbox import channels
from inbox.intake import webhook_event_accept
from inbox.models import Channel
from inbox.webhooks import payload_load

log = logging.getLogger(__name__)


def _error(status: int, code: str) -> JsonResponse:
    return JsonResponse({"ok": False, "error": code}, status=status)


def _cloudapi_credentials() -> list[dict]:
    numbers = Channel.objects.filter(provider=Channel.Provider.CLOUDAPI, active=True)
    if not numbers.exists() and settings.META_PHONE_NUMBER_ID:
        # The environment named a number after the last migrate: it becomes its channel once
        # (not a write on every webhook).
        channels.channels_env_sync()
    return [channels.credentials(channel) for channel in numbers]


def _handshake(request) -> HttpResponse:
    from provider.cloudapi.payloads import verification_answer

    for creds in _cloudapi_credentials():
        challenge = verification_answer(request.GET, creds.get("verify_token", ""))
        if challenge is not None:
            return HttpResponse(challenge, content_type="text/plain")
    return HttpResponse("Token de verificación incorrecto.", status=403, content_type="text/plain")


def _signed(body: bytes, header: str) -> bool:
    from provider.cloudapi.payloads import signature_valid

    secrets = {creds.get("app_secret", "") for creds in _cloudapi_credentials()} - {""}
    # Every secret is tried (no early exit on a match's position leaks nothing useful: the
    # set is the operator's few apps).
    return any(signature_valid(body, header, secret) for secret in secrets)


@login_not_required
@csrf_exempt
@require_http_methods(["GET", "POST"])
def meta_webhook(request):
    if request.method == "GET":
        return _handshake(request)
    cap = settings.WASENDER_WEBHOOK_MAX_BYTES
    body = request.read(cap + 1)
    if len(body) > cap:
        return _error(413, "too_large")
    if not _signed(body, request.headers.get("X-Hub-Signature-256", "")):
        return _error(401, "unauthorized")
    try:
        payload = payload_load(body)
    except (ValueError, RecursionError):
        return _error(400, "invalid_json")
    try:
        webhook_event_accept(payload=payload, provider=Channel.Provider.CLOUDAPI)
    except (OperationalError, InterfaceError):
        log.exception("Meta webhook not stored: database unavailable")
        return _error(503, "unavailable")
    except DatabaseError:
        log.exception("Meta webhook not stored: rejected by the database")
        return _error(400, "unstorable")
    return JsonResponse({"ok": True})
