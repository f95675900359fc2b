"""/api/v1/campaigns and /api/v1/segments/count: marketer or admin tokens, clear 4xx."""

from datetime import timedelta

import dramatiq
import pytest
from django.utils import timezone

from chatdesk.models import ApiToken
from customers.models import Customer, Segment
from outbound.models import Campaign, MessageTemplate

URL = "/api/v1/campaigns"


@pytest.fixture(autouse=True)
def broker_empty():
    dramatiq.get_broker().flush_all()
    yield
    dramatiq.get_broker().flush_all()


@pytest.fixture
def book(db):
    for i in range(5):
        Customer.objects.create(
            name=f"Cliente {i}",
            phone=f"+59399100000{i}",
            city="Quito" if i < 3 else "Cuenca",
            marketing_opt_out_at=timezone.now() if i == 0 else None,
        )


def bearer(user) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {ApiToken.issue(user=user, name='t')[1]}"}


def post(client, headers, url=URL, body=None):
    return client.post(url, body or {}, content_type="application/json", **headers)


def test_it_requires_a_marketing_role(client, bob, book):
    assert post(client, {}, body={"title": "x"}).status_code == 401
    response = post(client, bearer(bob), body={"title": "x", "text": "Hola", "filters": {}})
    assert response.status_code == 403
    assert client.get("/api/v1/segments/count", **bearer(bob)).status_code == 403
    assert not Campaign.objects.exists()


def test_it_creates_a_draft_from_text_and_filters(client, carla, book):
    response = post(
        client,
        bearer(carla),
        body={"title": "Promo Quito", "text": "Hola {nombre}", "filters": {"cities": ["quito"]}},
    )
    assert response.status_code == 201, response.json()
    data = response.json()
    assert data["state"] == "draft" and data["funnel"]["total"] == 0
    campaign = Campaign.objects.get(pk=data["id"])
    assert campaign.created_by == carla and campaign.filters == {"cities": ["quito"]}


def test_it_creates_from_a_template_and_a_saved_segment_scheduled(client, alice, book):
    template = MessageTemplate.objects.create(
        name="Nuevo", category="marketing", body="Llegó {nuevo_servicio}"
    )
    segment = Segment.objects.create(name="Quito", filters={"cities": ["Quito"]})
    body = {
        "title": "Llegó Max",
        "template_id": template.pk,
        "variables": {"nuevo_servicio": "Max"},
        "segment_id": segment.pk,
        "send_at": f"{timezone.localdate() + timedelta(days=60)}T10:30:00",
    }
    response = post(client, bearer(alice), body=body)
    assert response.status_code == 201, response.json()
    data = response.json()
    assert data["state"] == "scheduled"
    campaign = Campaign.objects.get(pk=data["id"])
    assert timezone.localtime(campaign.scheduled_at).hour == 10  # Guayaquil time
    assert campaign.body == "Llegó {nuevo_servicio}" and campaign.segment == segment


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"title": "x", "text": "Hola {nombr}", "filters": {}}, "body"),
        ({"title": "x", "text": "Llegó {nuevo_servicio}", "filters": {}}, "body"),
        ({"title": "x", "text": "Hola", "filters": {"state": "zombie"}}, "filters"),
        ({"title": "x", "text": "Hola"}, "filters"),
        ({"title": "x", "text": "Hola", "segment_id": 999}, "segment_id"),
        ({"title": "x", "template_id": 999, "filters": {}}, "template_id"),
        ({"title": "", "text": "Hola", "filters": {}}, "title"),
        ({"title": "x", "text": "Hola", "filters": {}, "kind": "spam"}, "kind"),
        ({"title": "x", "text": "Hola", "filters": {}, "variables": {"otra": "1"}}, "extra"),
        (
            {
                "title": "x",
                "text": "{precio_descuento}",
                "filters": {},
                "variables": {"descuento": "NaN"},
            },
            "descuento",
        ),
        ({"title": "x", "text": "Hola", "filters": {"services": [2**63]}}, "filters"),
        ({"title": "x", "text": "Hola", "filters": {"services": [1e300]}}, "filters"),
    ],
)
def test_it_answers_422_for_bad_input(client, carla, book, body, field):
    response = post(client, bearer(carla), body=body)
    assert response.status_code == 422, response.content
    assert response.json()["detail"][0]["loc"][-1] == field
    assert not Campaign.objects.exists()


