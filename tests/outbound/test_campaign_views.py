"""/campaigns/: list, new (live audience count), detail with progress partial, actions,
retarget, duplicate, CSV export; admins and marketers only."""

from datetime import time, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from customers.models import Customer
from inbox.models import Message
from outbound.campaigns import campaign_create, campaign_fanout_step, campaign_launch
from outbound.models import Campaign


@pytest.fixture
def book(db):
    Customer.objects.create(name="Ana", phone="+593990000001")
    Customer.objects.create(name='=HYPERLINK("x")', phone="+593990000002")
    Customer.objects.create(name="Ciro", phone="+593990000003", marketing_opt_out_at=timezone.now())


def launched(title="Promo", **kwargs) -> Campaign:
    campaign = campaign_create(title=title, body="Hola {nombre}", filters={}, **kwargs)
    campaign_launch(campaign_id=campaign.pk)
    campaign.refresh_from_db()
    return campaign


def test_it_is_for_marketers_and_admins_only(client_for, bob, book):
    client = client_for(bob)
    assert client.get(reverse("outbound:campaign_list")).status_code == 403
    assert client.get(reverse("outbound:campaign_new")).status_code == 403


def test_it_lists_campaigns_with_state_badges(client_for, carla, book):
    launched("Promoción Netflix")
    campaign_create(title="Black Friday", body="Hola", filters={})
    html = client_for(carla).get(reverse("outbound:campaign_list")).content.decode()
    assert "Promoción Netflix" in html and "✅ Activa" in html
    assert "📝 Borrador" in html and "0 / 2" in html


def test_it_creates_a_campaign_scheduled_later(client_for, carla, book):
    day = timezone.localdate() + timedelta(days=30)
    response = client_for(carla).post(
        reverse("outbound:campaign_new"),
        {
            "title": "Navidad",
            "kind": "event",
            "body": "Feliz Navidad {nombre}",
            "audience": "preset:all",
            "when": "later",
            "send_at": f"{day}T10:00",
            "window_start": "09:00",
            "window_end": "20:00",
        },
    )
    campaign = Campaign.objects.get()
    assert response.status_code == 302
    assert campaign.state == "scheduled" and campaign.created_by == carla
    assert timezone.localtime(campaign.scheduled_at).hour == 10


def test_it_refuses_a_send_at_more_than_a_year_ahead(client_for, carla, book):
    response = client_for(carla).post(
        reverse("outbound:campaign_new"),
        {
            "title": "Navidad",
            "kind": "event",
            "body": "Feliz Navidad {nombre}",
            "audience": "preset:all",
            "when": "later",
            "send_at": "9999-12-31T23:59",
            "window_start": "09:00",
            "window_end": "20:00",
        },
    )
    assert response.status_code == 200
    assert response.context["form"].errors["send_at"] == [
        "La fecha de envío no puede estar a más de un año."
    ]
    assert not Campaign.objects.exists()


def test_it_shows_form_errors_for_unfilled_variables(client_for, carla, book):
    response = client_for(carla).post(
        reverse("outbound:campaign_new"),
        {
            "title": "Nuevo",
            "kind": "marketing",
            "body": "Llegó {nuevo_servicio}",
            "audience": "preset:all",
            "when": "draft",
            "window_start": "09:00",
            "window_end": "20:00",
        },
    )
    assert response.status_code == 200
    assert "{nuevo_servicio}" in response.content.decode()
    assert not Campaign.objects.exists()


def test_it_counts_the_audience_live(client_for, carla, book):
    response = client_for(carla).post(
        reverse("outbound:campaign_audience"), {"audience": "preset:all", "kind": "marketing"}
    )
    html = response.content.decode()
    assert html.lstrip().startswith('<p id="audience-live"')
    assert "2 clientes" in html and "1 excluido por baja" in html


