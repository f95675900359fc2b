"""A running campaign that sends nothing says why and until when (issue 15, requirement 4):
outside its sending window, each customer's best hour still to come, or the provider's rate
limit holding every send; on its page, in the list, on the panel and in the API."""

from datetime import datetime, time, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from chatdesk.models import ApiToken
from customers.models import Customer
from outbound import ratelimit
from outbound.campaigns import (
    campaign_create,
    campaign_launch,
    campaign_waiting,
    waiting_label,
)
from outbound.models import Campaign, CampaignRecipient

GYE = timezone.get_current_timezone()
SUNDAY = datetime(2026, 3, 15, 8, 45, tzinfo=GYE)


@pytest.fixture(autouse=True)
def memory_bucket(settings):
    """The rate limiter in this process (no Redis), fresh for each test."""
    settings.REDIS_URL = ""
    ratelimit.bucket_reset()
    yield
    ratelimit.bucket_reset()


@pytest.fixture
def book(db):
    for n in range(3):
        Customer.objects.create(name=f"Cliente {n}", phone=f"+59399000000{n}")


def launched(*, at: datetime, **kwargs) -> Campaign:
    campaign = campaign_create(title="Promo", body="Hola {nombre}", filters={}, **kwargs)
    campaign_launch(campaign_id=campaign.pk, now=at)
    campaign.refresh_from_db()
    return campaign


def closed_window_now() -> dict:
    """A window that the real clock is outside of (views read the real clock)."""
    local = timezone.localtime()
    start = (local + timedelta(hours=2)).replace(minute=0, second=0, microsecond=0)
    if local.hour >= 20 or start.date() != local.date():
        return {"window_start": time(1, 0), "window_end": time(2, 0)}
    return {"window_start": start.time(), "window_end": (start + timedelta(hours=1)).time()}


def test_it_waits_for_the_window_that_opens_at_nine(book):
    campaign = launched(at=SUNDAY)
    waiting = campaign_waiting(campaign=campaign, now=SUNDAY)
    assert waiting.code == "window"
    assert waiting.until == SUNDAY.replace(hour=9, minute=0)
    assert waiting.label == "en espera hasta las 09:00"
    assert waiting.reason == "fuera de la ventana de envío (de 09:00 a 20:00)"


def test_it_names_tomorrow_and_later_days(book):
    evening = SUNDAY.replace(hour=21)
    campaign = launched(at=evening)
    assert campaign_waiting(campaign=campaign, now=evening).label == (
        "en espera hasta mañana a las 09:00"
    )
    far = SUNDAY.replace(hour=9, minute=0) + timedelta(days=3)
    assert waiting_label(far, now=SUNDAY) == "en espera hasta el 18 de marzo a las 09:00"


def test_it_waits_for_each_customers_best_hour(book):
    noon = SUNDAY.replace(hour=12, minute=10)
    campaign = launched(at=noon, best_hour=True)
    CampaignRecipient.objects.filter(campaign=campaign).update(
        planned_at=SUNDAY.replace(hour=16, minute=0)
    )
    waiting = campaign_waiting(campaign=campaign, now=noon)
    assert (waiting.code, waiting.label) == ("best_hour", "en espera hasta las 16:00")
    assert waiting.reason == "cada cliente lo recibe a su mejor hora"


def test_it_waits_while_the_provider_holds_every_send(book):
    noon = SUNDAY.replace(hour=12, minute=10)
    campaign = launched(at=noon)
    assert campaign_waiting(campaign=campaign, now=noon) is None  # it is sending
    ratelimit.bucket().hold("default", 90)
    waiting = campaign_waiting(campaign=campaign, now=noon)
    assert waiting.code == "rate_limit"
    assert waiting.until == noon + timedelta(seconds=90)
    assert "límite de envíos" in waiting.reason


def test_it_says_nothing_for_campaigns_not_running(book):
    draft = campaign_create(title="Borrador", body="Hola", filters={})
    assert campaign_waiting(campaign=draft, now=SUNDAY) is None


def test_it_shows_the_wait_on_the_page_the_list_the_panel_and_the_api(book, client_for, carla):
    campaign = launched(at=timezone.now(), **closed_window_now())
    waiting = campaign_waiting(campaign=campaign)
    assert waiting and waiting.code == "window"
    client = client_for(carla)
    label = f"⏳ {waiting.label}"
    page = client.get(reverse("outbound:campaign_detail", args=[campaign.pk])).content.decode()
    assert label in page and waiting.reason[1:] in page
    progress = client.get(reverse("outbound:campaign_progress", args=[campaign.pk]))
    assert label in progress.content.decode()
    assert label in client.get(reverse("outbound:campaign_list")).content.decode()
    assert label in client.get("/").content.decode()
    token = ApiToken.issue(user=carla, name="prueba")[1]
    answer = client.get(
        f"/api/v1/campaigns/{campaign.pk}", headers={"Authorization": f"Bearer {token}"}
    ).json()
    assert answer["state"] == "running"
    assert answer["waiting_reason"]["code"] == "window"
    assert answer["waiting_reason"]["text"] == waiting.text
    assert datetime.fromisoformat(answer["waiting_reason"]["until"]) == waiting.until
