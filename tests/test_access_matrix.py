"""Who may open what: every URL in the URL conf, every API operation and the socket, for every
persona. The matrix below is the decision; the tests prove the code keeps it, and a URL or an
API operation that is not in the matrix fails a test (a new page cannot be forgotten).

Personas: anonymous, Alice (admin, staff), Bob (agent), Carla (marketer), Charlie (no role).
"""

import csv
import io
import uuid

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.shortcuts import resolve_url
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.urls.converters import IntConverter, UUIDConverter
from django.utils import timezone

from chatdesk.api import api
from chatdesk.asgi import application
from chatdesk.models import ApiToken
from chatdesk.roles import ADMIN, AGENT, MARKETER
from customers.models import Customer
from inbox.models import Conversation, Message, Note
from insights.exports import EXPORTS
from tests.conftest import make_user

PUBLIC = "public"  # anyone, logged in or not
LOGIN = "login"  # any logged-in user, whatever the role
TOKEN = "token"  # the JSON API: a bearer token, never the session (see API_ACCESS)
SECRET = "secret"  # the WaSender webhook: its shared secret, nobody's session
# Meta's webhook: its GET handshake needs the verify token (403 without), its POST the app
# secret's signature (401 without; tests/inbox/test_meta_webhook.py), nobody's session.
VERIFY = "verify"
STAFF = "staff"  # the Django admin: is_staff (Alice); others are sent to its login
ADMINS = frozenset({ADMIN})
SUPPORT = frozenset({ADMIN, AGENT})
MARKETING = frozenset({ADMIN, MARKETER})
EVERYONE = frozenset({ADMIN, AGENT, MARKETER})

ACCESS: dict[str, str | frozenset[str]] = {
    # chatdesk
    "home": EVERYONE,
    "login": PUBLIC,
    "logout": LOGIN,
    "set_language": PUBLIC,
    "healthz": PUBLIC,
    "readyz": PUBLIC,
    "ops": ADMINS,
    "token_list": LOGIN,
    "token_revoke": LOGIN,
    "admin:index": STAFF,
    "wasender_webhook": SECRET,
    "meta_webhook": VERIFY,
    # the API (operations are checked one by one in API_ACCESS)
    "api:openapi-json": PUBLIC,
    "api:openapi-view": PUBLIC,
    "api:api-root": PUBLIC,  # ninja's root: answers 404 to everyone
    "api:message_create": TOKEN,
    "api:message_detail": TOKEN,
    "api:renewal_create": TOKEN,
    "api:stats_daily": TOKEN,
    "api:stats_summary": TOKEN,
    "api:campaign_create_api": TOKEN,
    "api:campaign_detail_api": TOKEN,
    "api:campaign_action_api": TOKEN,
    "api:segment_count_api": TOKEN,
    # insights
    "insights:index": MARKETING,
    "insights:export": MARKETING,
    # customers
    "customers:list": EVERYONE,
    "customers:import": MARKETING,
    "customers:import_example": MARKETING,
    "customers:detail": EVERYONE,
    "customers:edit": MARKETING,
    # a permanent redirect to inbox:customer_history, which decides
    "customer_history_moved": LOGIN,
    # inbox
    "inbox:index": SUPPORT,
    "inbox:list": SUPPORT,
    "inbox:conversation": SUPPORT,
    "inbox:messages": SUPPORT,
    "inbox:reply": SUPPORT,
    "inbox:channels": ADMINS,
    "outbound:meta_templates_sync": ADMINS,
    "inbox:channel_new": ADMINS,
    "inbox:channel_edit": ADMINS,
    "inbox:template_fill": SUPPORT,
    "inbox:assign": SUPPORT,
    "inbox:resolve": SUPPORT,
    "inbox:reopen": SUPPORT,
    "inbox:urgent": SUPPORT,
    "inbox:note_add": SUPPORT,
    "inbox:retry": SUPPORT,
    "inbox:cancel": SUPPORT,
    "inbox:media": SUPPORT,
    "inbox:status_check": SUPPORT,
    "inbox:customer_history": SUPPORT,
    # outbound
    "outbound:campaign_list": MARKETING,
    "outbound:campaign_new": MARKETING,
    "outbound:campaign_audience": MARKETING,
    "outbound:campaign_detail": MARKETING,
    "outbound:campaign_action": MARKETING,
    "outbound:campaign_duplicate": MARKETING,
    "outbound:campaign_export": MARKETING,
    "outbound:campaign_progress": MARKETING,
    "outbound:campaign_retarget": MARKETING,
    "outbound:template_list": EVERYONE,
    "outbound:template_create": MARKETING,
    "outbound:template_preview": MARKETING,
    "outbound:template_edit": MARKETING,
    "outbound:template_duplicate": MARKETING,
    "outbound:template_archive": MARKETING,
    "outbound:segment_list": MARKETING,
    "outbound:segment_create": MARKETING,
    "outbound:segment_preview": MARKETING,
    "outbound:segment_edit": MARKETING,
    "outbound:segment_delete": MARKETING,
    "outbound:automation_index": MARKETING,
    "outbound:automation_reminder_create": MARKETING,
    "outbound:automation_reminder_edit": MARKETING,
    "outbound:automation_reply_create": MARKETING,
    "outbound:automation_reply_edit": MARKETING,
    "outbound:automation_toggle": MARKETING,
    "outbound:automation_settings": MARKETING,
    "outbound:renewal_create": SUPPORT,
}