def test_it_shows_progress_and_pauses(client_for, carla, book):
    # An open window, so the step sends whatever the time of day the suite runs at.
    campaign = launched(**ALWAYS_OPEN)
    campaign_fanout_step(campaign_id=campaign.pk, token=campaign.fanout_token)
    Message.objects.update(status="read")
    client = client_for(carla)
    html = client.get(reverse("outbound:campaign_progress", args=[campaign.pk])).content.decode()
    assert 'hx-trigger="every 2s"' in html
    assert 'value="2" max="2"' in html and "Leídos <strong>2</strong>" in html
    client.post(reverse("outbound:campaign_action", args=[campaign.pk, "pause"]))
    campaign.refresh_from_db()
    assert campaign.state == "paused"
    html = client.get(reverse("outbound:campaign_detail", args=[campaign.pk])).content.decode()
    assert "Reanudar" in html and "Ana" in html
    response = client.post(reverse("outbound:campaign_action", args=[campaign.pk, "pause"]))
    assert response.status_code == 302  # a message, not an error page


ALWAYS_OPEN = {"window_start": time(0, 0), "window_end": time(23, 59, 59)}


def recipient_queries(queries) -> list[str]:
    return [q["sql"] for q in queries if "outbound_campaignrecipient" in q["sql"]]


def test_it_polls_the_whole_live_part_from_one_count(client_for, carla, book):
    """Polled every 2 s: the progress and the results (swapped out of band) come from one
    grouped count without subqueries; replies and renewals over the whole campaign, which need
    them, are recounted at most every LIVE_RESULTS_SECONDS."""
    campaign = launched(**ALWAYS_OPEN)
    campaign_fanout_step(campaign_id=campaign.pk, token=campaign.fanout_token)
    Message.objects.filter(pk=Message.objects.order_by("pk")[0].pk).update(status="read")
    client = client_for(carla)
    url = reverse("outbound:campaign_progress", args=[campaign.pk])
    client.get(url)
    with CaptureQueriesContext(connection) as queries:
        html = client.get(url).content.decode()
    counts = [q for q in recipient_queries(queries) if "COUNT(" in q.upper()]
    assert counts and not any("EXISTS" in q.upper() for q in counts)
    assert '<span class="done-count">1</span>' in html
    assert '<strong class="sent-count">1</strong>' in html
    assert 'id="campaign-results" hx-swap-oob="true"' in html
    assert '<td data-figure="sent">1</td>' in html and '<td data-figure="total">2</td>' in html


def test_it_lists_campaign_progress_from_stored_totals(client_for, carla, book):
    campaign = launched("Promoción Netflix", **ALWAYS_OPEN)
    campaign_fanout_step(campaign_id=campaign.pk, token=campaign.fanout_token)
    Message.objects.filter(pk=Message.objects.order_by("pk")[0].pk).update(status="sent")
    campaign_fanout_step(campaign_id=campaign.pk, token=campaign.fanout_token)
    launched("Otra")
    campaign_create(title="Borrador", body="Hola", filters={})
    with CaptureQueriesContext(connection) as queries:
        html = client_for(carla).get(reverse("outbound:campaign_list")).content.decode()
    # One count of the open recipients for the whole page, not two per campaign.
    (count,) = recipient_queries(queries)
    assert '"outbound_campaign"' not in count
    assert "1 / 2" in html and "0 / 2" in html


def test_it_exports_csv_with_formulas_neutralised(client_for, carla, book):
    campaign = launched()
    response = client_for(carla).get(reverse("outbound:campaign_export", args=[campaign.pk]))
    body = b"".join(response.streaming_content).decode()
    assert "'=HYPERLINK" in body and "\n=HYPERLINK" not in body
    assert "+593990000001" in body and "'+593990000001" in body


def test_it_duplicates_and_retargets(client_for, carla, book):
    campaign = launched()
    client = client_for(carla)
    client.post(reverse("outbound:campaign_duplicate", args=[campaign.pk]))
    assert Campaign.objects.filter(title="Copia de Promo", state="draft").exists()
    response = client.post(
        reverse("outbound:campaign_retarget", args=[campaign.pk]),
        {"audience": "not_read", "body": "¿Viste la promo?"},
    )
    follow_up = Campaign.objects.get(retarget_of=campaign)
    assert response.url == reverse("outbound:campaign_detail", args=[follow_up.pk])
