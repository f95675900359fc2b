from datetime import date

import pytest
from django.apps import apps
from django.contrib import admin
from django.urls import reverse

from chatdesk.models import ApiToken
from customers.models import Customer, Renewal, Segment, Service, Subscription, Tag
from inbox.models import Conversation, Message, SessionState, WebhookEvent
from outbound.models import MessageTemplate

PROJECT_APPS = ("chatdesk", "customers", "inbox", "outbound")


def test_it_registers_every_model_of_the_project_apps():
    missing = [
        model._meta.label
        for name in PROJECT_APPS
        for model in apps.get_app_config(name).get_models()
        if not admin.site.is_registered(model)
    ]
    assert missing == []


@pytest.fixture
def data(alice, services):
    customer = Customer.objects.create(name="Ana <b>Pérez</b>", phone="+593968196046")
    customer.tags.add(Tag.objects.create(name="VIP"))
    sub = Subscription.objects.create(
        customer=customer,
        service=services["Netflix"],
        price=7,
        started_on=date(2025, 1, 1),
        expires_on=date(2025, 2, 1),
    )
    Renewal.objects.create(
        subscription=sub, previous_expiry=date(2025, 1, 1), new_expiry=date(2025, 2, 1), amount=7
    )
    conversation = Conversation.objects.create(customer=customer)
    Message.objects.create(
        conversation=conversation,
        direction="in",
        author_kind="customer",
        body="Hola",
        status="received",
        wa_id="ABC",
    )
    WebhookEvent.objects.create(event="messages.upsert", payload={"x": 1})
    SessionState.objects.create(session="default", status="connected")
    MessageTemplate.objects.create(name="Promo", category="marketing", body="Hola {nombre}")
    Segment.objects.create(name="Activos Netflix", filters={"state": "active"})
    token, raw = ApiToken.issue(user=alice, name="CRM")
    return {"customer": customer, "token": token, "raw": raw}


MODELS = [
    Customer,
    Service,
    Tag,
    Subscription,
    Renewal,
    Conversation,
    Message,
    WebhookEvent,
    SessionState,
    MessageTemplate,
    ApiToken,
]


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_it_opens_the_list_search_and_change_pages(alice, client_for, data, model):
    client = client_for(alice)
    opts = model._meta
    changelist = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
    assert client.get(changelist).status_code == 200
    assert client.get(changelist, {"q": "ana"}).status_code == 200
    obj = model.objects.first()
    change = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
    assert client.get(change).status_code == 200


REGISTERED = [m for m in admin.site._registry if m._meta.app_label in PROJECT_APPS]


@pytest.mark.parametrize("model", REGISTERED, ids=lambda m: m._meta.label)
def test_it_opens_every_changelist_with_a_search(alice, client_for, model):
    opts = model._meta
    changelist = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
    assert client_for(alice).get(changelist, {"q": "ana"}).status_code == 200


def test_it_never_shows_the_token_digest(alice, client_for, data):
    client = client_for(alice)
    token = data["token"]
    for url in (
        reverse("admin:chatdesk_apitoken_changelist"),
        reverse("admin:chatdesk_apitoken_change", args=[token.pk]),
    ):
        html = client.get(url).content.decode()
        assert token.prefix in html
        assert token.digest not in html and data["raw"] not in html


def test_it_keeps_webhook_payloads_read_only(alice, client_for, data):
    event = WebhookEvent.objects.get()
    client = client_for(alice)
    assert client.get(reverse("admin:inbox_webhookevent_add")).status_code == 403
    client.post(
        reverse("admin:inbox_webhookevent_change", args=[event.pk]),
        {"state": "ignored", "payload": '{"forged": true}', "event": "x"},
    )
    event.refresh_from_db()
    assert event.state == "ignored" and event.payload == {"x": 1} and event.event != "x"


def test_it_keeps_the_admin_away_from_non_staff(bob, client_for, db):
    response = client_for(bob).get(reverse("admin:customers_customer_changelist"))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
