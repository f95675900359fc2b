"""/automations/ (admins and marketers) and the renewal form (admins and agents)."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from customers.models import Renewal
from outbound.models import AutomationSettings, AutoReplyRule, MessageTemplate, ReminderRule
from tests.outbound.automations import customer_with, in_memory_layer  # noqa: F401

URL = "/automations/"


def test_it_lets_marketers_and_admins_in_only(client_for, alice, bob, carla, charlie):
    assert client_for(carla).get(URL).status_code == 200
    assert client_for(alice).get(URL).status_code == 200
    assert client_for(bob).get(URL).status_code == 403
    assert client_for(charlie).get(URL).status_code == 403


def test_it_lists_the_default_rules_and_settings(client_for, carla):
    page = client_for(carla).get(URL).content.decode()
    assert "3 días antes" in page
    assert "1 día después" in page
    assert "Recordatorio de pago (1 día después)" in page
    assert "Urgente" in page and "interesado" in page
    assert "BAJA, STOP, NO MÁS, DESUSCRIBIR" in page
    assert "Lunes: 09:00–19:00" in page
    assert "Domingo: cerrado" in page


def test_it_creates_a_reminder_rule(client_for, carla):
    template = MessageTemplate.objects.get(name="Vencimiento")
    response = client_for(carla).post(
        "/automations/reminders/new/",
        {
            "name": "7 días antes",
            "kind": "expiry",
            "days_from_expiry": "-7",
            "template": template.pk,
            "window_start": "10:00",
            "window_end": "18:00",
            "include_opted_out": "on",
            "active": "on",
        },
    )
    assert response.status_code == 302
    rule = ReminderRule.objects.get(name="7 días antes")
    assert (rule.days_from_expiry, rule.window_start.hour, rule.window_end.hour) == (-7, 10, 18)


def test_it_refuses_a_window_that_ends_before_it_starts(client_for, carla):
    template = MessageTemplate.objects.get(name="Vencimiento")
    response = client_for(carla).post(
        "/automations/reminders/new/",
        {
            "name": "Mal",
            "kind": "expiry",
            "days_from_expiry": "-7",
            "template": template.pk,
            "window_start": "20:00",
            "window_end": "08:00",
        },
    )
    assert response.status_code == 200
    assert "La hora final debe ser posterior" in response.content.decode()
    assert not ReminderRule.objects.filter(name="Mal").exists()


def test_it_creates_an_auto_reply_rule_and_escapes_what_it_shows(client_for, carla):
    response = client_for(carla).post(
        "/automations/replies/new/",
        {
            "name": "<b>Precios</b>",
            "keywords": "precio",
            "match": "contains",
            "tag": "precio",
            "priority": "50",
            "active": "on",
        },
    )
    assert response.status_code == 302
    assert AutoReplyRule.objects.filter(name="<b>Precios</b>", tag="precio").exists()
    page = client_for(carla).get(URL).content.decode()
    assert "&lt;b&gt;Precios&lt;/b&gt;" in page
    assert "<b>Precios</b>" not in page


def test_it_refuses_a_rule_that_does_nothing(client_for, carla):
    response = client_for(carla).post(
        "/automations/replies/new/",
        {"name": "Nada", "keywords": "hola", "match": "exact", "priority": "50"},
    )
    assert response.status_code == 200
    assert "La regla debe hacer algo" in response.content.decode()


def test_it_pauses_a_rule_with_htmx(client_for, carla):
    rule = ReminderRule.objects.get(name="El día del vencimiento")
    response = client_for(carla).post(
        f"/automations/reminder/{rule.pk}/toggle/", {"active": "0"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    assert "pausada" in response.content.decode()
    assert "<html" not in response.content.decode()
    rule.refresh_from_db()
    assert rule.active is False


def test_it_saves_opt_out_keywords_and_business_hours(client_for, carla):
    conf = AutomationSettings.objects.get(pk=1)
    data = {
        "opt_out_keywords": "BAJA, STOP, CANCELAR",
        "opt_out_reply": "Hecho.",
        "opt_in_keywords": "ALTA",
        "opt_in_reply": "Bienvenido.",
        "away_enabled": "on",
        "away_message": "Volvemos pronto.",
        "away_every_hours": "6",
        "open_0": "on",
        "from_0": "08:00",
        "to_0": "17:00",
        "open_6": "on",
        "from_6": "10:00",
        "to_6": "12:00",
    }
    response = client_for(carla).post("/automations/settings/", data)
    assert response.status_code == 302
    conf.refresh_from_db()
    assert conf.opt_out_keywords == "BAJA, STOP, CANCELAR"
    assert conf.business_hours == {"0": ["08:00", "17:00"], "6": ["10:00", "12:00"]}
    assert conf.away_every_hours == 6


def test_it_refuses_the_same_word_for_opt_out_and_opt_in(client_for, carla):
    response = client_for(carla).post(
        "/automations/settings/",
        {
            "opt_out_keywords": "BAJA, alta",
            "opt_out_reply": "x",
            "opt_in_keywords": "ALTA",
            "opt_in_reply": "y",
            "away_message": "z",
            "away_every_hours": "12",
        },
    )
    assert response.status_code == 200
    assert "no pueden servir para la baja y el alta" in response.content.decode()


# --- renewal form ---------------------------------------------------------------------------
@pytest.fixture
def netflix(db):
    return customer_with("+593990000001", expires_on=timezone.localdate() + timedelta(days=3))


def test_the_customer_page_links_the_renewal_form_for_agents(client_for, bob, carla, netflix):
    link = f"/renewals/new/{netflix.customer_id}/"
    assert link in client_for(bob).get(f"/customers/{netflix.customer_id}/").content.decode()
    assert link not in client_for(carla).get(f"/customers/{netflix.customer_id}/").content.decode()
    assert client_for(carla).get(link).status_code == 403


def test_an_agent_records_a_renewal_from_the_customer_page(client_for, bob, netflix):
    response = client_for(bob).post(
        f"/renewals/new/{netflix.customer_id}/",
        {"subscription": netflix.pk, "how": "months", "months": "2", "amount": "15.98"},
    )
    assert response.status_code == 302
    renewal = Renewal.objects.get()
    assert renewal.amount == Decimal("15.98")
    assert renewal.previous_expiry == netflix.expires_on
    page = client_for(bob).get(response.url).content.decode()
    assert "Renovación registrada" in page


def test_it_shows_a_bad_date_on_the_form(client_for, bob, netflix):
    response = client_for(bob).post(
        f"/renewals/new/{netflix.customer_id}/",
        {"subscription": netflix.pk, "how": "date", "new_expiry": "2001-01-01", "amount": "1"},
    )
    assert response.status_code == 200
    assert "La nueva fecha debe ser posterior" in response.content.decode()
    assert not Renewal.objects.exists()
