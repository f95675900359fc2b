"""A marketer writes a template with a live preview, then builds and saves a segment."""

from datetime import timedelta
from decimal import Decimal

from django.utils import timezone
from playwright.sync_api import expect

from customers.models import Customer, Segment, Service, Subscription
from outbound.models import MessageTemplate
from tests.conftest import make_user


def customer_book():
    today = timezone.localdate()
    netflix = Service.objects.create(name="Netflix", normal_price=Decimal("7.99"))
    hbo = Service.objects.create(name="HBO Max", normal_price=Decimal("6.50"))
    for index, (name, services, opted_out) in enumerate(
        [
            ("Ana Torres", [netflix], None),
            ("Beto Ruiz", [netflix, hbo], None),
            ("Ciro Vera", [hbo], None),
            ("Dora Paz", [netflix], timezone.now()),
        ]
    ):
        customer = Customer.objects.create(
            name=name, phone=f"+5939900002{index:02d}", marketing_opt_out_at=opted_out
        )
        for service in services:
            Subscription.objects.create(
                customer=customer,
                service=service,
                price=service.normal_price,
                started_on=today - timedelta(days=20),
                expires_on=today + timedelta(days=10),
            )
    return netflix, hbo


def test_it_lets_a_marketer_preview_a_template_and_build_a_segment(page_for, live_server_url):
    make_user("carla", "marketer", first_name="Carla")
    _netflix, hbo = customer_book()
    page = page_for("carla", "pass-carla")

    page.goto(f"{live_server_url}/templates/new/")
    page.fill("input[name=name]", "Oferta HBO")
    page.locator("textarea[name=body]").press_sequentially("*Hola* {nombr")
    expect(page.locator("#preview .preview-errors")).to_contain_text("sin cerrar")
    page.locator("textarea[name=body]").press_sequentially("}, tu {servicio}")
    expect(page.locator("#preview .preview-errors")).to_contain_text(
        "Variable desconocida: {nombr}"
    )
    page.fill("textarea[name=body]", "")
    page.locator("textarea[name=body]").press_sequentially("*Hola* {nombre}, tu {servicio}")
    expect(page.locator("#preview .wa-bubble strong")).to_have_text("Hola")
    expect(page.locator("#preview .wa-bubble")).to_contain_text("María, tu Netflix")
    page.locator("input[name=customer_q]").press_sequentially("Ciro")
    expect(page.locator("#preview .wa-bubble")).to_contain_text("Ciro, tu HBO Max")
    page.get_by_role("button", name="Guardar", exact=True).click()
    page.wait_for_url(f"{live_server_url}/templates/")
    expect(page.locator(".template-card", has_text="Oferta HBO")).to_be_visible()
    assert MessageTemplate.objects.get(name="Oferta HBO").body == "*Hola* {nombre}, tu {servicio}"

    page.goto(f"{live_server_url}/segments/new/")
    page.fill("input[name=name]", "HBO activos")
    page.select_option("select[name=state]", "active")
    count = page.locator("#segment-live .live-count")
    expect(count).to_have_text("3")
    expect(page.locator("#segment-live .excluded")).to_contain_text("1 excluido por baja")
    page.get_by_label("HBO Max").check()
    expect(count).to_have_text("2")
    page.get_by_label("solo esos, ningún otro").check()
    expect(count).to_have_text("1")
    expect(page.locator("#segment-live .recipients")).to_contain_text("Ciro Vera")
    page.get_by_role("button", name="Guardar segmento").click()
    page.wait_for_url(f"{live_server_url}/segments/")
    expect(page.locator(".segment-table tr", has_text="HBO activos")).to_contain_text("1")
    segment = Segment.objects.get(name="HBO activos")
    assert segment.filters == {"services": [hbo.pk], "service_mode": "only", "state": "active"}


def test_it_fits_the_editor_and_the_builder_on_a_phone(page_for, live_server_url):
    make_user("carla", "marketer", first_name="Carla")
    customer_book()
    page = page_for("carla", "pass-carla", width=390, height=844)
    for path in ("/templates/", "/templates/new/", "/segments/", "/segments/new/?preset=active"):
        page.goto(live_server_url + path)
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, path
