"""Segment filters against a small hand-built customer book with exact expected audiences."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from customers.models import Customer, Segment, Service, Subscription, Tag
from inbox.models import Conversation, Message
from outbound.segments import (
    SegmentFilterError,
    segment_count,
    segment_create,
    segment_delete,
    segment_filters_clean,
    segment_presets,
    segment_queryset,
)


def names(filters, *, marketing=False) -> list[str]:
    return sorted(segment_queryset(filters, marketing=marketing).values_list("name", flat=True))


def say(customer, direction, *, ago, status=None):
    conversation, _ = Conversation.objects.get_or_create(customer=customer)
    Message.objects.create(
        conversation=conversation,
        direction=direction,
        author_kind="customer" if direction == "in" else "campaign",
        status=status or ("received" if direction == "in" else "read"),
        body="…",
        created_at=timezone.now() - ago,
    )


@pytest.fixture
def book(db):
    """ana   Netflix (vence en 3 días), Guayaquil/Guayas, VIP; answers fast
    beto  Netflix + HBO Max activos, Quito/Pichincha; answers slow (one fast, one slow)
    caro  HBO Max vencido, guayaquil; received a campaign, never answered
    dani  sin suscripciones; wrote to us 2 days ago, nothing from us
    eva   Netflix vencido + Disney+ activo; dada de baja
    fede  Netflix nuevo (hace 5 días); our only recent message failed"""
    today = timezone.localdate()
    netflix = Service.objects.create(name="Netflix", normal_price=Decimal("7.99"))
    hbo = Service.objects.create(name="HBO Max", normal_price=Decimal("6.50"))
    disney = Service.objects.create(name="Disney+", normal_price=Decimal("8.99"))
    vip = Tag.objects.create(name="VIP")
    people = {}
    for name, city, province in [
        ("ana", "Guayaquil", "Guayas"),
        ("beto", "Quito", "Pichincha"),
        ("caro", "guayaquil", ""),
        ("dani", "Cuenca", "Azuay"),
        ("eva", "Quito", "Pichincha"),
        ("fede", "", ""),
    ]:
        people[name] = Customer.objects.create(
            name=name, phone=f"+59399000{len(people):04d}", city=city, province=province
        )
    people["ana"].tags.add(vip)
    people["eva"].marketing_opt_out_at = timezone.now()
    people["eva"].save()

    def sub(who, service, *, started, expires):
        Subscription.objects.create(
            customer=people[who],
            service=service,
            price=service.normal_price,
            started_on=today + timedelta(days=started),
            expires_on=today + timedelta(days=expires),
        )

    sub("ana", netflix, started=-27, expires=3)
    sub("beto", netflix, started=-60, expires=20)
    sub("beto", hbo, started=-60, expires=20)
    sub("caro", hbo, started=-70, expires=-10)
    sub("eva", netflix, started=-90, expires=-5)
    sub("eva", disney, started=-40, expires=40)
    sub("fede", netflix, started=-5, expires=25)

    hours = lambda n: timedelta(hours=n)  # noqa: E731
    days = lambda n: timedelta(days=n)  # noqa: E731
    # ana: three replies, 10 min, 20 min (after two messages of ours in a row) and 3 h.
    say(people["ana"], "out", ago=days(20))
    say(people["ana"], "in", ago=days(20) - hours(1) / 6)
    say(people["ana"], "out", ago=days(15) + hours(5))
    say(people["ana"], "out", ago=days(15))
    say(people["ana"], "in", ago=days(15) - hours(1) / 3)
    say(people["ana"], "out", ago=days(10))
    say(people["ana"], "in", ago=days(10) - hours(3))
    # beto: a fast reply long ago (outside the 90 days), then one fast and one slow.
    say(people["beto"], "out", ago=days(120))
    say(people["beto"], "in", ago=days(120) - hours(0.1))
    say(people["beto"], "out", ago=days(30))
    say(people["beto"], "in", ago=days(30) - hours(0.5))
    say(people["beto"], "out", ago=days(2) + hours(5))
    say(people["beto"], "in", ago=days(2))
    say(people["caro"], "out", ago=days(10), status="delivered")
    say(people["dani"], "in", ago=days(2))
    say(people["fede"], "out", ago=days(100), status="delivered")
    say(people["fede"], "out", ago=days(3), status="failed")
    return {"netflix": netflix, "hbo": hbo, "disney": disney, "vip": vip, **people}


def test_it_selects_by_subscription_state(book):
    assert names({"state": "active"}) == ["ana", "beto", "eva", "fede"]
    assert names({"state": "expired"}) == ["caro"]
    assert names({"state": "new", "new_days": 7}) == ["fede"]
    assert names({"state": "new", "new_days": 30}) == ["ana", "fede"]


def test_it_selects_by_service_with_any_all_and_only(book):
    netflix, hbo = book["netflix"].pk, book["hbo"].pk
    assert names({"services": [netflix]}) == ["ana", "beto", "eva", "fede"]
    assert names({"services": [netflix, hbo], "service_mode": "any"}) == [
        "ana",
        "beto",
        "caro",
        "eva",
        "fede",
    ]
    assert names({"services": [netflix, hbo], "service_mode": "all"}) == ["beto"]
    assert names({"services": [netflix], "service_mode": "only"}) == ["ana", "fede"]
    assert names({"services": [hbo], "service_mode": "only"}) == ["caro"]
    assert names({"services": [netflix, hbo], "service_mode": "only"}) == [
        "ana",
        "beto",
        "caro",
        "fede",
    ]


def test_it_reads_service_modes_among_active_subscriptions_for_active_customers(book):
    disney = book["disney"].pk
    # eva's Netflix expired: among active subscriptions she has only Disney+.
    assert names({"services": [disney], "service_mode": "only"}) == []
    assert names({"state": "active", "services": [disney], "service_mode": "only"}) == ["eva"]


def test_it_selects_by_expiry_within_n_days(book):
    assert names({"expiring_days": 5}) == ["ana"]
    assert names({"expiring_days": 25}) == ["ana", "beto", "fede"]
    assert names({"expiring_days": 25, "services": [book["hbo"].pk]}) == ["beto"]
    assert names({"expiring_days": 0}) == []


def test_it_selects_by_reply_behaviour(book):
    assert names({"behaviour": "fast"}) == ["ana"]
    assert names({"behaviour": "slow"}) == ["beto"]
    assert names({"behaviour": "never"}) == ["caro"]


def test_it_selects_by_city_province_and_tag(book):
    assert names({"cities": ["GUAYAQUIL"]}) == ["ana", "caro"]
    assert names({"cities": ["Cuenca", "Quito"]}) == ["beto", "dani", "eva"]
    assert names({"provinces": ["Pichincha"]}) == ["beto", "eva"]
    assert names({"tags": [book["vip"].pk]}) == ["ana"]


def test_it_selects_by_last_contact(book):
    assert names({"contact": "within", "contact_days": 7}) == ["beto", "dani", "fede"]
    assert names({"contact": "older", "contact_days": 7}) == ["ana", "caro", "eva"]


def test_it_combines_filters_with_and(book):
    filters = {"state": "active", "cities": ["quito"], "services": [book["netflix"].pk]}
    assert names(filters) == ["beto"]
    assert names({"state": "active", "behaviour": "fast", "tags": [book["vip"].pk]}) == ["ana"]


def test_it_leaves_opted_out_customers_out_of_marketing_and_counts_them(book):
    assert names({"state": "active"}, marketing=True) == ["ana", "beto", "fede"]
    assert segment_count({"state": "active"}) == (3, 1)
    assert segment_count({"state": "active"}, marketing=False) == (4, 0)
    assert segment_count({}) == (5, 1)


def test_it_counts_any_combination_in_one_query(book, django_assert_max_num_queries):
    every_filter = {
        "services": [book["netflix"].pk, book["hbo"].pk],
        "service_mode": "all",
        "state": "active",
        "expiring_days": 30,
        "behaviour": "slow",
        "cities": ["Quito"],
        "provinces": ["Pichincha"],
        "tags": [],
        "contact": "within",
        "contact_days": 7,
    }
    with django_assert_max_num_queries(1):
        assert segment_count(every_filter) == (1, 0)
    for behaviour in ("fast", "never"):
        with django_assert_max_num_queries(1):
            segment_count({"behaviour": behaviour, "state": "new", "new_days": 10})


def test_it_rejects_bad_filters_with_messages(db):
    with pytest.raises(SegmentFilterError) as error:
        segment_filters_clean(
            {
                "state": "zombie",
                "expiring_days": "abc",
                "services": ["x"],
                "colour": "red",
                "contact": "within",
            }
        )
    assert set(error.value.errors) == {
        "state",
        "expiring_days",
        "services",
        "colour",
        "contact_days",
    }
    with pytest.raises(SegmentFilterError):
        segment_count({"new_days": 5, "state": "new", "expiring_days": 1000})
    with pytest.raises(SegmentFilterError):
        segment_filters_clean(["state"])


def test_it_normalises_filters_before_saving(db, carla):
    segment = segment_create(
        name="Netflix",
        filters={"services": ["3", 3], "state": "", "cities": [" Quito "]},
        created_by=carla,
    )
    segment.refresh_from_db()
    assert segment.filters == {"services": [3], "service_mode": "any", "cities": ["Quito"]}
    assert Segment.objects.get().created_by == carla


def test_it_deletes_a_segment_and_campaigns_keep_its_filters(db, carla):
    from outbound.campaigns import campaign_create

    segment = segment_create(name="Quito", filters={"cities": ["Quito"]}, created_by=carla)
    campaign = campaign_create(title="Promo", body="Hola", segment=segment)
    segment_delete(segment=segment)
    assert not Segment.objects.exists()
    campaign.refresh_from_db()
    assert campaign.segment is None and campaign.filters == {"cities": ["Quito"]}


def test_it_offers_the_proposals_presets(book):
    presets = segment_presets()
    assert [str(name) for name, _ in presets.values()] == [
        "Clientes activos",
        "Clientes inactivos",
        "Solo Netflix",
        "Solo HBO Max",
    ]
    assert names(presets["netflix"][1]) == ["ana", "fede"]
    assert names(presets["inactive"][1]) == ["caro"]
