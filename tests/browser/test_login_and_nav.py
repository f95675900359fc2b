"""What a newcomer does first: log in, and open every entry of the nav their role shows."""

from playwright.sync_api import expect

from tests.conftest import make_user


def nav_labels(page) -> list[str]:
    return page.locator("nav.mainnav a").all_inner_texts()


def test_it_logs_in_and_opens_every_nav_entry_as_admin(page_for, live_server_url):
    make_user("alice", "admin", first_name="Alice", is_staff=True)
    page = page_for("alice", "pass-alice")
    labels = nav_labels(page)
    assert labels == [
        "Panel",
        "Conversaciones",
        "Campañas",
        "Plantillas",
        "Clientes",
        "Analítica",
        "Automatizaciones",
        "Números",
        "Administración",
    ]
    for label in labels:
        href = page.locator("nav.mainnav a", has_text=label).first.get_attribute("href")
        response = page.goto(live_server_url + href)
        assert response.status == 200, label
        assert page.locator("main h1").count() >= 1, label
        # The entry of the page is the one marked, and only it ("Números" lives under
        # /inbox/ but is not "Conversaciones"); Django's admin has its own header. (As shown:
        # the inbox's entry holds its unread badge, hidden at 0.)
        if label != "Administración":
            current = page.locator('nav.mainnav a[aria-current="page"]')
            expect(current).to_have_text(label, use_inner_text=True)


def test_it_shows_an_agent_only_what_agents_may_use(page_for):
    make_user("bob", "agent", first_name="Bob")
    page = page_for("bob", "pass-bob")
    assert nav_labels(page) == ["Panel", "Conversaciones", "Clientes"]


def test_it_rejects_a_wrong_password_in_spanish(browser, live_server_url):
    make_user("alice", "admin")
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{live_server_url}/accounts/login/")
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", "wrong")
    page.click("button[type=submit]")
    assert "Usuario o contraseña incorrectos" in page.inner_text("main")
    context.close()


def test_it_fits_the_nav_on_a_phone_screen(page_for):
    make_user("alice", "admin", first_name="Alice", is_staff=True)
    page = page_for("alice", "pass-alice", width=390, height=844)
    # Nothing on the page is wider than the screen (the nav scrolls inside itself).
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page is {overflow}px wider than a phone screen"
