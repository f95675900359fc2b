"""/segments/: list with live counts, the builder's live count partial, save, edit, delete."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from customers.models import Customer, Segment, Service, Subscription


@pytest.fixture
def book(db):
    """Three active Netflix customers (one opted out), one with HBO Max only, expired."""
    today = timezone.localdate()
    netflix = Service.objects.create(name="Netflix", normal_price=Decimal("7.99"))
    hbo = Service.objects.create(name="HBO Max", normal_price=Decimal("6.50"))
    rows = [
        ("Ana", netflix, 10, None),
        ("Beto", netflix, 5, None),
        ("Ciro", netflix, 30, timezone.now()),
        ("Dora", hbo, -3, None),
    ]
    for index, (name, service, expires, opted_out) in enumerate(rows):
        customer = Customer.objects.create(
            name=name, phone=f"+5939900001{index:02d}", city="Quito", marketing_opt_out_at=opted_out
        )
        Subscription.objects.create(
            customer=customer,
            service=service,
            price=service.normal_price,
            started_on=today - timedelta(days=40),
            expires_on=today + timedelta(days=expires),
        )
    return {"netflix": netflix, "hbo": hbo}


def live(client, **data):
    response = client.post(
        reverse("outbound:segment_preview"), data, headers={"HX-Request": "true"}
    )
    assert response.status_code == 200
    return response.content.decode()


def test_it_counts_live_as_filters_change(client_for, carla, book):
    client = client_for(carla)
    html = live(client, name="Clientes activos", state="active", service_mode="any")
    assert html.lstrip().startswith('<div id="segment-live"')
    assert "Clientes activos (" in html and ">2</span>)" in html
    assert "1 excluido por baja" in html
    assert "Ana" in html and "Beto" in html and "Ciro" not in html
    html = live(client, state="active", expiring_days="7", service_mode="any")
    assert ">1</span>)" in html and "Beto" in html and "Ana" not in html


def test_it_shows_bad_filter_values_as_errors_not_500(client_for, carla, book):
    client = client_for(carla)
    html = live(client, expiring_days="mucho", state="zombie", service_mode="any")
    assert "errorlist" in html
    response = client.post(
        reverse("outbound:segment_create"),
        {"name": "Malo", "contact": "within", "service_mode": "any"},
    )
    assert response.status_code == 200
    assert "Indique el número de días." in response.content.decode()
    assert not Segment.objects.exists()


def test_it_saves_a_segment(client_for, carla, book):
    response = client_for(carla).post(
        reverse("outbound:segment_create"),
        {"name": "Solo Netflix", "services": [book["netflix"].pk], "service_mode": "only"},
    )
    assert response.status_code == 302
    segment = Segment.objects.get()
    assert segment.filters == {"services": [book["netflix"].pk], "service_mode": "only"}
    assert segment.created_by == carla


def test_it_requires_a_unique_name_to_save(client_for, carla, book):
    Segment.objects.create(name="Activos", filters={"state": "active"})
    client = client_for(carla)
    missing = client.post(reverse("outbound:segment_create"), {"state": "active"})
    taken = client.post(reverse("outbound:segment_create"), {"name": "activos"})
    assert missing.status_code == taken.status_code == 200
    assert "Ya existe un segmento con ese nombre." in taken.content.decode()
    assert Segment.objects.count() == 1


def test_it_lists_saved_segments_and_presets_with_counts(client_for, alice, book):
    Segment.objects.create(name="Vencidos", filters={"state": "expired"})
    Segment.objects.create(name="Roto", filters={"state": "zombie"})
    page = client_for(alice).get(reverse("outbound:segment_list")).content.decode()
    assert "Clientes activos (2)" in page
    assert "Clientes inactivos (1)" in page
    assert "Solo Netflix (2)" in page and "Solo HBO Max (1)" in page
    assert "Vencidos" in page and "filtros no válidos" in page


def test_it_counts_saved_segments_twenty_to_a_page(client_for, carla, book):
    Segment.objects.bulk_create(
        Segment(name=f"Ciudad {i:02d}", filters={"cities": ["Quito"]}) for i in range(25)
    )
    client = client_for(carla)
    first = client.get(reverse("outbound:segment_list")).content.decode()
    assert first.count('class="segment-count"') == 20
    assert "Ciudad 19" in first and "Ciudad 20" not in first
    second = client.get(reverse("outbound:segment_list"), {"page": 2}).content.decode()
    assert second.count('class="segment-count"') == 5 and "Ciudad 24" in second
    assert "?page=1" in second


def test_it_opens_a_preset_in_the_builder(client_for, carla, book):
    page = client_for(carla).get(reverse("outbound:segment_create"), {"preset": "netflix"})
    content = page.content.decode()
    assert 'value="Solo Netflix"' in content
    assert "Solo Netflix (<span" in content and ">2</span>)" in content


def test_it_edits_and_deletes_a_segment(client_for, carla, book):
    segment = Segment.objects.create(name="Activos", filters={"state": "active"})
    client = client_for(carla)
    page = client.get(reverse("outbound:segment_edit", args=[segment.pk])).content.decode()
    assert ">2</span>)" in page
    response = client.post(
        reverse("outbound:segment_edit", args=[segment.pk]),
        {"name": "Inactivos", "state": "expired", "service_mode": "any"},
    )
    assert response.status_code == 302
    segment.refresh_from_db()
    assert (segment.name, segment.filters) == ("Inactivos", {"state": "expired"})
    client.post(reverse("outbound:segment_delete", args=[segment.pk]))
    assert not Segment.objects.exists()


@pytest.mark.parametrize(
    "name,method",
    [
        ("outbound:segment_list", "get"),
        ("outbound:segment_create", "get"),
        ("outbound:segment_preview", "post"),
        ("outbound:segment_edit", "get"),
        ("outbound:segment_delete", "post"),
    ],
)
def test_it_lets_only_admins_and_marketers_use_segments(
    client_for, bob, charlie, book, name, method
):
    segment = Segment.objects.create(name="Activos", filters={"state": "active"})
    args = [segment.pk] if name in ("outbound:segment_edit", "outbound:segment_delete") else []
    for user in (bob, charlie):
        assert getattr(client_for(user), method)(reverse(name, args=args)).status_code == 403
    assert Segment.objects.filter(pk=segment.pk).exists()