# Every operation of the ninja schema: (method, path) -> the roles its token's user needs.
API_ACCESS: dict[tuple[str, str], frozenset[str]] = {
    ("post", "/api/v1/messages"): SUPPORT,
    ("get", "/api/v1/messages/{message_id}"): SUPPORT,
    ("post", "/api/v1/customers/{phone}/renewals"): SUPPORT,
    ("get", "/api/v1/stats/daily"): MARKETING,
    ("get", "/api/v1/stats/summary"): EVERYONE,
    ("post", "/api/v1/campaigns"): MARKETING,
    ("get", "/api/v1/campaigns/{campaign_id}"): MARKETING,
    ("post", "/api/v1/campaigns/{campaign_id}/{action}"): MARKETING,
    ("get", "/api/v1/segments/count"): MARKETING,
}

PERSONAS = {
    "anonymous": None,
    "alice": ("admin", {"is_staff": True}),
    "bob": ("agent", {}),
    "carla": ("marketer", {}),
    "charlie": (None, {}),
}
PERSONA_ROLES = {
    "anonymous": frozenset(),
    "alice": ADMINS,
    "bob": frozenset({AGENT}),
    "carla": frozenset({MARKETER}),
    "charlie": frozenset(),
}


# --- the URL conf, walked ------------------------------------------------------------------------


def _skipped(name: str | None, route: str, callback) -> bool:
    if callback.__module__ in ("django.views.static", "django.contrib.staticfiles.views"):
        return True
    # Django's admin is its own world; only /admin/ itself is in the matrix.
    return route.startswith("admin/") and name != "admin:index"


def url_entries(patterns=None, prefix: str = "", namespace: str | None = None):
    """(key, route, converters) for every URL: key is the namespaced name, or the route when
    the pattern has no name."""
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(pattern, URLResolver):
            ns = namespace
            if pattern.namespace:
                ns = f"{namespace}:{pattern.namespace}" if namespace else pattern.namespace
            yield from url_entries(pattern.url_patterns, prefix + str(pattern.pattern), ns)
        elif isinstance(pattern, URLPattern):
            route = prefix + str(pattern.pattern)
            name = f"{namespace}:{pattern.name}" if namespace and pattern.name else pattern.name
            if _skipped(name, route, pattern.callback):
                continue
            converters = getattr(pattern.pattern, "converters", {})
            yield name or route, route, converters


