"""Every page of the navigation holds at a desktop's 1280 px and a phone's 390 px, for each
role (issue 15, requirement 6), on `make demo`'s full data: no console error, nothing wider
than the screen, and at 1280 px no table wider than its box (its last columns out of view
behind a sideways scroll)."""

import pytest
from playwright.sync_api import expect

from devdata.demo import DEMO_USERS

pytestmark = pytest.mark.integration
WIDTHS = ((1280, 800), (390, 844))
PERSONAS = [u for u in DEMO_USERS if u.username in ("admin", "agente", "marketing")]
# Tables wider than the box they sit in, by more than a pixel of rounding.
WIDE_TABLES = """() => [...document.querySelectorAll('main table')]
  .filter(t => t.offsetParent !== null)
  .map(t => {
    const box = t.closest('.table-wrap') || t.parentElement;
    return {table: t.className || t.parentElement.className || 'table',
            width: t.scrollWidth, box: box.clientWidth};
  })
  .filter(t => t.width > t.box + 1)"""
# Items of a bar of links (filter pills, pagination) spread apart with big gaps (Pico lays a
# <nav>'s children out with space-between).
SPREAD = """() => [...document.querySelectorAll('main nav')].flatMap(nav => {
  const boxes = [...nav.children].filter(c => c.offsetParent !== null)
    .map(c => c.getBoundingClientRect());
  const gaps = [];
  for (let i = 1; i < boxes.length; i++) {
    const row = Math.abs(boxes[i].top - boxes[i - 1].top) < 2;
    if (row) gaps.push(boxes[i].left - boxes[i - 1].right);
  }
  return gaps.filter(g => g > 32).map(g => ({nav: nav.className, gap: Math.round(g)}));
})"""


def logged_in(browser, demo, user, width, height):
    context = browser.new_context(viewport={"width": width, "height": height}, locale="es-EC")
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(f"{m.type}: {m.text}") if m.type == "error" else 0)
    page.on("pageerror", lambda e: errors.append(f"pageerror: {e}"))
    page.goto(f"{demo.url}/accounts/login/")
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", user.password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{demo.url}/")
    return context, page, errors


@pytest.mark.parametrize("user", PERSONAS, ids=[u.username for u in PERSONAS])
def test_it_holds_every_nav_page_at_desktop_and_phone_widths(browser, running_demo, user):
    problems = []
    for width, height in WIDTHS:
        context, page, errors = logged_in(browser, running_demo, user, width, height)
        links = page.locator("nav.mainnav a")
        hrefs = [links.nth(i).get_attribute("href") for i in range(links.count())]
        assert len(hrefs) >= 3
        for href in hrefs:
            errors.clear()
            page.goto(running_demo.url + href)
            heading = page.locator("main h1, #content h1, h1").first
            expect(heading).to_be_visible()
            page.wait_for_timeout(300)  # late scripts (charts, the socket) have run
            where = f"{user.username} {width}px {href}"
            overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            if overflow > 0:
                problems.append(f"{where}: the page is {overflow}px wider than the screen")
            if width >= 1280:
                for table in page.evaluate(WIDE_TABLES):
                    problems.append(f"{where}: table {table} wider than its box")
            for bar in page.evaluate(SPREAD):
                problems.append(f"{where}: links of {bar} spread apart")
            problems += [f"{where}: {e}" for e in errors]
        context.close()
    assert not problems, "\n".join(problems)
