"""The {variable} engine and the WhatsApp-formatting preview."""

from datetime import date, timedelta
from decimal import Decimal

import pytest

from customers.models import Customer, Service, Subscription
from outbound.models import MessageTemplate
from outbound.templating import (
    InvalidTemplate,
    MissingValue,
    template_render,
    template_render_sample,
    template_validate,
    template_variables,
    whatsapp_html,
)

TODAY = date(2026, 11, 25)


@pytest.fixture
def netflix(db):
    return Service.objects.create(name="Netflix", normal_price=Decimal("7.99"))


@pytest.fixture
def hbo(db):
    return Service.objects.create(name="HBO Max", normal_price=Decimal("6.50"))


@pytest.fixture
def maria(db, netflix, hbo):
    customer = Customer.objects.create(name="María González", phone="+593968196046")
    subscribe(customer, netflix, price="5.99", expires_on=TODAY + timedelta(days=3))
    subscribe(customer, hbo, price="6.00", expires_on=TODAY + timedelta(days=20))
    return customer


def subscribe(customer, service, *, price, expires_on, started_on=None):
    return Subscription.objects.create(
        customer=customer,
        service=service,
        price=Decimal(price),
        started_on=started_on or expires_on - timedelta(days=30),
        expires_on=expires_on,
    )


def render(body, customer, **kwargs):
    return template_render(body, customer=customer, today=TODAY, **kwargs)


def test_it_lists_the_variables_of_a_body():
    body = "Hola {nombre}, tu {servicio} vence el {fecha_vencimiento}. {nombre}"
    assert template_variables(body) == {"nombre", "servicio", "fecha_vencimiento"}


def test_it_renders_every_customer_variable(maria):
    body = (
        "{nombre}|{servicio}|{precio}|{precio_normal}|{precio_descuento}|"
        "{fecha_vencimiento}|{dias_restantes}|{fecha_limite}"
    )
    text = render(body, maria, extra={"descuento": "50"})
    # Netflix is the active subscription expiring soonest.
    assert text == "María|Netflix|5.99|7.99|4.00|28 de noviembre|3|28 de noviembre"


def test_it_renders_the_campaign_variables(maria):
    body = "{nuevo_servicio}: {caracteristicas} · {tema} · {descuento}%"
    extra = {
        "nuevo_servicio": "Disney+",
        "caracteristicas": "4K",
        "tema": "tu clave",
        "descuento": "30",
    }
    assert render(body, maria, extra=extra) == "Disney+: 4K · tu clave · 30%"


def test_it_lets_a_campaign_value_override_a_derived_one(maria):
    text = render(
        "${precio} hasta {fecha_limite}",
        maria,
        extra={"precio": "3.99", "fecha_limite": "1 de diciembre"},
    )
    assert text == "$3.99 hasta 1 de diciembre"


def test_it_uses_the_campaign_service_when_given(maria, hbo):
    assert render("{servicio} {precio} {dias_restantes}", maria, service=hbo) == "HBO Max 6.00 20"
    assert render("{servicio}", maria, service=hbo.pk) == "HBO Max"


def test_it_falls_back_to_the_latest_expired_subscription(netflix, hbo):
    customer = Customer.objects.create(name="Luis", phone="+593990000001")
    subscribe(customer, netflix, price="5", expires_on=TODAY - timedelta(days=40))
    subscribe(customer, hbo, price="6", expires_on=TODAY - timedelta(days=2))
    assert render("{servicio} {fecha_vencimiento}", customer) == "HBO Max 23 de noviembre"
    with pytest.raises(MissingValue) as missing:
        render("{dias_restantes}", customer)
    assert missing.value.variable == "dias_restantes"


def test_it_writes_the_year_of_a_date_in_another_year(netflix):
    customer = Customer.objects.create(name="Ana", phone="+593990000002")
    subscribe(customer, netflix, price="5", expires_on=date(2027, 1, 3))
    assert render("{fecha_vencimiento}", customer) == "3 de enero de 2027"


def test_it_reports_unknown_variables_by_name():
    errors = template_validate("Hola {nombr}, tu {servicio} y {precio_especial}")
    assert errors == ["Variable desconocida: {nombr}", "Variable desconocida: {precio_especial}"]


