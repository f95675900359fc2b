"""The composer's emoji picker: our own data, nothing from a CDN. (Sending for real, with
ticks, attachments and two agents, is in test_inbox_journeys.py.)"""

from playwright.sync_api import expect

from customers.models import Customer
from inbox.models import Conversation
from tests.conftest import make_user


def _agent_in_a_conversation(page_for, live_server_url):
    """Bob's page on a conversation with Carlos, and the list of every URL it requests."""
    make_user("bob", "agent", first_name="Bob")
    conversation = Conversation.objects.create(
        customer=Customer.objects.create(phone="+593968196046", name="Carlos")
    )
    bob = page_for("bob", "pass-bob")
    requests = []
    bob.on("request", lambda request: requests.append(request.url))
    bob.goto(f"{live_server_url}/inbox/c/{conversation.pk}/")
    return bob, requests


def _assert_emoji_data_came_from_us(requests: list[str], live_server_url: str) -> None:
    assert any(u.endswith("/static/vendor/emoji-picker/es/data.json") for u in requests)
    foreign = [u for u in requests if not u.startswith(live_server_url) and u.startswith("http")]
    assert foreign == []


def test_it_inserts_an_emoji_at_the_cursor_from_our_own_data(page_for, live_server_url):
    bob, requests = _agent_in_a_conversation(page_for, live_server_url)
    area = bob.locator("#composer textarea")
    area.fill("Hola  gracias")
    area.evaluate("el => el.setSelectionRange(5, 5)")
    bob.locator("#emoji-toggle").click()
    picker = bob.locator("#emoji-box emoji-picker")
    expect(picker).to_be_visible()
    # Playwright's CSS reaches into the picker's open shadow root.
    picker.locator("input.search").fill("corazón")
    first = picker.locator("#search-results [role=option]").first
    expect(first).to_be_visible()
    emoji = first.inner_text().strip()
    first.click()
    expect(area).to_have_value(f"Hola {emoji} gracias")
    _assert_emoji_data_came_from_us(requests, live_server_url)


def test_the_vendored_picker_database_defaults_to_our_own_spanish_data(page_for, live_server_url):
    bob, requests = _agent_in_a_conversation(page_for, live_server_url)
    source = bob.locator("#emoji-toggle").get_attribute("data-picker")
    database = source.replace("picker.js", "database.js")
    # No dataSource given: the library's default decides where the data comes from.
    names = bob.evaluate(
        """async (url) => {
            const { default: Database } = await import(url);
            const db = new Database({ locale: "es-default-test" });
            await db.ready();
            const found = await db.getEmojiBySearchQuery("corazón");
            await db.delete();
            return found.map((emoji) => emoji.annotation);
        }""",
        database,
    )
    assert any("corazón" in name.lower() for name in names)
    _assert_emoji_data_came_from_us(requests, live_server_url)
