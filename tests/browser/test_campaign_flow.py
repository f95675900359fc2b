"""A marketer schedules a campaign, watches its progress bar move, pauses and resumes it.

The browser's chatdesk (daphne, stub broker) has no worker: the test plays the worker and
the scheduler by calling their services (the tick, the fan-out step, and the send pipeline's
`deliver` against a scripted WaSender HTTP seam), and the page only sees what they commit.
"""

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import httpx
from django.db import connection
from django.utils import timezone
from playwright.sync_api import expect

from customers.models import Customer
from inbox.models import Message
from outbound.campaigns import campaign_fanout_step, campaign_launch_task, campaign_tick
from outbound.models import Campaign
from outbound.pipeline import deliver
from tests.conftest import make_user
from tests.outbound.helpers import NoWait, Script, client_for


def as_worker(fn, *args):
    """Run as a worker thread would: off Playwright's event loop, on its own connection."""

    def run():
        try:
            return fn(*args)
        finally:
            connection.close()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(run).result()


def send_queued(client) -> None:
    """The send pipeline, for the campaign messages written so far."""
    for message_id in Message.objects.filter(status="queued").values_list("pk", flat=True):
        deliver(message_id, client=client, bucket=NoWait())


def fanout(campaign: Campaign):
    campaign.refresh_from_db()
    return campaign_fanout_step(campaign_id=campaign.pk, token=campaign.fanout_token)


def test_it_lets_a_marketer_schedule_watch_pause_and_resume(page_for, live_server_url, settings):
    settings.SEND_RATE_PER_MINUTE = 120  # four fanned out per step: the bar moves in steps
    make_user("carla", "marketer", first_name="Carla")
    Customer.objects.bulk_create(
        Customer(name=f"Cliente {i}", phone=f"+5939911{i:05d}") for i in range(12)
    )
    provider = client_for(Script(httpx.Response(200, json={"success": True, "data": {"msgId": 7}})))
    page = page_for("carla", "pass-carla", width=390, height=844)  # a phone

    page.goto(f"{live_server_url}/campaigns/")
    page.get_by_role("button", name="Nueva campaña").click()
    page.fill("input[name=title]", "Promoción Disney+ 50% OFF")
    page.fill("textarea[name=body]", "🎬 ¡Oferta especial, {nombre}!")
    expect(page.locator("#audience-live")).to_contain_text("12 clientes")
    page.get_by_label("Fecha y hora").check()
    at = timezone.localtime() + timedelta(minutes=1)
    page.fill("input[name=send_at]", at.strftime("%Y-%m-%dT%H:%M"))
    page.fill("input[name=window_start]", "00:00")
    page.fill("input[name=window_end]", "23:59")
    page.get_by_role("button", name="Crear campaña").click()
    expect(page.locator("#campaign-progress .badge")).to_contain_text("Programada")

    campaign = Campaign.objects.get()
    assert campaign.state == "scheduled"
    # A minute passes (moved, not waited for); the scheduler's tick enqueues the launch.
    Campaign.objects.filter(pk=campaign.pk).update(scheduled_at=timezone.now())
    assert as_worker(campaign_tick)["enqueued"] == 1
    as_worker(campaign_launch_task, campaign.pk)  # the worker takes the tick's job
    expect(page.locator("#campaign-progress .badge")).to_contain_text("Activa")
    expect(page.locator(".total-count")).to_have_text("12")

    as_worker(fanout, campaign)
    as_worker(send_queued, provider)
    expect(page.locator(".done-count")).to_have_text("4")
    as_worker(fanout, campaign)
    as_worker(send_queued, provider)
    expect(page.locator(".done-count")).to_have_text("8")
    expect(page.locator("#campaign-bar")).to_have_attribute("value", "8")

    page.get_by_role("button", name="Pausar").click()
    expect(page.locator("#campaign-progress .badge")).to_contain_text("Pausada")
    assert as_worker(fanout, campaign) is None  # the worker writes nothing more while paused
    assert Message.objects.count() == 8

    page.get_by_role("button", name="Reanudar").click()
    expect(page.locator("#campaign-progress .badge")).to_contain_text("Activa")
    as_worker(fanout, campaign)
    as_worker(send_queued, provider)
    as_worker(fanout, campaign)
    expect(page.locator("#campaign-progress .badge")).to_contain_text("Completada")
    expect(page.locator(".done-count")).to_have_text("12")
    assert Message.objects.filter(status="sent").count() == 12

    page.goto(f"{live_server_url}/campaigns/")
    expect(page.locator(".campaign-table")).to_contain_text("Completada")


def test_a_marketer_splits_a_campaign_over_two_numbers_and_sees_each_ones_figures(
    page_for, live_server_url
):
    from inbox import channels
    from inbox.models import Channel

    Channel.objects.update_or_create(key="default", defaults={"name": "Ventas"})
    Channel.objects.create(key="sucursal", name="Sucursal", provider="wasender", account="s-2")
    channels.labels_forget()
    make_user("carla", "marketer", first_name="Carla")
    Customer.objects.bulk_create(
        Customer(name=f"Cliente {i}", phone=f"+5939912{i:05d}") for i in range(6)
    )
    provider = client_for(Script(httpx.Response(200, json={"success": True, "data": {"msgId": 8}})))
    page = page_for("carla", "pass-carla", width=390, height=844)  # a phone

    page.goto(f"{live_server_url}/campaigns/new/")
    page.fill("input[name=title]", "Promo en los dos números")
    page.fill("textarea[name=body]", "Hola {nombre}")
    split = page.locator("fieldset.split-channels")
    # The campaign's own number is not offered again; choosing the other one swaps them.
    expect(split.get_by_label("Ventas")).to_be_hidden()
    expect(split.get_by_label("Sucursal")).to_be_visible()
    page.select_option("select[name=channel]", "sucursal")
    expect(split.get_by_label("Sucursal")).to_be_hidden()
    split.get_by_label("Ventas").check()
    page.fill("input[name=window_start]", "00:00")
    page.fill("input[name=window_end]", "23:59")
    page.get_by_role("button", name="Crear campaña").click()
    expect(page.locator(".campaign-channel")).to_have_text(
        "repartida entre los números Sucursal, Ventas"
    )

    campaign = Campaign.objects.get()
    assert (campaign.channel_id, campaign.split_channels) == ("sucursal", ["default"])
    as_worker(campaign_launch_task, campaign.pk)
    as_worker(fanout, campaign)
    as_worker(send_queued, provider)
    rows = page.locator(".number-table tbody tr")
    expect(rows).to_have_count(2)
    for key in ("sucursal", "default"):
        row = page.locator(f'.number-table tr[data-channel="{key}"]')
        expect(row.locator('[data-figure="total"]')).to_have_text("3")
        expect(row.locator('[data-figure="sent"]')).to_have_text("3")
    channels.labels_forget()
