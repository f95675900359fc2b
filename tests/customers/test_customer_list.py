from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from customers.models import Customer, Subscription, Tag

URL = reverse("customers:list")


@pytest.fixture
def book(services):
    """Ana: Netflix active (expires in 2 days), VIP, Quito. Luis: Disney+ expired, Guayaquil,
    opted out. Marta: nothing."""
    today = timezone.localdate()
    ana = Customer.objects.create(
        name="Ana Pérez", phone="+593968196046", city="Quito", province="Pichincha"
    )
    luis = Customer.objects.create(
        name="Luis Mora",
        phone="+593987654321",
        city="Guayaquil",
        province="Guayas",
        marketing_opt_out_at=timezone.now(),
    )
    marta = Customer.objects.create(name="Marta Ruiz", phone="+593991234567", city="Quito")
    ana.tags.add(Tag.objects.create(name="VIP"))
    Subscription.objects.create(
        customer=ana,
        service=services["Netflix"],
        price=Decimal("7.99"),
        started_on=today - timedelta(days=28),
        expires_on=today + timedelta(days=2),
    )
    Subscription.objects.create(
        customer=luis,
        service=services["Disney+"],
        price=Decimal("8.99"),
        started_on=today - timedelta(days=40),
        expires_on=today - timedelta(days=5),
    )
    return {"ana": ana, "luis": luis, "marta": marta}


def names(response):
    return [c.name for c in response.context["page"].object_list]


@pytest.mark.parametrize(
    "query",
    [
        "0968196046",
        "+593 96 819 6046",
        "593968196046",
        "+593968196046",
        "096-819-6046",
        "819 60",
        "0968",
    ],
)
def test_it_finds_a_customer_by_any_phone_format_or_partial_digits(bob, client_for, book, query):
    response = client_for(bob).get(URL, {"q": query})
    assert names(response) == ["Ana Pérez"]


def test_it_finds_a_customer_by_part_of_the_name_in_any_case(bob, client_for, book):
    assert names(client_for(bob).get(URL, {"q": "pérez"})) == ["Ana Pérez"]
    assert names(client_for(bob).get(URL, {"q": "zzz"})) == []


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, ["Ana Pérez", "Luis Mora", "Marta Ruiz"]),
        ({"state": "active"}, ["Ana Pérez"]),
        ({"state": "expired"}, ["Luis Mora"]),
        ({"state": "none"}, ["Marta Ruiz"]),
        ({"service": "netflix"}, ["Ana Pérez"]),
        ({"service": "disney", "state": "active"}, []),
        ({"expiring_days": "3"}, ["Ana Pérez"]),
        ({"expiring_days": "1"}, []),
        ({"city": "Quito"}, ["Ana Pérez", "Marta Ruiz"]),
        ({"province": "Guayas"}, ["Luis Mora"]),
        ({"tag": "vip"}, ["Ana Pérez"]),
        ({"opted_out": "yes"}, ["Luis Mora"]),
        ({"opted_out": "no"}, ["Ana Pérez", "Marta Ruiz"]),
        ({"sort": "-name"}, ["Marta Ruiz", "Luis Mora", "Ana Pérez"]),
        ({"city": "Quito", "state": "none"}, ["Marta Ruiz"]),
    ],
)
def test_it_filters(bob, client_for, book, services, params, expected):
    ids = {
        "netflix": services["Netflix"].pk,
        "disney": services["Disney+"].pk,
        "vip": Tag.objects.get(name="VIP").pk,
    }
    params = {k: ids.get(v, v) for k, v in params.items()}
    response = client_for(bob).get(URL, params)
    assert names(response) == expected
    assert response.context["page"].paginator.count == len(expected)


def test_it_sorts_by_creation_date(bob, client_for, book):
    Customer.objects.filter(pk=book["marta"].pk).update(
        created_at=timezone.now() - timedelta(days=30)
    )
    assert names(client_for(bob).get(URL, {"sort": "created"}))[0] == "Marta Ruiz"
    assert names(client_for(bob).get(URL, {"sort": "-created"}))[-1] == "Marta Ruiz"


def test_it_ignores_nonsense_filter_values_instead_of_failing(bob, client_for, book):
    response = client_for(bob).get(
        URL, {"service": "x", "expiring_days": "-4", "tag": "999", "sort": "evil", "page": "z"}
    )
    assert response.status_code == 200
    assert len(names(response)) == 3


def test_it_shows_counts_and_paginates(bob, client_for, db):
    Customer.objects.bulk_create(
        Customer(name=f"Cliente {i:03}", phone=f"+5939{i:08}") for i in range(120)
    )
    client = client_for(bob)
    first = client.get(URL)
    assert "120 clientes de 120" in first.content.decode()
    assert len(names(first)) == 50
    third = client.get(URL, {"page": 3})
    assert names(third) == [f"Cliente {i:03}" for i in range(100, 120)]
    assert "Página 3 de 3" in third.content.decode()


def test_it_runs_a_fixed_number_of_queries_whatever_the_page_holds(bob, client_for, services):
    today = timezone.localdate()
    client = client_for(bob)

    def add(n):
        for i in range(n):
            c = Customer.objects.create(name=f"C{i}", phone=f"+5939{n:03}{i:05}")
            c.tags.add(Tag.objects.get_or_create(name=f"t{i % 3}")[0])
            Subscription.objects.create(
                customer=c,
                service=services["Netflix"],
                price=1,
                started_on=today,
                expires_on=today,
            )

    add(2)
    with CaptureQueriesContext(connection) as few:
        client.get(URL)
    add(30)
    with CaptureQueriesContext(connection) as many:
        client.get(URL)
    assert len(many.captured_queries) == len(few.captured_queries)


def test_it_answers_htmx_with_the_results_fragment_only(bob, client_for, book):
    response = client_for(bob).get(URL, {"q": "Ana"}, headers={"HX-Request": "true"})
    html = response.content.decode()
    assert 'id="results"' in html and "Ana Pérez" in html
    assert "<html" not in html and 'name="q"' not in html


def test_it_renders_the_full_page_with_a_working_form_without_htmx(bob, client_for, book):
    html = client_for(bob).get(URL, {"q": "Ana", "state": "active"}).content.decode()
    assert "<html" in html and 'id="results"' in html
    assert 'hx-push-url="true"' in html and f'action="{URL}"' in html
    assert 'value="Ana"' in html
    assert '<option value="active" selected>' in html


def test_it_escapes_customer_text(bob, client_for, db):
    Customer.objects.create(
        name="<script>alert(1)</script>", phone="+593968196046", city="<b>Quito</b>"
    )
    html = client_for(bob).get(URL).content.decode()
    assert "<script>alert(1)</script>" not in html and "<b>Quito</b>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
