"""A campaign's page tells one story while it runs (issue 15, requirement 8): created with
"Inmediato" from /campaigns/new/ and sent by the README's real processes (two daphnes, the
dramatiq worker, the scheduler, the simulator), its progress bar, its results table and its
recipients list, read together from the page at any moment, always agree."""

import pytest
from playwright.sync_api import expect

from customers.models import Customer
from tests.conftest import make_user
from tests.waiting import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.services]
CUSTOMERS = 40  # one page of recipients: every row is on the page
REACHED = ("sent", "delivered", "read", "played")
SNAPSHOT = """reached => {
  const text = sel => document.querySelector(sel)?.textContent.trim();
  const rows = [...document.querySelectorAll('#campaign-results .recipient-table tr[data-state]')];
  const message = row => row.querySelector('[data-message]').dataset.message;
  return {
    state: document.querySelector('#campaign-progress .badge')?.dataset.state,
    done: Number(text('.done-count')), total: Number(text('.total-count')),
    bar: Number(document.querySelector('#campaign-bar')?.value),
    sent: Number(text('#campaign-progress .sent-count')),
    table_total: Number(text('#campaign-results [data-figure=total]')),
    table_sent: Number(text('#campaign-results [data-figure=sent]')),
    rows: rows.length,
    rows_reached: rows.filter(row => reached.includes(message(row))).length,
    placeholder: !!document.querySelector('#campaign-results .recipient-table td.muted'),
  };
}"""


def test_it_tells_one_story_while_the_campaign_runs(browser, production_topology):
    topology = production_topology
    make_user("carla", "marketer", first_name="Carla")
    Customer.objects.bulk_create(
        Customer(name=f"Cliente {i}", phone=f"+5939913{i:05d}") for i in range(CUSTOMERS)
    )
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="es-EC")
    page = context.new_page()
    page.goto(f"{topology.web1}/accounts/login/")
    page.fill("input[name=username]", "carla")
    page.fill("input[name=password]", "pass-carla")
    page.click("button[type=submit]")
    page.wait_for_url(f"{topology.web1}/")

    page.goto(f"{topology.web1}/campaigns/new/")
    page.fill("input[name=title]", "Promoción Disney+ 50% OFF")
    page.fill("textarea[name=body]", "🎬 ¡Oferta especial, {nombre}!")
    expect(page.locator("#audience-live")).to_contain_text(f"{CUSTOMERS} clientes")
    page.get_by_label("Inmediato").check()
    page.fill("input[name=window_start]", "00:00")
    page.fill("input[name=window_end]", "23:59")
    page.get_by_role("button", name="Crear campaña").click()
    expect(page.locator("#campaign-progress .badge")).to_be_visible()

    snapshots = []

    def completed() -> bool:
        snapshots.append(page.evaluate(SNAPSHOT, list(REACHED)))
        return snapshots[-1]["state"] == "completed"

    wait_until(
        completed,
        timeout=120,
        every=0.25,
        what="the page showing the campaign completed",
        check=topology.check_alive,
        detail=lambda: snapshots[-1],
    )
    running = [s for s in snapshots if s["state"] == "running" and 0 < s["done"] < s["total"]]
    assert running, "never saw the campaign half-way"
    for snap in snapshots:
        if not snap["total"]:
            assert snap["table_total"] == 0 and snap["placeholder"], snap
            continue
        assert snap["table_total"] == snap["total"] == snap["rows"], snap
        assert snap["table_sent"] == snap["sent"] == snap["rows_reached"], snap
        assert snap["bar"] == snap["done"] and not snap["placeholder"], snap
    final = snapshots[-1]
    assert final["sent"] == final["total"] == CUSTOMERS
    counted = topology.sim_stats()["sends_by_recipient"]
    assert sum(counted.get(f"+5939913{i:05d}", 0) for i in range(CUSTOMERS)) == CUSTOMERS
    context.close()