def _dummy(param: str, converter) -> object:
    if isinstance(converter, IntConverter) or param.endswith("_id"):
        return 999999
    if isinstance(converter, UUIDConverter):
        return uuid.UUID(int=999999)
    if param == "phone":
        return "+593999999999"
    return "x"


def url_path(key: str, converters: dict) -> str:
    kwargs = {param: _dummy(param, conv) for param, conv in converters.items()}
    return reverse(key, kwargs=kwargs or None)


URLS = sorted(url_entries())


def test_it_has_a_decision_for_every_url():
    missing = [key for key, _, _ in URLS if key not in ACCESS]
    assert not missing, (
        f"URLs without a decision in ACCESS (tests/test_access_matrix.py): {missing}"
    )


def test_it_has_no_decision_for_a_url_that_is_gone():
    keys = {key for key, _, _ in URLS}
    assert not [key for key in ACCESS if key not in keys]


def test_it_has_a_decision_for_every_api_operation():
    operations = {
        (method, path)
        for path, methods in api.get_openapi_schema(path_prefix="/api/v1")["paths"].items()
        for method in methods
    }
    assert operations == set(API_ACCESS)


# --- pages ---------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    """Four users per test: hashing their passwords properly would be most of the run time."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def clients(db):
    """persona -> a client of its own (a logout or a redirect in one leaves the others alone)."""
    made = {}
    for persona, spec in PERSONAS.items():
        client = Client()
        if spec is not None:
            role, extra = spec
            client.force_login(make_user(persona, role, **extra))
        made[persona] = client
    return made


def fetch(client: Client, path: str):
    response = client.get(path)
    if response.status_code == 405:
        response = client.post(path, data=b"", content_type="application/octet-stream")
    return response


def _login_redirect(response, login_path: str) -> bool:
    return response.status_code == 302 and response["Location"].startswith(login_path)


def check_access(access, persona: str, response) -> str | None:
    """None when the response keeps the decision, else what went wrong."""
    status = response.status_code
    if status >= 500:
        return f"server error {status}"
    roles = PERSONA_ROLES[persona]
    login_path = resolve_url(settings.LOGIN_URL)
    if access == PUBLIC:
        return f"public page answered {status}" if status in (401, 403) else None
    if access == VERIFY:
        return None if status == 403 else f"expected 403, got {status}"
    if access in (TOKEN, SECRET):
        # The session is no login here: without the token or the secret it is 401 for all.
        return None if status == 401 else f"expected 401, got {status}"
    if access == STAFF:
        if persona == "alice":
            return None if status == 200 else f"expected 200, got {status}"
        return None if _login_redirect(response, reverse("admin:login")) else f"got {status}"
    if persona == "anonymous":
        return None if _login_redirect(response, login_path) else f"not sent to login: {status}"
    allowed = access == LOGIN or bool(roles & access)
    if allowed:
        return f"allowed persona got {status}" if status in (401, 403) else None
    return None if status == 403 else f"expected 403, got {status}"


@pytest.mark.parametrize(("key", "route", "converters"), URLS, ids=[u[0] for u in URLS])
def test_it_enforces_the_matrix_for_every_persona(clients, key, route, converters):
    access = ACCESS.get(key)
    if access is None:
        pytest.fail(f"{key} ({route}) has no decision in ACCESS")
    path = url_path(key, converters)
    failures = {}
    for persona, client in clients.items():
        problem = check_access(access, persona, fetch(client, path))
        if problem:
            failures[persona] = problem
    assert not failures, f"{path}: {failures}"


# --- what the responses hold ---------------------------------------------------------------------
# Status codes are not enough: a page a marketer may open must not carry a private conversation.

