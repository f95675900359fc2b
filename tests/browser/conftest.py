"""A real chatdesk (daphne subprocess on the test database) and headless Chromium.

Browser tests need committed data (`transactional_db`) because the server is another process.
"""

import os
from pathlib import Path

import pytest

from tests.conftest import mark_folder, require
from tests.procs import daphne_args, free_port, process_env, redis_url_for_tests, running

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-results"


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items):
    """Every test here drives Chromium."""
    mark_folder(items, __file__, pytest.mark.browser)


# Module scope: Playwright's loop must not outlive the browser tests, or later tests that run
# their own event loop (asyncio.run, async_to_sync) find one already running in this thread.
@pytest.fixture(scope="module")
def browser():
    require(os.path.exists(CHROMIUM), f"{CHROMIUM} is missing (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop in this thread; the ORM calls the tests make
    # beside it are still plain synchronous calls.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            yield browser
            browser.close()
    finally:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


@pytest.fixture
def live_server_url(transactional_db, tmp_path):
    """chatdesk served by a real daphne process, embedded settings, on a free port."""
    port = free_port()
    # Never the environment's Redis database (a running chatdesk's): the tests' own one.
    extra = {"REDIS_URL": redis_url_for_tests()} if os.environ.get("REDIS_URL") else {}
    env = process_env(DEBUG="1", DRAMATIQ_BROKER="stub", **extra)
    with running(
        daphne_args(port),
        env=env,
        ready_url=f"http://127.0.0.1:{port}/healthz",
        log=tmp_path / "daphne.log",
    ):
        yield f"http://127.0.0.1:{port}"


@pytest.fixture
def page_for(browser, live_server_url):
    """page_for(user, password, viewport=None) -> a logged-in page in a fresh browser context."""
    contexts = []

    def open_page(username: str, password: str, *, width: int = 1280, height: int = 800):
        context = browser.new_context(viewport={"width": width, "height": height}, locale="es-EC")
        contexts.append(context)
        page = context.new_page()
        page.goto(f"{live_server_url}/accounts/login/")
        page.fill("input[name=username]", username)
        page.fill("input[name=password]", password)
        page.click("button[type=submit]")
        page.wait_for_url(f"{live_server_url}/")
        return page

    yield open_page
    for context in contexts:
        context.close()