def test_it_reports_unbalanced_braces():
    assert len(template_validate("Hola {nombre")) == 1
    assert len(template_validate("Hola nombre}")) == 1
    assert template_validate("Hola {nombre}") == []


def test_it_accepts_doubled_braces_as_literal_braces(maria):
    assert template_validate("{{nombre}} es {nombre}") == []
    assert render("{{nombre}} es {nombre}", maria) == "{nombre} es María"


def test_it_refuses_to_render_an_invalid_body(maria):
    with pytest.raises(InvalidTemplate) as invalid:
        render("Hola {nombr}", maria)
    assert invalid.value.errors == ["Variable desconocida: {nombr}"]


def test_it_raises_missing_value_for_a_customer_without_subscription(db):
    customer = Customer.objects.create(name="Pedro", phone="+593990000003")
    assert render("Hola {nombre}", customer) == "Hola Pedro"
    with pytest.raises(MissingValue) as missing:
        render("Hola {nombre}, tu {servicio}", customer)
    assert missing.value.variable == "servicio"
    assert missing.value.reason


def test_it_raises_missing_value_without_the_campaign_service(maria, db):
    disney = Service.objects.create(name="Disney+", normal_price=Decimal("8.99"))
    with pytest.raises(MissingValue) as missing:
        render("{servicio}", maria, service=disney)
    assert missing.value.variable == "servicio"


def test_it_raises_missing_value_for_an_unfilled_campaign_variable(maria):
    with pytest.raises(MissingValue) as missing:
        render("Novedad: {nuevo_servicio}", maria, extra={"nuevo_servicio": "  "})
    assert missing.value.variable == "nuevo_servicio"
    with pytest.raises(MissingValue) as missing:
        render("${precio_descuento}", maria)
    assert missing.value.variable == "precio_descuento"
    with pytest.raises(MissingValue):
        render("${precio_descuento}", maria, extra={"descuento": "150"})


def test_it_raises_missing_value_for_a_customer_without_name(db):
    customer = Customer.objects.create(name="", phone="+593990000004")
    with pytest.raises(MissingValue) as missing:
        render("Hola {nombre}", customer)
    assert missing.value.variable == "nombre"


def test_it_never_reads_braces_in_customer_data_as_variables(netflix):
    customer = Customer.objects.create(name="{servicio}{nombre} }{", phone="+593990000005")
    subscribe(customer, netflix, price="5", expires_on=TODAY)
    assert render("Hola {nombre} ({servicio})", customer) == "Hola {servicio}{nombre} (Netflix)"


def test_it_renders_sample_values_before_a_customer_is_chosen():
    assert template_render_sample("Hola {nombre}, {tema}", extra={"tema": "pagos"}) == (
        "Hola María, pagos"
    )
    with pytest.raises(MissingValue):
        template_render_sample("{tema}")


def test_it_formats_whatsapp_markup_as_html():
    html = whatsapp_html("*Oferta* _solo hoy_ ~antes~ ```código```\nsegunda línea")
    assert html == (
        "<strong>Oferta</strong> <em>solo hoy</em> <s>antes</s> <code>código</code><br>\n"
        "segunda línea"
    )


def test_it_leaves_markers_inside_words_and_mono_alone():
    assert whatsapp_html("snake_case_name 2*3*4") == "snake_case_name 2*3*4"
    assert whatsapp_html("```*no*```") == "<code>*no*</code>"


def test_it_escapes_customer_text_before_formatting(netflix):
    customer = Customer.objects.create(name="<script>alert(1)</script>", phone="+593990000006")
    html = whatsapp_html(render("*Hola* {nombre}", customer))
    assert "<script>" not in html
    assert html == "<strong>Hola</strong> &lt;script&gt;alert(1)&lt;/script&gt;"


def test_it_ships_the_proposals_templates_valid_and_renderable(maria):
    examples = MessageTemplate.objects.filter(
        name__in=["Promoción", "Nuevo servicio", "Soporte", "Vencimiento"]
    )
    assert examples.count() == 4
    extra = {"nuevo_servicio": "Disney+", "caracteristicas": "4K", "tema": "pagos", "descuento": 50}
    for template in examples:
        assert template_validate(template.body) == [], template.name
        text = render(template.body, maria, extra=extra)
        assert "{" not in text and "María" in text, template.name
