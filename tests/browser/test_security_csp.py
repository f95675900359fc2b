"""Pages under an enforced Content Security Policy (django-csp), in a real browser: no page
breaks a rule (an inline script, handler or style would be reported here), the language select,
which used to be an inline onchange, still works, and the inbox socket connects under
connect-src 'self' while a socket to another host is refused."""

import os

import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import expect

from tests.browser.test_inbox_live import inbound
from tests.conftest import make_user
from tests.procs import daphne_args, free_port, process_env, redis_url_for_tests, running
from tests.waiting import wait_until

VIOLATIONS = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__csp.push(e.violatedDirective + " " + (e.blockedURI || "inline") + " " + e.sourceFile);
});
"""
# Every page an admin opens from the nav and the user menu, plus the ones without arguments.
PAGES = [
    "/",
    "/inbox/",
    "/campaigns/",
    "/templates/",
    "/templates/new/",
    "/segments/",
    "/segments/new/",
    "/customers/",
    "/customers/import/",
    "/insights/",
    "/automations/",
    "/account/tokens/",
    "/ops/",
    "/admin/",
]


@pytest.fixture
def csp_server_url(transactional_db, tmp_path):
    port = free_port()
    # Never the environment's Redis database (a running chatdesk's): the tests' own one.
    extra = {"REDIS_URL": redis_url_for_tests()} if os.environ.get("REDIS_URL") else {}
    env = process_env(DEBUG="1", DRAMATIQ_BROKER="stub", CSP_REPORT_ONLY="0", **extra)
    with running(
        daphne_args(port),
        env=env,
        ready_url=f"http://127.0.0.1:{port}/healthz",
        log=tmp_path / "daphne.log",
    ):
        yield f"http://127.0.0.1:{port}"


@pytest.fixture
def page(browser, csp_server_url):
    context = browser.new_context(locale="es-EC")
    context.add_init_script(VIOLATIONS)
    yield context.new_page()
    context.close()


def login(page, base: str, username: str) -> None:
    page.goto(f"{base}/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", f"pass-{username}")
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")


def test_it_breaks_no_rule_of_the_policy_on_any_page(page, csp_server_url):
    make_user("alice", "admin", first_name="Alice", is_staff=True)
    login(page, csp_server_url, "alice")
    found = {}
    for path in PAGES:
        response = page.goto(csp_server_url + path)
        assert response.status == 200, path
        assert "Content-Security-Policy" in response.headers or "content-security-policy" in (
            response.headers
        )
        page.wait_for_load_state("networkidle")
        violations = page.evaluate("window.__csp")
        if violations:
            found[path] = violations
    assert not found


def test_it_switches_the_language_without_inline_script(page, csp_server_url):
    make_user("bob", "agent", first_name="Bob")
    page.goto(f"{csp_server_url}/accounts/login/")
    assert page.locator("button[type=submit]").inner_text() == "Entrar"
    page.select_option("select[name=language]", "en")
    page.wait_for_load_state("load")
    until(page, "document.documentElement.lang === 'en'")
    assert page.evaluate("window.__csp") == []


def test_it_would_see_a_violation(page, csp_server_url):
    """The listener is no blind spot: an inline style added to the page is reported."""
    page.goto(f"{csp_server_url}/accounts/login/")
    page.evaluate("document.body.insertAdjacentHTML('beforeend', '<p style=\"color:red\">x</p>')")
    until(page, "window.__csp.length > 0")
    assert "style-src" in page.evaluate("window.__csp")[0]


def test_it_lets_the_inbox_socket_connect_under_the_policy(page, csp_server_url):
    """connect-src is 'self' plus PUBLIC_URL's socket origin, which here is the default
    (port 8000), not this server's port: only 'self' can allow this socket, as CSP Level 3 says
    of a same-host ws: (Chromium does). A socket to any other host is refused."""
    make_user("bob", "agent", first_name="Bob")
    login(page, csp_server_url, "bob")
    response = page.goto(f"{csp_server_url}/inbox/")
    policy = response.headers["content-security-policy"]
    assert "connect-src 'self' ws://127.0.0.1:8000;" in policy + ";"
    assert not csp_server_url.endswith(":8000")
    # Polled from here: the policy forbids eval, which page.wait_for_function's polling uses.
    until(page, "window.chatdeskInbox && window.chatdeskInbox.socket !== null")
    inbound(csp_server_url, "Hola, ¿siguen abiertos?", name="Luis Torres", phone="593991234567")
    expect(page.locator(".conv-row", has_text="Luis Torres")).to_be_visible()
    assert page.evaluate("window.__csp") == []
    page.evaluate("try { new WebSocket('ws://127.0.0.2:9/ws/inbox/') } catch (e) {}")
    until(page, "window.__csp.length > 0")
    assert page.evaluate("window.__csp")[0].startswith("connect-src ws://127.0.0.2:9")


def until(page, expression: str, timeout: float = 30) -> None:
    def true() -> bool:
        try:
            return bool(page.evaluate(expression))
        except PlaywrightError:  # the page is navigating: ask the next one
            return False

    wait_until(true, timeout=timeout, what=expression, every=0.1)
