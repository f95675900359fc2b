"""chatdesk works offline and behind a strict firewall (issue 15, requirement 7): every page the
app serves, read in Chromium with every request to another host blocked, loads nothing from
outside and raises no script error; the API docs (Swagger UI) render from the app's own copy.

The pages are found as a person finds them: from the navigation of the demo's admin, following
the links each page shows (a couple of each kind: one customer's page stands for all)."""

import re
from collections import Counter
from urllib.parse import urljoin, urlsplit

import pytest
from playwright.sync_api import expect

from devdata.demo import DEMO_USERS

pytestmark = pytest.mark.integration
ADMIN = next(u for u in DEMO_USERS if u.username == "admin")
# Not pages: downloads, the logout; and the Django admin's own screens beyond its index (they
# are Django's, served from the same static files).
SKIP = re.compile(r"\.csv$|/export|/download|/media/|/accounts/logout|^/admin/.+")
PER_KIND = 1
MAX_PAGES = 60


def kind(path: str) -> str:
    return re.sub(r"/\d+", "/N", path)


def test_it_loads_every_page_from_the_app_alone(browser, running_demo):
    origin = urlsplit(running_demo.url).netloc
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="es-EC")
    outside: list[str] = []

    def only_ours(route):
        if urlsplit(route.request.url).netloc in (origin, ""):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    context.route("**/*", only_ours)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(f"{page.url}: {e}"))
    page.goto(f"{running_demo.url}/accounts/login/")
    page.fill("input[name=username]", ADMIN.username)
    page.fill("input[name=password]", ADMIN.password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{running_demo.url}/")

    queue, seen, kinds = ["/", "/api/v1/docs"], set(), Counter()
    while queue and len(seen) < MAX_PAGES:
        path = queue.pop(0)
        if path in seen or SKIP.search(path) or kinds[kind(path)] >= PER_KIND:
            continue
        seen.add(path)
        kinds[kind(path)] += 1
        response = page.goto(running_demo.url + path)
        assert response.status < 400, f"{path}: {response.status}"
        page.wait_for_load_state("load")
        for href in page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)"):
            parts = urlsplit(urljoin(page.url, href))
            if parts.netloc == origin and parts.path not in seen:
                queue.append(parts.path)
    assert len(seen) >= 20, sorted(seen)
    assert "/api/v1/docs" in seen and "/campaigns/" in seen and "/inbox/" in seen
    assert not outside, f"requests to other hosts: {sorted(set(outside))}"
    assert not errors, "\n".join(errors)
    context.close()


def test_it_renders_the_api_docs_from_its_own_copy_of_swagger_ui(browser, running_demo):
    context = browser.new_context(locale="es-EC")
    outside: list[str] = []
    origin = urlsplit(running_demo.url).netloc

    def only_ours(route):
        if urlsplit(route.request.url).netloc in (origin, ""):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    context.route("**/*", only_ours)
    page = context.new_page()
    page.goto(f"{running_demo.url}/accounts/login/?next=/api/v1/docs")
    page.fill("input[name=username]", ADMIN.username)
    page.fill("input[name=password]", ADMIN.password)
    page.click("button[type=submit]")
    page.wait_for_url("**/api/v1/docs")
    expect(page.locator(".swagger-ui .info .title")).to_be_visible()
    expect(page.locator(".swagger-ui .opblock").first).to_be_visible()
    icons = page.eval_on_selector_all("link[rel=icon]", "els => els.map(e => e.href)")
    assert icons and all(urlsplit(i).netloc == origin for i in icons)
    assert not outside, outside
    context.close()