PRIVATE_TEXT = "Mi clave del banco es 1234"
PRIVATE_NOTE = "Paga con la tarjeta 4111 1111 1111 1111"
PRIVATE_PHONE = "+593968196046"
EXPORT_KINDS = sorted(EXPORTS)
# The columns of the messages export, by who asks (README, "Roles").
MESSAGE_EXPORT_HEADER = {
    "alice": [
        "id",
        "fecha",
        "dirección",
        "autor",
        "agente",
        "cliente",
        "teléfono",
        "estado",
        "texto",
        "enviado",
        "entregado",
        "leído",
        "fallido",
        "motivo del fallo",
    ],
    "carla": [
        "id",
        "fecha",
        "dirección",
        "autor",
        "estado",
        "enviado",
        "entregado",
        "leído",
        "fallido",
        "motivo del fallo",
    ],
}


@pytest.fixture
def private_chat(db):
    """A customer's private conversation: what they wrote, an agent's reply and a note."""
    customer = Customer.objects.create(phone=PRIVATE_PHONE, name="María Reservada")
    conversation = Conversation.objects.create(
        customer=customer, last_message_at=timezone.now(), last_message_preview=PRIVATE_TEXT
    )
    Message.objects.create(
        conversation=conversation,
        direction="in",
        author_kind="customer",
        body=PRIVATE_TEXT,
        status="received",
    )
    Message.objects.create(
        conversation=conversation,
        direction="out",
        author_kind="agent",
        status="sent",
        body="Nunca compartas tu clave",
    )
    Note.objects.create(customer=customer, body=PRIVATE_NOTE)
    return {"customer_id": customer.pk, "conversation_id": conversation.pk}


def content(response) -> str:
    if response.streaming:
        return b"".join(response.streaming_content).decode()
    return response.content.decode()


def readable_urls(persona: str, ids: dict) -> list[str]:
    """Every page and export this persona may GET, with the private chat's ids filled in."""
    urls = []
    for key, _route, converters in URLS:
        access = ACCESS[key]
        if access in (TOKEN, SECRET, VERIFY, STAFF) or key in ("logout", "set_language"):
            continue
        if access not in (PUBLIC, LOGIN) and not PERSONA_ROLES[persona] & access:
            continue
        if key == "insights:export":
            urls += [reverse(key, kwargs={"kind": kind}) for kind in EXPORT_KINDS]
            continue
        kwargs = {p: ids.get(p, _dummy(p, c)) for p, c in converters.items()}
        urls.append(reverse(key, kwargs=kwargs or None))
    return urls


def test_it_never_shows_a_marketer_a_private_conversation(clients, private_chat):
    leaks = {}
    urls = readable_urls("carla", private_chat)
    assert reverse("insights:export", kwargs={"kind": "messages"}) in urls
    for url in urls:
        response = clients["carla"].get(url)
        assert response.status_code < 500, url
        text = content(response)
        found = [s for s in (PRIVATE_TEXT, PRIVATE_NOTE) if s in text]
        if found:
            leaks[url] = found
    assert not leaks


@pytest.mark.parametrize("persona", ["alice", "carla"])
def test_it_decides_the_columns_of_the_messages_export_by_role(clients, private_chat, persona):
    response = clients[persona].get(reverse("insights:export", kwargs={"kind": "messages"}))
    text = content(response)
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert rows[0] == MESSAGE_EXPORT_HEADER[persona]
    if persona == "alice":  # the owner reads everything: the data is there to be left out
        assert PRIVATE_TEXT in text and PRIVATE_PHONE in text and "María Reservada" in text
    else:
        assert PRIVATE_TEXT not in text and PRIVATE_PHONE not in text
        assert "María Reservada" not in text
        assert len(rows) == 3  # both messages, without what they said


@pytest.mark.parametrize("kind", EXPORT_KINDS)
def test_it_keeps_every_export_to_its_roles(clients, private_chat, kind):
    url = reverse("insights:export", kwargs={"kind": kind})
    for persona, client in clients.items():
        problem = check_access(MARKETING, persona, client.get(url))
        assert problem is None, (kind, persona, problem)


# --- the API -------------------------------------------------------------------------------------


