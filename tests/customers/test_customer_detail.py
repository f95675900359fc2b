from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from customers.models import Customer, Renewal, Subscription, Tag
from inbox.models import Conversation


@pytest.fixture
def ana(services):
    today = timezone.localdate()
    ana = Customer.objects.create(
        name="Ana Pérez",
        phone="+593968196046",
        city="Quito",
        province="Pichincha",
        notes="Prefiere que le escriban en la tarde",
    )
    ana.tags.add(Tag.objects.create(name="VIP"))
    netflix = Subscription.objects.create(
        customer=ana,
        service=services["Netflix"],
        price=Decimal("7.99"),
        started_on=today - timedelta(days=27),
        expires_on=today + timedelta(days=3),
    )
    Subscription.objects.create(
        customer=ana,
        service=services["Spotify"],
        price=Decimal("4.99"),
        started_on=today - timedelta(days=35),
        expires_on=today - timedelta(days=5),
    )
    Renewal.objects.create(
        subscription=netflix,
        previous_expiry=today - timedelta(days=27),
        new_expiry=today + timedelta(days=3),
        amount=Decimal("7.99"),
    )
    return ana


def detail(customer):
    return reverse("customers:detail", args=[customer.pk])


def test_it_shows_contact_facts_subscriptions_and_renewals(bob, client_for, ana):
    html = client_for(bob).get(detail(ana)).content.decode()
    assert "+593 96 819 6046" in html
    for text in ("Quito", "Pichincha", "VIP", "Prefiere que le escriban en la tarde"):
        assert text in html
    assert "Netflix vence en 3 días" in html
    assert "Spotify vencida hace 5 días" in html
    assert "$7,99" in html  # es-EC writes decimals with a comma
    assert "Renovaciones" in html and "Sin renovaciones registradas" not in html
    assert "Recibe publicidad" in html


def test_it_highlights_the_marketing_opt_out_with_when_and_why(bob, client_for, ana):
    ana.marketing_opt_out_at = timezone.now()
    ana.marketing_opt_out_reason = "Escribió BAJA"
    ana.save()
    html = client_for(bob).get(detail(ana)).content.decode()
    assert 'class="optout-alert"' in html
    assert "Dado de baja de la publicidad" in html and "Escribió BAJA" in html
    assert "Recibe publicidad" not in html


def test_it_links_to_the_conversation_when_there_is_one(bob, client_for, ana):
    client = client_for(bob)
    assert "?conversation=" not in client.get(detail(ana)).content.decode()
    conversation = Conversation.objects.create(customer=ana)
    html = client.get(detail(ana)).content.decode()
    assert f'href="{reverse("inbox:index")}?conversation={conversation.pk}"' in html


def test_it_answers_404_for_an_unknown_customer(bob, client_for, db):
    assert client_for(bob).get(reverse("customers:detail", args=[999])).status_code == 404


def test_it_escapes_customer_text(bob, client_for, db):
    customer = Customer.objects.create(
        name="<script>alert(1)</script>",
        phone="+593968196046",
        notes="<img src=x onerror=1>",
        marketing_opt_out_reason="<i>x</i>",
        marketing_opt_out_at=timezone.now(),
    )
    html = client_for(bob).get(detail(customer)).content.decode()
    assert "<script>alert(1)</script>" not in html and "<img src=x" not in html
    assert "<i>x</i>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_it_lets_a_marketer_edit_name_place_tags_and_notes(carla, client_for, ana):
    client = client_for(carla)
    url = reverse("customers:edit", args=[ana.pk])
    assert 'value="VIP"' in client.get(url).content.decode()
    response = client.post(
        url,
        {
            "name": "Ana María Pérez",
            "city": "Cuenca",
            "province": "Azuay",
            "tags": "vip, Cuenca centro , ,Nuevo",
            "notes": "Cambió de ciudad",
        },
    )
    assert response.status_code == 302 and response["Location"] == detail(ana)
    ana.refresh_from_db()
    assert (ana.name, ana.city, ana.province, ana.notes) == (
        "Ana María Pérez",
        "Cuenca",
        "Azuay",
        "Cambió de ciudad",
    )
    assert sorted(t.name for t in ana.tags.all()) == ["Cuenca centro", "Nuevo", "VIP"]
    assert Tag.objects.count() == 3  # "vip" reused the existing "VIP"
    assert ana.phone == "+593968196046"


def test_it_keeps_the_input_and_explains_a_bad_edit(carla, client_for, ana):
    response = client_for(carla).post(
        reverse("customers:edit", args=[ana.pk]),
        {"name": "N" * 121, "tags": "x" * 61, "city": "Loja"},
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "errorlist" in html and "más de 60 caracteres" in html
    assert 'value="Loja"' in html
    ana.refresh_from_db()
    assert ana.city == "Quito"


def test_it_shows_the_edit_link_only_to_who_may_edit(bob, carla, client_for, ana):
    edit = reverse("customers:edit", args=[ana.pk])
    assert edit not in client_for(bob).get(detail(ana)).content.decode()
    assert edit in client_for(carla).get(detail(ana)).content.decode()


def test_it_hides_chat_links_from_marketers_who_cannot_open_them(carla, client_for, ana):
    Conversation.objects.create(customer=ana)
    html = client_for(carla).get(detail(ana)).content.decode()
    assert "?conversation=" not in html
    assert "/history/" not in html
