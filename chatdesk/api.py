"""The JSON API under /api/v1/ (django-ninja; schema at /api/v1/openapi.json, docs at
/api/v1/docs). Every operation needs `Authorization: Bearer <token>`; the token acts with its
user's role. Django's LoginRequiredMiddleware is told to stand aside (see `api_urls`) because
the token, not the session, is the login here."""

from datetime import timedelta

from django.contrib.auth.decorators import login_not_required
from django.urls import URLPattern, URLResolver
from django.utils import timezone
from ninja import NinjaAPI
from ninja.security import HttpBearer

from chatdesk.models import ApiToken, token_digest
from outbound.services import SendRejected

LAST_USED_EVERY = timedelta(minutes=1)


class TokenAuth(HttpBearer):
    def authenticate(self, request, token: str):
        found = (
            ApiToken.objects.select_related("user")
            .filter(digest=token_digest(token.strip()), revoked_at__isnull=True)
            .first()
        )
        if found is None or not found.user.is_active:
            return None
        token_touch(found)
        request.user = found.user
        return found


def token_touch(token: ApiToken) -> None:
    """At most one write a minute per token, however busy it is."""
    now = timezone.now()
    if token.last_used_at and now - token.last_used_at < LAST_USED_EVERY:
        return
    ApiToken.objects.filter(id=token.id).update(last_used_at=now)


def _json_response(description: str, detail: dict) -> dict:
    schema = {"type": "object", "properties": {"detail": detail}, "required": ["detail"]}
    return {"description": description, "content": {"application/json": {"schema": schema}}}


# What any operation can answer besides its own responses, from ninja itself: 400 for a body
# that is not JSON, 401 for a missing or bad token, 422 for a request that does not validate.
COMMON_RESPONSES = {
    400: _json_response("Malformed request body", {"type": "string"}),
    401: _json_response("Unauthorized", {"type": "string"}),
    422: _json_response("Invalid request", {"type": "array", "items": {"type": "object"}}),
}


class ChatdeskApi(NinjaAPI):
    def get_openapi_schema(self, *args, **kwargs):
        schema = super().get_openapi_schema(*args, **kwargs)
        for operations in schema["paths"].values():
            for operation in operations.values():
                responses = operation.setdefault("responses", {})
                for code, response in COMMON_RESPONSES.items():
                    if code not in responses and str(code) not in responses:
                        responses[code] = response
        return schema


api = ChatdeskApi(urls_namespace="api", title="chatdesk API", version="1", auth=TokenAuth())
# Each app's operations in its own module, registered by import path (they import nothing from
# here: no circle). Messages first: the schema lists them first, as it always has.
api.add_router("", "outbound.messages_api.router")
api.add_router("", "outbound.api.router")  # campaigns and segment counts
api.add_router("/stats", "insights.api.router")
api.add_router("/customers", "outbound.renewals_api.router")


@api.exception_handler(SendRejected)
def send_rejected(request, exc: SendRejected):
    # The same shape as ninja's own 422s, so clients parse one format.
    detail = [{"type": "value_error", "loc": ["body", "payload", exc.field], "msg": exc.message}]
    return api.create_response(request, {"detail": detail}, status=422)


def _open(patterns):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            _open(pattern.url_patterns)
        elif isinstance(pattern, URLPattern):
            login_not_required(pattern.callback)
    return patterns


def api_urls():
    """`api.urls` with every view marked login_not_required: the bearer token guards them."""
    patterns, app_name, namespace = api.urls
    return _open(patterns), app_name, namespace
