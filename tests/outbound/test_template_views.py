"""/templates/: list, create, edit, duplicate, archive, live preview, and who may do what."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from customers.models import Customer, Service, Subscription
from outbound.models import MessageTemplate


@pytest.fixture
def promo(db):
    return MessageTemplate.objects.create(
        name="Black Friday", category="marketing", body="*Hola* {nombre}, {servicio} al 50%"
    )


@pytest.fixture
def maria(db):
    netflix = Service.objects.create(name="Netflix", normal_price=Decimal("7.99"))
    customer = Customer.objects.create(name="María González", phone="+593968196046")
    today = timezone.localdate()
    Subscription.objects.create(
        customer=customer,
        service=netflix,
        price=Decimal("5.99"),
        started_on=today - timedelta(days=20),
        expires_on=today + timedelta(days=3),
    )
    return customer


def test_it_lists_templates_with_category_filter_and_search(client_for, carla, promo):
    client = client_for(carla)
    page = client.get(reverse("outbound:template_list")).content.decode()
    assert "Black Friday" in page and "Soporte" in page  # the shipped examples too
    page = client.get(reverse("outbound:template_list"), {"category": "support"}).content.decode()
    assert "Black Friday" not in page and "Recibimos tu consulta" in page
    page = client.get(reverse("outbound:template_list"), {"q": "friday"}).content.decode()
    assert "Black Friday" in page and "Recibimos tu consulta" not in page


def test_it_answers_the_list_search_with_the_results_partial(client_for, carla, promo):
    response = client_for(carla).get(
        reverse("outbound:template_list"), {"q": "friday"}, headers={"HX-Request": "true"}
    )
    content = response.content.decode()
    assert content.lstrip().startswith('<div id="results"')
    assert "<html" not in content and "Black Friday" in content


def test_it_creates_a_template(client_for, carla):
    response = client_for(carla).post(
        reverse("outbound:template_create"),
        {"name": "Navidad", "category": "marketing", "body": "🎄 Hola {nombre}"},
    )
    assert response.status_code == 302
    assert MessageTemplate.objects.get(name="Navidad").body == "🎄 Hola {nombre}"


def test_it_refuses_to_save_an_unknown_variable(client_for, carla):
    response = client_for(carla).post(
        reverse("outbound:template_create"),
        {"name": "Rota", "category": "marketing", "body": "Hola {nombr}"},
    )
    assert response.status_code == 200
    assert "Variable desconocida: {nombr}" in response.content.decode()
    assert not MessageTemplate.objects.filter(name="Rota").exists()


def test_it_refuses_to_save_an_unbalanced_brace(client_for, carla, promo):
    response = client_for(carla).post(
        reverse("outbound:template_edit", args=[promo.pk]),
        {"name": promo.name, "category": "marketing", "body": "Hola {nombre"},
    )
    assert response.status_code == 200
    promo.refresh_from_db()
    assert promo.body == "*Hola* {nombre}, {servicio} al 50%"


def test_it_edits_a_template(client_for, alice, promo):
    client = client_for(alice)
    page = client.get(reverse("outbound:template_edit", args=[promo.pk])).content.decode()
    assert "{servicio} al 50%" in page
    response = client.post(
        reverse("outbound:template_edit", args=[promo.pk]),
        {"name": "Black Friday 2026", "category": "support", "body": "Hola {nombre}"},
    )
    assert response.status_code == 302
    promo.refresh_from_db()
    assert (promo.name, promo.category, promo.body) == (
        "Black Friday 2026",
        "support",
        "Hola {nombre}",
    )


def test_it_duplicates_a_template_under_a_new_name(client_for, carla, promo):
    client = client_for(carla)
    first = client.post(reverse("outbound:template_duplicate", args=[promo.pk]))
    client.post(reverse("outbound:template_duplicate", args=[promo.pk]))
    copies = MessageTemplate.objects.filter(name__startswith="Copia de Black Friday")
    assert sorted(copies.values_list("name", flat=True)) == [
        "Copia de Black Friday",
        "Copia de Black Friday (2)",
    ]
    copy = copies.get(name="Copia de Black Friday")
    assert first["Location"] == reverse("outbound:template_edit", args=[copy.pk])
    assert (copy.body, copy.category) == (promo.body, promo.category)


def test_it_archives_and_restores_a_template(client_for, carla, promo):
    client = client_for(carla)
    client.post(reverse("outbound:template_archive", args=[promo.pk]), {"archived": "1"})
    promo.refresh_from_db()
    assert promo.archived
    card = f'id="template-{promo.pk}"'
    assert card not in client.get(reverse("outbound:template_list")).content.decode()
    archived = client.get(reverse("outbound:template_list"), {"archived": "on"})
    assert card in archived.content.decode()
    client.post(reverse("outbound:template_archive", args=[promo.pk]), {"archived": "0"})
    promo.refresh_from_db()
    assert not promo.archived


def preview(client, **data):
    response = client.post(
        reverse("outbound:template_preview"), data, headers={"HX-Request": "true"}
    )
    assert response.status_code == 200
    return response.content.decode()


def test_it_previews_a_body_for_a_chosen_customer(client_for, carla, maria):
    html = preview(client_for(carla), body="*Hola* {nombre}\nTu {servicio}", customer_q="maría")
    assert html.lstrip().startswith('<div id="preview"')
    assert "<strong>Hola</strong> María<br>" in html
    assert "Tu Netflix" in html
    assert "+593968196046" in html


def test_it_previews_with_sample_values_and_campaign_values(client_for, carla):
    html = preview(client_for(carla), body="{nombre}: {nuevo_servicio}", nuevo_servicio="Max")
    assert "María: Max" in html


def test_it_explains_unknown_and_missing_variables_in_the_preview(client_for, carla, maria):
    client = client_for(carla)
    assert "Variable desconocida: {nombr}" in preview(client, body="Hola {nombr}")
    html = preview(client, body="Tema: {tema}", customer_q="María")
    assert "Falta un valor para {tema}" in html
    lonely = Customer.objects.create(name="Sin Plan", phone="+593990000009")
    html = preview(client, body="Tu {servicio}", customer_q=lonely.name)
    assert "Falta un valor para {servicio}" in html and "no tiene suscripciones" in html


def test_it_explains_a_discount_that_is_not_a_number(client_for, carla, maria):
    client = client_for(carla)
    for bad in ("NaN", "Infinity", "1e999999"):
        html = preview(client, body="Ahora ${precio_descuento}", descuento=bad, customer_q="María")
        assert "El descuento debe ser un número entre 1 y 99." in html


def test_it_escapes_customer_text_in_the_preview(client_for, carla):
    Customer.objects.create(name="<script>alert(1)</script>", phone="+593990000010")
    html = preview(client_for(carla), body="Hola {nombre}", customer_q="script")
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_it_shows_the_preview_on_a_full_page_load(client_for, carla, promo):
    page = client_for(carla).get(reverse("outbound:template_edit", args=[promo.pk]))
    assert "<strong>Hola</strong> María" in page.content.decode()


@pytest.mark.parametrize(
    "name,args,method",
    [
        ("outbound:template_create", [], "get"),
        ("outbound:template_edit", ["pk"], "get"),
        ("outbound:template_duplicate", ["pk"], "post"),
        ("outbound:template_archive", ["pk"], "post"),
        ("outbound:template_preview", [], "post"),
    ],
)
def test_it_lets_only_admins_and_marketers_change_templates(
    client_for, bob, charlie, promo, name, args, method
):
    url = reverse(name, args=[promo.pk if arg == "pk" else arg for arg in args])
    for user in (bob, charlie):
        client = client_for(user)
        assert getattr(client, method)(url).status_code == 403
    assert MessageTemplate.objects.filter(name__startswith="Copia").count() == 0
    promo.refresh_from_db()
    assert not promo.archived


def test_it_shows_agents_the_list_read_only(client_for, bob, charlie, promo):
    page = client_for(bob).get(reverse("outbound:template_list"))
    assert page.status_code == 200
    content = page.content.decode()
    assert "Black Friday" in content
    assert reverse("outbound:template_edit", args=[promo.pk]) not in content
    assert reverse("outbound:template_create") not in content
    assert client_for(charlie).get(reverse("outbound:template_list")).status_code == 403
