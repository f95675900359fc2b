"""Request id, hostile input, the webhook's source-address allowlist, Spanish first."""

import json
import logging
import re

from django.conf import settings
from django.http import Http404, HttpResponseBadRequest, JsonResponse
from django.middleware.locale import LocaleMiddleware
from django.utils import translation
from django.utils.translation import gettext as _

from chatdesk.forms import ID_MAX
from chatdesk.logging import request_id_from_header, request_id_var
from chatdesk.security import client_ip, ip_allowed

log = logging.getLogger(__name__)

REQUEST_ID_HEADER = "X-Request-ID"


class RequestIdMiddleware:
    """Takes X-Request-ID from the caller (a proxy, WaSender) or makes one, keeps it in the
    logging context for the request, and returns it in the response."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        rid = request_id_from_header(request.headers.get(REQUEST_ID_HEADER))
        request.request_id = rid
        # Not reset on the way out: Django logs "Not Found" and 5xx lines after the middleware
        # has returned, and they belong to this request too. Under ASGI every request runs in
        # a context of its own; the next request on a thread sets its own id first.
        request_id_var.set(rid)
        response = self.get_response(request)
        response[REQUEST_ID_HEADER] = rid
        return response


# What no database column takes: NUL (PostgreSQL refuses it) and lone surrogates (not UTF-8).
UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _unstorable(value) -> bool:
    if isinstance(value, str):
        return bool(UNSTORABLE.search(value))
    if isinstance(value, list):
        return any(_unstorable(v) for v in value)
    if isinstance(value, dict):
        return any(_unstorable(k) or _unstorable(v) for k, v in value.items())
    return False


def _unstorable_input(request) -> str | None:
    """Where the request carries text no column can store ("query" or "body"), or None. The
    body is looked at as the view would read it: a form, or JSON (the API)."""
    if any(_unstorable([key, *values]) for key, values in request.GET.lists()):
        return "query"
    if request.method not in ("POST", "PUT", "PATCH"):
        return None
    if request.content_type in ("multipart/form-data", "application/x-www-form-urlencoded"):
        if any(_unstorable([key, *values]) for key, values in request.POST.lists()):
            return "body"
        if any(_unstorable(upload.name or "") for upload in request.FILES.values()):
            return "body"
    elif request.content_type == "application/json":
        try:
            data = json.loads(request.body)
        except (ValueError, RecursionError):
            return None  # not JSON: the API answers that itself
        if _unstorable(data):
            return "body"
    return None


class HostileInputMiddleware:
    """Input a client can send but no database can store is refused before any view runs:
    a NUL character or a lone surrogate in a query, a form or a JSON body answers 400 (422 in
    the API, in its own error shape), an id in the URL past 64 bits 404. The WaSender webhook
    is left alone: it stores what it gets, cleaned (inbox/webhooks.py)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        if any(isinstance(v, int) and not -ID_MAX - 1 <= v <= ID_MAX for v in view_kwargs.values()):
            raise Http404
        match = request.resolver_match
        if match is not None and match.view_name == "wasender_webhook":
            return None
        where = _unstorable_input(request)
        if where is None:
            return None
        message = _(
            "El texto tiene caracteres que no se pueden guardar (NUL o sustitutos "
            "sueltos). Quítalos y vuelve a intentarlo."
        )
        if match is not None and match.namespace == "api":
            error = {"type": "value_error", "loc": [where], "msg": message}
            return JsonResponse({"detail": [error]}, status=422)
        return HttpResponseBadRequest(message, content_type="text/plain; charset=utf-8")


class WebhookAllowlistMiddleware:
    """WASENDER_WEBHOOK_ALLOWED_IPS, applied to the webhook view only, before it reads the
    body. Empty means any address (the secret still guards it)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        match = request.resolver_match
        if match is None or match.view_name != "wasender_webhook":
            return None
        address = client_ip(request)
        if ip_allowed(address, settings.WASENDER_WEBHOOK_ALLOWED_IPS):
            return None
        log.warning("webhook refused: %s is not in WASENDER_WEBHOOK_ALLOWED_IPS", address)
        return JsonResponse({"ok": False, "error": "forbidden"}, status=403)


def language_from_cookies(cookies) -> str:
    """Spanish (Ecuador) first: another language only when the person picked it with the
    selector (its cookie). The browser's Accept-Language is not consulted, so an agent with an
    English browser still sees the desk in the business's language."""
    chosen = cookies.get(settings.LANGUAGE_COOKIE_NAME, "")
    return chosen if chosen in dict(settings.LANGUAGES) else settings.LANGUAGE_CODE


class SpanishFirstLocaleMiddleware(LocaleMiddleware):
    def process_request(self, request):
        translation.activate(language_from_cookies(request.COOKIES))
        request.LANGUAGE_CODE = translation.get_language()
