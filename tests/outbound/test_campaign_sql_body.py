"""The launch's SQL path (outbound/campaigns/sqlbody.py) writes, row by row, what the Python
path writes: the same text, state and skip reason for every customer, over names with odd
whitespace, customers without subscriptions, ties, expired ones, campaign values and their
absence, a service filter and a text too long."""

import sys
from datetime import datetime, time, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from customers.models import Customer, Service, Subscription
from outbound.campaigns import campaign_create, campaign_launch, launch, sqlbody
from outbound.models import Campaign, CampaignRecipient
from outbound.templating import template_validate

# PostgreSQL's alone (tests/conftest.py: skipped on SQLite, failed in CI).
pytestmark = pytest.mark.usefixtures("postgres")

NOW = timezone.make_aware(datetime(2026, 12, 5, 15, 30))
TODAY = timezone.localdate(NOW)

NAMES = [
    "María José",
    "  Ana\tLuz",
    "\u3000Pedro\u00a0Mora",
    "",
    " \n\u2003 ",
    "{nombre} Bravo",
    "Zoë",
    "Luis\u200bQuinde Paz",
    "José\x1fCarlos",
    "Ñandú 'O''Brien' %s",
]


@pytest.fixture
def audience(db):
    netflix = Service.objects.create(name="Netflix", normal_price=Decimal("7.99"))
    disney = Service.objects.create(name="Disney+", normal_price=Decimal("4.45"))
    hbo = Service.objects.create(name="HBO Max", normal_price=Decimal("4.50"))
    # (service, price, days from today) per customer; the same list is cycled over the names.
    plans = [
        [],
        [(netflix, "5.00", 10)],
        [(netflix, "5.00", 10), (disney, "3.10", 10)],  # a tie: the first by id
        [(disney, "3.10", 10), (netflix, "5.00", 10)],
        [(hbo, "4.50", -3)],
        [(hbo, "4.50", -40), (disney, "4.00", -2)],
        [(netflix, "6.25", -1), (disney, "2.99", 0)],
        [(disney, "2.50", 400)],  # next year: the year is spelt
        [(netflix, "7.99", 30), (hbo, "1.05", 3)],
    ]
    customers = Customer.objects.bulk_create(
        Customer(name=name, phone=f"+59398{n:07d}") for n, name in enumerate(NAMES * len(plans))
    )
    subs = []
    for n, customer in enumerate(customers):
        for service, price, days in plans[n % len(plans)]:
            subs.append(
                Subscription(
                    customer=customer,
                    service=service,
                    price=Decimal(price),
                    started_on=TODAY - timedelta(days=500),
                    expires_on=TODAY + timedelta(days=days),
                )
            )
    Subscription.objects.bulk_create(subs)
    return {"netflix": netflix, "disney": disney, "hbo": hbo}


EVERYTHING = (
    "Hola {nombre}, tu {servicio} ({precio}, normal {precio_normal}) vence el "
    "{fecha_vencimiento}; quedan {dias_restantes} días. Hasta {fecha_limite}: "
    "{precio_descuento} {{ok}} {nombre}"
)
CASES = [
    ("Hola {nombre} 👋 tu {servicio} tiene una oferta.", {}, False),
    (EVERYTHING, {"descuento": "12.5"}, False),
    (EVERYTHING, {"descuento": "12.5"}, True),
    (EVERYTHING, {}, False),
    (EVERYTHING, {"descuento": "abc"}, False),
    (EVERYTHING, {"descuento": "50", "precio": "9.99", "fecha_limite": "1 de enero"}, False),
    ("{dias_restantes} {nombre}", {}, False),
    ("{dias_restantes} {nombre}", {}, True),
    ("{precio} {tema} {nombre}", {}, False),
    ("{tema}: {nombre} {caracteristicas}", {"tema": " Soporte ", "caracteristicas": "4K"}, False),
    ("Hola {nombre} " + "x" * 4080, {}, False),
    ("Sin variables {{ni}} llaves }}", {}, False),
    ("Hola {", {}, False),  # does not compile: the Python path writes the reason
]


def _launch(body: str, extra: dict, filters: dict, *, sql: bool, monkeypatch) -> dict:
    campaign = campaign_create(
        title="Equivalencia",
        body="Hola {nombre}",
        filters=filters,
        kind=Campaign.Kind.NOTIFICATION,
        window_start=time(0, 0),
        window_end=time(23, 59, 59),
    )
    # The body is written as is: the form's checks (unfilled values) are not what is tested.
    Campaign.objects.filter(pk=campaign.pk).update(body=body, extra=extra)
    monkeypatch.setattr(launch, "SQL_BODY", sql)
    if sql and not template_validate(body):
        # The SQL path reads no customer into Python.
        monkeypatch.setattr(launch, "_audience_chunks", None)
    assert campaign_launch(campaign_id=campaign.pk, now=NOW)
    monkeypatch.undo()
    rows = CampaignRecipient.objects.filter(campaign=campaign).values_list(
        "customer_id", "variant_id", "state", "skip_reason", "body", "planned_at", "channel"
    )
    campaign.refresh_from_db()
    assert campaign.recipients_total == len(rows)
    return {row[0]: row[1:] for row in rows}


@pytest.mark.parametrize(("body", "extra", "filtered"), CASES)
def test_the_sql_path_writes_what_the_python_path_writes(
    audience, monkeypatch, body, extra, filtered
):
    filters = {"services": [audience["hbo"].pk]} if filtered else {}
    in_sql = _launch(body, extra, filters, sql=True, monkeypatch=monkeypatch)
    in_python = _launch(body, extra, filters, sql=False, monkeypatch=monkeypatch)
    assert in_sql == in_python
    assert in_sql  # every case has an audience


def test_the_cases_cover_every_outcome(audience, monkeypatch):
    """The comparison above means something: texts, each kind of skip and a long text."""
    reasons, texts, states = set(), set(), set()
    for body, extra, filtered in CASES:
        filters = {"services": [audience["hbo"].pk]} if filtered else {}
        for _, state, reason, text, *_ in _launch(
            body, extra, filters, sql=True, monkeypatch=monkeypatch
        ).values():
            reasons.add(reason.split(":")[0])
            texts.add(text)
            states.add(state)
    assert {
        "",
        "{nombre}",
        "{servicio}",
        "{precio_descuento}",
        "{dias_restantes}",
        "{tema}",
    } <= reasons
    assert any("supera" in reason for reason in reasons)
    assert states == {"pending", "skipped"}
    assert "Hola María 👋 tu Netflix tiene una oferta." in texts
    assert "Hola {nombre} 👋 tu Disney+ tiene una oferta." in texts


def test_the_whitespace_list_is_pythons():
    everything = map(chr, range(sys.maxunicode + 1))
    assert "".join(c for c in everything if c.isspace()) == sqlbody.WHITESPACE


def test_a_variable_it_cannot_make_leaves_the_python_path(audience, monkeypatch):
    monkeypatch.setattr(sqlbody, "SUBSCRIPTION_VARIABLES", ("servicio",))
    campaign = campaign_create(
        title="Nueva variable",
        body="Hola {nombre}, {dias_restantes} días",
        filters={},
        kind=Campaign.Kind.NOTIFICATION,
    )
    assert (
        sqlbody.recipients_insert_select(
            campaign=campaign,
            customers=Customer.objects.all(),
            service_id=None,
            today=TODAY,
            planned=NOW,
            fresh=True,
        )
        is None
    )
    assert not CampaignRecipient.objects.filter(campaign=campaign).exists()