def _schema_value(schema: dict, components: dict):
    if "$ref" in schema:
        schema = components[schema["$ref"].rsplit("/", 1)[-1]]
    if "anyOf" in schema:
        schema = next(s for s in schema["anyOf"] if s.get("type") != "null")
    kind = schema.get("type")
    if kind == "object":
        return {
            name: _schema_value(prop, components)
            for name, prop in schema.get("properties", {}).items()
            if name in schema.get("required", [])
        }
    return {"integer": 1, "number": 1, "boolean": False, "array": []}.get(kind, "x")


def api_requests():
    schema = api.get_openapi_schema(path_prefix="/api/v1")
    components = schema.get("components", {}).get("schemas", {})
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            url, query = path, []
            for param in operation.get("parameters", []):
                value = str(_dummy(param["name"], None))
                if param["in"] == "path":
                    url = url.replace("{" + param["name"] + "}", value)
                elif param["in"] == "query" and param.get("required"):
                    query.append(f"{param['name']}={value}")
            if query:
                url += "?" + "&".join(query)
            body = None
            content = operation.get("requestBody", {}).get("content", {})
            if "application/json" in content:
                body = _schema_value(content["application/json"]["schema"], components)
            yield (method, path), url, body


def api_call(client: Client, method: str, url: str, body, token: str | None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if body is None:
        return getattr(client, method)(url, headers=headers)
    return getattr(client, method)(url, data=body, content_type="application/json", headers=headers)


def test_it_refuses_every_api_operation_without_a_token(clients):
    for (method, path), url, body in api_requests():
        for persona, client in clients.items():
            # A browser session is no API login either.
            response = api_call(client, method, url, body, None)
            assert response.status_code == 401, (method, path, persona, response.status_code)
        response = api_call(Client(), method, url, body, "cd_not-a-token")
        assert response.status_code == 401, (method, path, "bad token")


def test_it_refuses_an_api_token_whose_role_is_not_allowed(db):
    tokens = {}
    for persona, spec in PERSONAS.items():
        if spec is not None:
            role, extra = spec
            tokens[persona] = ApiToken.issue(user=make_user(persona, role, **extra), name="t")[1]
    for (method, path), url, body in api_requests():
        needed = API_ACCESS[(method, path)]
        for persona, token in tokens.items():
            status = api_call(Client(), method, url, body, token).status_code
            assert status < 500, (method, path, persona, status)
            if PERSONA_ROLES[persona] & needed:
                assert status not in (401, 403), (method, path, persona, status)
            else:
                assert status == 403, (method, path, persona, status)


# --- the socket ----------------------------------------------------------------------------------

SOCKET_ACCESS = SUPPORT


@database_sync_to_async
def _session_cookie(persona: str) -> bytes:
    spec = PERSONAS[persona]
    if spec is None:
        return b""
    role, extra = spec
    client = Client()
    client.force_login(make_user(persona, role, **extra))
    name = settings.SESSION_COOKIE_NAME
    return f"{name}={client.cookies[name].value}".encode()


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
@pytest.mark.parametrize("persona", list(PERSONAS))
async def test_it_enforces_the_matrix_on_the_inbox_socket(persona, channel_layer_in_memory):
    headers = [(b"host", b"testserver"), (b"origin", b"http://testserver")]
    cookie = await _session_cookie(persona)
    if cookie:
        headers.append((b"cookie", cookie))
    communicator = WebsocketCommunicator(application, "/ws/inbox/", headers=headers)
    try:
        connected, _ = await communicator.connect()
        allowed = bool(PERSONA_ROLES[persona] & SOCKET_ACCESS)
        if allowed:
            assert connected
            assert await communicator.receive_nothing(timeout=0.2)
        else:
            # Refused: either the handshake, or accepted only to be closed with a 44xx reason.
            if connected:
                closed = await communicator.receive_output()
                assert closed["type"] == "websocket.close"
                assert closed["code"] in (4401, 4403)
    finally:
        await communicator.disconnect()


@pytest.fixture
def channel_layer_in_memory(settings):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