@pytest.mark.parametrize("send_at", ["9999-12-31T23:59:59", "9999-12-31T23:59:59+00:00"])
def test_it_refuses_a_send_at_more_than_a_year_ahead(client, carla, book, send_at):
    body = {"title": "x", "text": "Hola", "filters": {}, "send_at": send_at}
    response = post(client, bearer(carla), body=body)
    assert response.status_code == 422, response.content
    assert response.json()["detail"][0]["loc"][-1] == "send_at"
    assert not Campaign.objects.exists()


def test_it_takes_a_past_send_at_as_now(client, carla, book):
    body = {"title": "x", "text": "Hola", "filters": {}, "send_at": "2001-01-01T10:00:00"}
    response = post(client, bearer(carla), body=body)
    assert response.status_code == 201, response.content
    assert response.json()["state"] == "scheduled"


def test_it_answers_422_for_malformed_json(client, carla, book):
    response = client.post(URL, "{nope", content_type="application/json", **bearer(carla))
    assert response.status_code in (400, 422)
    response = post(client, bearer(carla), body={"title": "x", "send_at": "mañana"})
    assert response.status_code == 422


def test_it_launches_pauses_resumes_and_cancels(
    client, carla, book, django_capture_on_commit_callbacks
):
    headers = bearer(carla)
    data = post(client, headers, body={"title": "P", "text": "Hola", "filters": {}}).json()
    base = f"{URL}/{data['id']}"
    assert post(client, headers, f"{base}/pause").status_code == 409
    with django_capture_on_commit_callbacks(execute=True):
        response = post(client, headers, f"{base}/launch")
    assert response.status_code == 200 and response.json()["state"] == "scheduled"
    enqueued = dramatiq.get_broker().queues["campaigns"]
    assert enqueued.qsize() == 1
    # What the worker does with it:
    from outbound.campaigns import campaign_launch

    campaign_launch(campaign_id=data["id"])
    data = client.get(base, **headers).json()
    assert data["state"] == "running"
    assert data["recipients_total"] == 4 and data["opted_out_excluded"] == 1
    assert data["funnel"]["pending"] == 4
    assert post(client, headers, f"{base}/pause").json()["state"] == "paused"
    assert post(client, headers, f"{base}/resume").json()["state"] == "running"
    data = post(client, headers, f"{base}/cancel").json()
    assert data["state"] == "cancelled" and data["funnel"]["skipped"] == 4
    assert post(client, headers, f"{base}/cancel").status_code == 409
    assert post(client, headers, f"{base}/explode").status_code == 404
    assert client.get(f"{URL}/999", **headers).status_code == 404


def test_it_sends_now(client, carla, book, django_capture_on_commit_callbacks):
    body = {"title": "Ya", "text": "Hola", "filters": {}, "send_now": True}
    with django_capture_on_commit_callbacks(execute=True):
        response = post(client, bearer(carla), body=body)
    assert response.json()["state"] == "scheduled"
    campaign = Campaign.objects.get()
    assert campaign.scheduled_at <= timezone.now()
    assert campaign.scheduled_at > timezone.now() - timedelta(minutes=1)
    assert dramatiq.get_broker().queues["campaigns"].qsize() == 1


def test_it_counts_a_segment_from_query_filters(client, carla, book):
    headers = bearer(carla)
    response = client.get("/api/v1/segments/count?cities=Quito&cities=Guayaquil", **headers)
    assert response.json() == {"count": 2, "opted_out_excluded": 1}
    response = client.get("/api/v1/segments/count?cities=Quito&kind=notification", **headers)
    assert response.json() == {"count": 3, "opted_out_excluded": 0}
    response = client.get("/api/v1/segments/count?expiring_days=mil", **headers)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][-1] == "expiring_days"
