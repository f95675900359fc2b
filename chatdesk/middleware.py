"""Request id, Content Security Policy, and the webhook's source-address allowlist."""

import logging

from django.conf import settings
from django.http import JsonResponse
from django.middleware.locale import LocaleMiddleware
from django.utils import translation

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


def csp_header_value(policy: dict[str, list[str]]) -> str:
    return "; ".join(" ".join([name, *sources]) for name, sources in policy.items())


class ContentSecurityPolicyMiddleware:
    """One header for every response (pages, fragments, the admin, errors). A view that needs
    a different policy sets the header itself; it is then left alone."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.value = csp_header_value(settings.CONTENT_SECURITY_POLICY)
        self.header = (
            "Content-Security-Policy-Report-Only"
            if settings.CSP_REPORT_ONLY
            else "Content-Security-Policy"
        )

    def __call__(self, request):
        response = self.get_response(request)
        if "Content-Security-Policy" not in response and self.header not in response:
            response[self.header] = self.value
        return response


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
