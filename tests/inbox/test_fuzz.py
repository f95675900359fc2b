"""Property-based fuzzing of webhook bodies built by mutating the real shapes: never a 500,
and whatever is rejected or ignored leaves no rows behind."""

import copy
import json
import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from customers.models import Customer
from inbox.models import Conversation, Message, WebhookEvent
from tests.inbox.conftest import FIXTURES, URL, fixture_load

WEBHOOKS = [
    fixture_load(p.stem)
    for p in sorted(FIXTURES.glob("*.json"))
    if "event" in json.loads(p.read_text())
]
SECRET = {"X-Webhook-Signature": "dev-webhook-secret"}

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
    | st.sampled_from(
        [
            "",
            "0",
            "1764000000",
            "1764000000123",
            "@lid",
            "x@g.us",
            "593968196046@s.whatsapp.net",
            "READ",
            "error",
            "\x00",
            "\ud83d",
            "٥٩٣٩٦٨١٩٦٠٤٦",
            "9" * 40,
        ]
    )
)
garbage = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=12), inner, max_size=3)
    ),
    max_leaves=8,
)
huge = st.sampled_from(["ñ" * 50_000, "🙂" * 20_000, "x" * 300_000, "é" * 600_000])


def paths(node):
    """Every (container, key) in a JSON tree."""
    items = node.items() if isinstance(node, dict) else enumerate(node)
    for key, value in items:
        yield node, key
        if isinstance(value, dict | list):
            yield from paths(value)


@st.composite
def mutated_bodies(draw):
    body = copy.deepcopy(draw(st.sampled_from(WEBHOOKS)))
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        spots = list(paths(body))
        if not spots:
            break
        parent, key = draw(st.sampled_from(spots))
        action = draw(st.sampled_from(["replace", "replace", "delete", "huge", "wrap"]))
        if action == "delete":
            del parent[key]
        elif action == "huge":
            parent[key] = draw(huge)
        elif action == "wrap":
            parent[key] = draw(st.sampled_from([[parent[key]], {"message": parent[key]}]))
        else:
            parent[key] = draw(garbage)
    return body


def counts():
    return (Customer.objects.count(), Conversation.objects.count(), Message.objects.count())


def check(response, events_before, rows_before):
    assert response.status_code != 500
    assert response.status_code in (200, 400, 413)
    if response.status_code != 200:
        assert WebhookEvent.objects.count() == events_before
        assert counts() == rows_before
        return
    assert WebhookEvent.objects.count() == events_before + 1
    event = WebhookEvent.objects.latest("pk")
    # A failure here would be an exception while processing: a bug the fuzzer found.
    assert event.state in ("processed", "ignored", "pending"), event.error
    if event.state != "processed":
        assert counts() == rows_before, event.error


# CHATDESK_FUZZ_EXAMPLES=5000 for a longer hunt.
FUZZ = settings(
    max_examples=int(os.environ.get("CHATDESK_FUZZ_EXAMPLES", "250")),
    deadline=None,
    suppress_health_check=list(HealthCheck),
)


@FUZZ
@given(body=mutated_bodies())
def test_mutated_real_shapes_never_500_nor_leave_partial_rows(client, db, body):
    events_before, rows_before = WebhookEvent.objects.count(), counts()
    response = client.post(
        URL, data=json.dumps(body), content_type="application/json", headers=SECRET
    )
    check(response, events_before, rows_before)


@FUZZ
@given(raw=st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_arbitrary_bytes_never_500(client, db, raw):
    events_before, rows_before = WebhookEvent.objects.count(), counts()
    response = client.post(URL, data=raw, content_type="application/json", headers=SECRET)
    check(response, events_before, rows_before)


@FUZZ
@given(
    body=garbage.filter(lambda v: isinstance(v, dict)),
    event=st.sampled_from(
        [
            "messages.received",
            "messages.upsert",
            "messages-personal.received",
            "message.sent",
            "messages.update",
            "session.status",
            "message-receipt.update",
            "",
        ]
    ),
)
def test_garbage_under_every_event_name_never_500(client, db, body, event):
    events_before, rows_before = WebhookEvent.objects.count(), counts()
    payload = {"event": event, "data": body, "timestamp": 1764000000}
    response = client.post(
        URL, data=json.dumps(payload), content_type="application/json", headers=SECRET
    )
    check(response, events_before, rows_before)
