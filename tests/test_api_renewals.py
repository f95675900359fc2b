"""POST /api/v1/customers/{phone}/renewals: admins and agents record payments; clear 4xx."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from chatdesk.models import ApiToken
from customers.models import Renewal, Subscription
from inbox.models import Message
from tests.outbound.automations import customer_with, in_memory_layer  # noqa: F401


def url(phone: str = "0990000001") -> str:
    return f"/api/v1/customers/{phone}/renewals"


def bearer(user) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {ApiToken.issue(user=user, name='t')[1]}"}


def post(client, headers, body, *, phone="0990000001"):
    return client.post(url(phone), body, content_type="application/json", **headers)


@pytest.fixture
def netflix(db):
    return customer_with("+593990000001", expires_on=timezone.localdate() + timedelta(days=3))


def test_it_requires_a_token(client, netflix):
    assert (
        post(client, {}, {"service": "Netflix", "months": 1, "amount": "7.99"}).status_code == 401
    )


def test_a_marketer_token_may_not_record_renewals(client, carla, netflix):
    response = post(client, bearer(carla), {"service": "Netflix", "months": 1, "amount": "7.99"})
    assert response.status_code == 403
    assert not Renewal.objects.exists()


def test_an_agent_records_a_renewal(client, bob, netflix):
    response = post(client, bearer(bob), {"service": "Netflix", "months": 1, "amount": "7.99"})
    assert response.status_code == 201
    renewal = Renewal.objects.get()
    body = response.json()
    assert body["id"] == renewal.id
    assert body["phone"] == "+593990000001"
    assert body["service"] == "Netflix"
    assert body["previous_expiry"] == netflix.expires_on.isoformat()
    assert body["new_expiry"] == Subscription.objects.get().expires_on.isoformat()
    assert Decimal(body["amount"]) == Decimal("7.99")
    assert body["confirmation_message_id"] is None


def test_an_admin_records_one_with_a_confirmation(client, alice, netflix):
    new_expiry = (netflix.expires_on + timedelta(days=30)).isoformat()
    response = post(
        client,
        bearer(alice),
        {
            "service": "netflix",
            "new_expiry": new_expiry,
            "amount": "7.99",
            "send_confirmation": True,
        },
    )
    assert response.status_code == 201
    message = Message.objects.get()
    assert response.json()["confirmation_message_id"] == message.id
    assert message.author_kind == "bot"


def test_it_answers_404_for_a_phone_with_no_customer(client, bob, netflix):
    response = post(
        client, bearer(bob), {"service": "Netflix", "months": 1, "amount": "1"}, phone="0990000009"
    )
    assert response.status_code == 404
    assert "+593990000009" in response.json()["detail"]


@pytest.mark.parametrize(
    ("phone", "body", "field"),
    [
        ("12", {"service": "Netflix", "months": 1, "amount": "1"}, "phone"),
        ("0990000001", {"service": "Disney+", "months": 1, "amount": "1"}, "service"),
        ("0990000001", {"service": "Netflix", "amount": "1"}, "new_expiry"),
        ("0990000001", {"service": "Netflix", "months": 99, "amount": "1"}, "months"),
        ("0990000001", {"service": "Netflix", "months": 1, "amount": "-5"}, "amount"),
        (
            "0990000001",
            {"service": "Netflix", "new_expiry": "2001-01-01", "amount": "1"},
            "new_expiry",
        ),
    ],
)
def test_it_answers_422_naming_the_bad_field(client, bob, netflix, phone, body, field):
    response = post(client, bearer(bob), body, phone=phone)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][-1] == field
    assert not Renewal.objects.exists()


def test_it_answers_422_when_the_months_go_past_year_9999(client, bob, netflix):
    Subscription.objects.update(expires_on="9999-12-15")
    response = post(client, bearer(bob), {"service": "Netflix", "months": 1, "amount": "1"})
    assert response.status_code == 422, response.content
    assert response.json()["detail"][0]["loc"][-1] == "months"
    assert not Renewal.objects.exists()


def test_it_answers_422_for_a_malformed_body(client, bob, netflix):
    response = post(client, bearer(bob), {"months": 1})
    assert response.status_code == 422
    assert not Renewal.objects.exists()
