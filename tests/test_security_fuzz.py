"""Hostile input against every form and API endpoint (hypothesis): NUL characters, lone
surrogates, numbers past 64 bits, impossible dates, huge and odd strings, in every field any
page of ours names, as a form, as a query and in the API's JSON. Never a 500 (a refused value
answers 400/422 in Spanish, or the form again with its error), and no uploaded file left behind
by a reply that was not written. Against PostgreSQL where DATABASE_URL names it (as in CI)."""

import re
from datetime import timedelta
from decimal import Decimal
from urllib.parse import urlencode

import pytest
from django.core.signals import got_request_exception
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chatdesk.api import api
from chatdesk.models import ApiToken
from customers.models import Customer, Segment, Service, Subscription
from inbox.models import Conversation, Message
from outbound.models import AutoReplyRule, Campaign, MessageTemplate, ReminderRule
from tests.conftest import make_user
from tests.test_access_matrix import ACCESS, SECRET, STAFF, TOKEN, URLS, _dummy

HOSTILE_TEXT = [
    "\x00",
    "a\x00b",
    "\ud800",
    "x\udfffy",
    "9" * 40,
    str(2**63),
    str(-(2**63) - 1),
    "1e400",
    "-1",
    "0",
    "NaN",
    "Infinity",
    "2030-02-30T10:00",
    "2030-02-30",
    "2030-13-01",
    "0000-00-00",
    "99999-01-01T00:00",
    "24:61",
    "",
    " ",
    "ñ" * 3000,
    "🙂" * 500,
    "<script>x</script>",
    "' OR 1=1 --",
    "%00",
    "../../etc/passwd",
    "+593968196046",
    "true",
    "[]",
    "{}",
]
UNSTORABLE = ("\x00", "\ud800", "\udfff")
# Half the examples keep to text a database can store, so that the other hostile values reach
# the views instead of being refused with the NUL beside them.
storable = st.sampled_from([t for t in HOSTILE_TEXT if not any(c in t for c in UNSTORABLE)]) | (
    st.text(max_size=12).filter(lambda t: not any(c in t for c in UNSTORABLE))
)
hostile = st.sampled_from(HOSTILE_TEXT) | st.text(max_size=12)
HOSTILE_JSON = [*HOSTILE_TEXT, 2**64, -(2**64), 10**400, 1.5, True, None, [], {"\x00": 1}]
hostile_json = st.sampled_from(HOSTILE_JSON)
EXAMPLES = settings(
    max_examples=10,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c63f8cfc0f01f0005000201a2d9c4f40000000049454e44ae426082"
)


@pytest.fixture
def world(db, settings, tmp_path):
    """One of everything a URL can name, and Alice (admin) to reach them all."""
    settings.MEDIA_ROOT = tmp_path
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    alice = make_user("alice", "admin", is_staff=True)
    netflix = Service.objects.create(name="Netflix", normal_price=Decimal("12.99"))
    customer = Customer.objects.create(name="Ana", phone="+593968196046")
    Subscription.objects.create(
        customer=customer,
        service=netflix,
        price=Decimal("12.99"),
        started_on=timezone.localdate(),
        expires_on=timezone.localdate() + timedelta(days=30),
    )
    conversation = Conversation.objects.create(customer=customer, last_message_at=timezone.now())
    message = Message.objects.create(
        conversation=conversation,
        direction="in",
        author_kind="customer",
        body="hola",
        status="received",
    )
    template = MessageTemplate.objects.create(name="Aviso", category="notification", body="Hola")
    reminder = ReminderRule.objects.create(name="3 días", days_from_expiry=-3, template=template)
    AutoReplyRule.objects.create(name="Sí", keywords="si", match="exact", template=template)
    campaign = Campaign.objects.create(title="Promo", body="Hola {nombre}")
    segment = Segment.objects.create(name="Todos", filters={})
    token = ApiToken.issue(user=alice, name="fuzz")
    ids = {
        "conversation_id": conversation.pk,
        "message_id": message.pk,
        "customer_id": customer.pk,
        "campaign_id": campaign.pk,
        "template_id": template.pk,
        "segment_id": segment.pk,
        "rule_id": reminder.pk,
        "token_id": token[0].pk,
        "kind": "reminder",
        "action": "pause",
        "phone": customer.phone,
    }
    client = Client(raise_request_exception=False)
    client.force_login(alice)
    return {"ids": ids, "client": client, "token": token[1], "media": tmp_path}


@pytest.fixture
def errors():
    """Exceptions raised inside views (the client answers 500 for them)."""
    found = []

    def record(sender, request=None, **kwargs):
        import sys

        found.append(repr(sys.exc_info()[1]))

    got_request_exception.connect(record)
    yield found
    got_request_exception.disconnect(record)


FIELD = re.compile(r'<(?:input|select|textarea)\b[^>]*\bname="([^"]+)"')
FORM_URLS = [(key, route, conv) for key, route, conv in URLS if ACCESS[key] not in (TOKEN, STAFF)]


def url_for(key: str, converters: dict, ids: dict) -> str:
    if key == "insights:export":
        return reverse(key, kwargs={"kind": "messages"})
    return reverse(key, kwargs={p: ids.get(p, _dummy(p, c)) for p, c in converters} or None)


_FIELDS: list[str] = []


@pytest.fixture
def fields(world) -> list[str]:
    """Every field name any page of ours offers Alice (forms, filters, htmx inputs); read once
    per run."""
    if _FIELDS:
        return _FIELDS
    names = set()
    for key, _route, converters in FORM_URLS:
        if ACCESS[key] == SECRET or key == "logout":
            continue
        response = world["client"].get(url_for(key, converters.items(), world["ids"]))
        if response.status_code == 200 and "html" in response.get("Content-Type", ""):
            names |= set(FIELD.findall(response.content.decode()))
    names.discard("csrfmiddlewaretoken")
    assert {"text", "scheduled_for", "body", "name", "q"} <= names, sorted(names)
    _FIELDS.extend(sorted(names))
    return _FIELDS


def files_left(world) -> set[str]:
    stored = {str(p.relative_to(world["media"])) for p in world["media"].rglob("*") if p.is_file()}
    kept = set(Message.objects.exclude(media_file="").values_list("media_file", flat=True))
    return stored - kept


@pytest.mark.parametrize(
    ("key", "route", "converters"), FORM_URLS, ids=[key for key, _, _ in FORM_URLS]
)
def test_it_never_answers_500_to_hostile_form_input(world, fields, errors, key, route, converters):
    if key == "logout":
        pytest.skip("logging Alice out would end the fuzzing of the others")
    url = url_for(key, converters.items(), world["ids"])
    client = world["client"]

    values = st.one_of(
        st.lists(storable, min_size=len(fields), max_size=len(fields)),
        st.lists(hostile, min_size=len(fields), max_size=len(fields)),
    )

    @EXAMPLES
    @given(values=values, as_query=st.booleans())
    def attempt(values, as_query):
        data = {name: wire(value) for name, value in zip(fields, values, strict=True)}
        if as_query:
            response = client.get(url, data)
        else:
            files = {"attachment": _png()} if key == "inbox:reply" else {}
            response = client.post(url, {**data, **files})
        assert response.status_code < 500, (url, data, errors[-1:])
        assert not files_left(world), (url, data)

    attempt()


def wire(value: str):
    """What a client puts on the wire: a lone surrogate goes as the bytes it would be (invalid
    UTF-8: the server decodes them as U+FFFD); the test client cannot encode it as text."""
    try:
        value.encode()
        return value
    except UnicodeEncodeError:
        return value.encode("utf-8", "surrogatepass")


def _png():
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile("foto.png", PNG, content_type="image/png")


def test_it_answers_a_hostile_value_in_spanish(world):
    client = world["client"]
    url = reverse("inbox:reply", kwargs={"conversation_id": world["ids"]["conversation_id"]})
    response = client.post(url, {"text": "hola\x00"})
    assert response.status_code == 400
    assert "no se pueden guardar" in response.content.decode()
    response = client.post(url, {"text": "luego", "scheduled_for": "2030-02-30T10:00"})
    assert response.status_code in (200, 302, 422)
    assert not Message.objects.filter(body="luego").exists()
    big = reverse("customers:detail", kwargs={"customer_id": 2**64})
    assert client.get(big).status_code == 404


def _schema_operations():
    schema = api.get_openapi_schema(path_prefix="/api/v1")
    components = schema.get("components", {}).get("schemas", {})
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            properties = []
            if body:
                ref = body["schema"].get("$ref", "").rsplit("/", 1)[-1]
                properties = sorted(components.get(ref, {}).get("properties", {}))
            params = [(p["name"], p["in"]) for p in operation.get("parameters", [])]
            yield method, path, params, properties


OPERATIONS = list(_schema_operations())


@pytest.mark.parametrize(
    ("method", "path", "params", "properties"),
    OPERATIONS,
    ids=[f"{m} {p}" for m, p, _, _ in OPERATIONS],
)
def test_it_never_answers_500_to_hostile_api_input(world, errors, method, path, params, properties):
    client = Client(raise_request_exception=False)
    headers = {"Authorization": f"Bearer {world['token']}"}

    @EXAMPLES
    @given(
        body=st.fixed_dictionaries(dict.fromkeys(properties, hostile_json)),
        query=st.fixed_dictionaries({name: hostile for name, where in params if where == "query"}),
        path_value=st.sampled_from([None, 2**63, 2**64, -1, 0]),
    )
    def attempt(body, query, path_value):
        url = path
        for name, where in params:
            if where == "path":
                value = world["ids"].get(name, 1) if path_value is None else path_value
                url = url.replace("{" + name + "}", str(value))
        if method == "get":
            response = client.get(url, {k: wire(v) for k, v in query.items()}, headers=headers)
        else:
            url += f"?{urlencode({k: wire(v) for k, v in query.items()})}" if query else ""
            response = client.post(url, body, content_type="application/json", headers=headers)
        assert response.status_code < 500, (method, url, body, query, errors[-1:])

    attempt()
