from datetime import date
from decimal import Decimal

import pytest
from django.utils import timezone

from customers.importer import (
    CREATE,
    REJECTED,
    UNCHANGED,
    UPDATE,
    ImportFileError,
    customer_import,
    customer_import_bytes,
    import_decode,
)
from customers.models import Customer, Renewal, Subscription, Tag

ACCEPTANCE = """nombre;telefono;ciudad;provincia;etiquetas;servicio;precio;inicio;vence;notas
Ana Pérez;0968196046;Quito;Pichincha;VIP|Quito norte;Netflix;7.99;2025-01-01;2025-02-01;paga puntual
Ana Pérez;+593 96 819 6046;;;;Spotify;4,99;01/01/2025;01/02/2025;
Luis Mora;0987654321;Guayaquil;Guayas;;Disney+;$8.99;2025-01-05;2025-02-05;
Nadie;12345;Loja;Loja;;Netflix;7.99;2025-01-01;2025-02-01;
Ana Paula Pérez;593968196046;Cuenca;Azuay;;Netflix;7.99;2025-01-01;2025-03-01;
Pedro Ruiz;0991234567;Loja;Loja;;Paramount+;9.99;2025-01-01;2025-02-01;
"""


def snapshot():
    """Everything an import may touch, as plain values."""
    return {
        "customers": sorted(
            Customer.objects.values_list(
                "phone", "name", "city", "province", "notes", "marketing_opt_out_at"
            )
        ),
        "subscriptions": sorted(
            Subscription.objects.values_list(
                "customer__phone", "service__name", "price", "started_on", "expires_on"
            )
        ),
        "tags": sorted(Customer.tags.through.objects.values_list("customer__phone", "tag__name")),
        "tag_names": sorted(Tag.objects.values_list("name", flat=True)),
        "renewals": Renewal.objects.count(),
    }


def outcomes(report):
    return {row.line: row.outcome for row in report.rows}


def test_it_imports_good_rows_and_reports_each_bad_row_with_its_line(services):
    bystander = Customer.objects.create(phone="+593999999999", name="Ya Existía", city="Ambato")
    report = customer_import(text=ACCEPTANCE)

    assert outcomes(report) == {
        2: CREATE,
        3: CREATE,
        4: CREATE,
        5: REJECTED,
        6: REJECTED,
        7: REJECTED,
    }
    reasons = {row.line: row.reason for row in report.rejected}
    assert "teléfono inválido" in reasons[5] and "12345" in reasons[5]
    assert "línea 2" in reasons[6]  # the same phone, spelled differently, saying other things
    assert "Paramount+" in reasons[7]
    assert "Disney+, Netflix, Spotify" in reasons[7]  # the known services, to fix the file

    ana = Customer.objects.get(phone="+593968196046")
    assert (ana.name, ana.city, ana.province, ana.notes) == (
        "Ana Pérez",
        "Quito",
        "Pichincha",
        "paga puntual",
    )
    assert sorted(t.name for t in ana.tags.all()) == ["Quito norte", "VIP"]
    subs = {s.service.name: s for s in ana.subscriptions.all()}
    assert set(subs) == {"Netflix", "Spotify"}
    assert subs["Netflix"].expires_on == date(2025, 2, 1)  # not line 6's 2025-03-01
    assert subs["Spotify"].price == Decimal("4.99")
    assert subs["Spotify"].started_on == date(2025, 1, 1)
    luis = Customer.objects.get(phone="+593987654321")
    assert luis.subscriptions.get().price == Decimal("8.99")
    assert not Customer.objects.filter(phone="+593991234567").exists()
    assert Customer.objects.count() == 3
    bystander.refresh_from_db()
    assert (bystander.name, bystander.city) == ("Ya Existía", "Ambato")


def test_it_changes_nothing_when_the_same_file_is_imported_again(services):
    customer_import(text=ACCEPTANCE)
    before = snapshot()

    report = customer_import(text=ACCEPTANCE)

    assert outcomes(report) == {
        2: UNCHANGED,
        3: UNCHANGED,
        4: UNCHANGED,
        5: REJECTED,
        6: REJECTED,
        7: REJECTED,
    }
    assert snapshot() == before


def test_it_writes_nothing_on_a_dry_run_but_predicts_the_outcomes(services):
    before = snapshot()
    report = customer_import(text=ACCEPTANCE, dry_run=True)
    assert snapshot() == before
    assert report.counts == {CREATE: 3, UPDATE: 0, UNCHANGED: 0, REJECTED: 3}
    assert customer_import(text=ACCEPTANCE).counts == report.counts


def test_it_updates_an_existing_customer_and_records_the_renewal(services):
    ana = Customer.objects.create(phone="+593968196046", name="Ana", city="Quito")
    sub = Subscription.objects.create(
        customer=ana,
        service=services["Netflix"],
        price=Decimal("7.99"),
        started_on=date(2025, 1, 1),
        expires_on=date(2025, 2, 1),
    )
    text = (
        "nombre,telefono,servicio,precio,inicio,vence\n"
        "Ana Pérez,0968196046,netflix,7.99,2025-01-01,2025-03-01\n"
    )
    report = customer_import(text=text)

    assert report.rows[0].outcome == UPDATE
    assert any("2025-03-01" in change for change in report.rows[0].changes)
    ana.refresh_from_db()
    sub.refresh_from_db()
    assert ana.name == "Ana Pérez" and ana.city == "Quito"
    assert sub.expires_on == date(2025, 3, 1)
    renewal = Renewal.objects.get()
    assert (renewal.subscription, renewal.previous_expiry, renewal.new_expiry) == (
        sub,
        date(2025, 2, 1),
        date(2025, 3, 1),
    )
    assert customer_import(text=text).rows[0].outcome == UNCHANGED
    assert Renewal.objects.count() == 1


def test_it_never_erases_with_blank_cells_nor_touches_the_opt_out(services):
    opted_out_at = timezone.now()
    ana = Customer.objects.create(
        phone="+593968196046",
        name="Ana",
        city="Quito",
        notes="nota",
        marketing_opt_out_at=opted_out_at,
        marketing_opt_out_reason="BAJA",
    )
    ana.tags.add(Tag.objects.create(name="VIP"))
    report = customer_import(text="nombre;telefono;ciudad;notas;etiquetas\n;0968196046;;;vip\n")

    assert report.rows[0].outcome == UNCHANGED  # "vip" is the tag it already has
    ana.refresh_from_db()
    assert (ana.name, ana.city, ana.notes) == ("Ana", "Quito", "nota")
    assert ana.marketing_opt_out_at == opted_out_at
    assert [t.name for t in ana.tags.all()] == ["VIP"]
    assert Tag.objects.count() == 1


@pytest.mark.parametrize(
    "header",
    [
        "nombre;telefono;servicio;vence",
        "Name;Phone;Service;Expires",
        "NOMBRE;TELÉFONO;Servicio;Vencimiento",
        "Nombre; Teléfono ;SERVICIO;fecha vencimiento",
    ],
)
def test_it_accepts_spanish_and_english_headers_in_any_case_and_accents(services, header):
    report = customer_import(text=f"{header}\nAna;0968196046;Netflix;2025-02-01\n")
    assert report.rows[0].outcome == CREATE, report.rows[0].reason
    assert Subscription.objects.get().expires_on == date(2025, 2, 1)


@pytest.mark.parametrize(
    ("price", "expected"),
    [
        ("12.99", "12.99"),
        ("12,99", "12.99"),
        ("$12.99", "12.99"),
        ("$ 12", "12.00"),
        ("1.234,50", "1234.50"),
    ],
)
def test_it_accepts_every_price_spelling(services, price, expected):
    text = f'nombre;telefono;servicio;precio;vence\nAna;0968196046;Netflix;"{price}";2025-02-01\n'
    customer_import(text=text)
    assert Subscription.objects.get().price == Decimal(expected)


def test_it_uses_the_service_price_and_today_when_they_are_missing(services):
    expires = timezone.localdate().replace(year=timezone.localdate().year + 1)
    customer_import(text=f"nombre,telefono,servicio,vence\nAna,0968196046,Netflix,{expires}\n")
    sub = Subscription.objects.get()
    assert sub.price == Decimal("7.99")
    assert sub.started_on == timezone.localdate()


@pytest.mark.parametrize(
    ("cells", "reason"),
    [
        ("Ana;0968196046;Netflix;7.99;2025-01-01;2025-13-01", "fecha inválida"),
        ("Ana;0968196046;Netflix;7.99;2025-01-01;1 de febrero", "fecha inválida"),
        ("Ana;0968196046;Netflix;7.99;2025-02-01;2025-01-01", "anterior al inicio"),
        ("Ana;0968196046;Netflix;gratis;2025-01-01;2025-02-01", "precio inválido"),
        ("Ana;0968196046;Netflix;-3;2025-01-01;2025-02-01", "precio inválido"),
        ("Ana;0968196046;Netflix;7.999;2025-01-01;2025-02-01", "precio inválido"),
        ("Ana;0968196046;Netflix;7.99;2025-01-01;", "falta la fecha de vencimiento"),
        ("Ana;0968196046;;7.99;2025-01-01;2025-02-01", "falta el servicio"),
        ("Ana;;Netflix;7.99;2025-01-01;2025-02-01", "falta el teléfono"),
        ("Ana;0968;Netflix;7.99;2025-01-01;2025-02-01", "teléfono inválido"),
        ("Ana;0968196046;HBO;7.99;2025-01-01;2025-02-01", "servicio desconocido"),
        ("Ana;0968196046;Netflix;7.99;2025-01-01;2025-02-01;extra", "más celdas"),
        (f"{'A' * 121};0968196046;Netflix;7.99;2025-01-01;2025-02-01", "más de 120"),
    ],
)
def test_it_rejects_a_bad_row_with_its_reason_and_keeps_the_good_one(services, cells, reason):
    text = (
        "nombre;telefono;servicio;precio;inicio;vence\n"
        f"{cells}\n"
        "Luis;0987654321;Disney+;8.99;2025-01-01;2025-02-01\n"
    )
    report = customer_import(text=text)

    assert [(r.line, r.outcome) for r in report.rows] == [(2, REJECTED), (3, CREATE)]
    assert reason in report.rows[0].reason
    assert list(Customer.objects.values_list("phone", flat=True)) == ["+593987654321"]


def test_it_rejects_the_same_service_twice_for_one_phone(services):
    text = (
        "nombre;telefono;servicio;vence\n"
        "Ana;0968196046;Netflix;2025-02-01\n"
        "Ana;593968196046;Netflix;2025-02-01\n"
    )
    report = customer_import(text=text)
    assert outcomes(report) == {2: CREATE, 3: REJECTED}
    assert "línea 2" in report.rows[1].reason


def test_it_reads_utf8_with_bom_and_latin1_and_commas(services):
    text = "nombre,teléfono,ciudad\nJosé Ñúñez,0968196046,Cuenca\n"
    for data in (b"\xef\xbb\xbf" + text.encode(), text.encode("latin-1")):
        Customer.objects.all().delete()
        report = customer_import_bytes(data=data)
        assert report.rows[0].outcome == CREATE, report.rows[0].reason
        assert Customer.objects.get().name == "José Ñúñez"


def test_it_keeps_commas_inside_quoted_cells(services):
    text = 'nombre,telefono,notas\n"Pérez, Ana",0968196046,"llamar tarde, no antes"\n'
    customer_import(text=text)
    assert Customer.objects.get().name == "Pérez, Ana"


def test_it_counts_physical_lines_skipping_blank_ones(services):
    text = "nombre;telefono\nAna;0968196046\n\n;;\nLuis;12\n"
    report = customer_import(text=text)
    assert [(r.line, r.outcome) for r in report.rows] == [(2, CREATE), (5, REJECTED)]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "vacío"),
        (b"  \n\n", "vacío"),
        (b"PK\x03\x04\x14\x00\x06\x00binary-xlsx", "no es un CSV"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00", "no es un CSV"),
        (b"hola, esto es una carta\ncualquiera\n", "Falta la columna obligatoria"),
        (b"nombre;ciudad\nAna;Quito\n", "telefono"),
        (b"nombre;telefono\n", "solo el encabezado"),
        (b"nombre;telefono;celular\nAna;0968196046;0968196046\n", "más de una vez"),
    ],
)
def test_it_refuses_a_file_it_cannot_use_with_a_clear_message(services, data, message):
    with pytest.raises(ImportFileError) as error:
        customer_import_bytes(data=data)
    assert message in str(error.value)
    assert not Customer.objects.exists()


def test_it_refuses_a_file_over_the_size_cap(settings):
    settings.CUSTOMER_IMPORT_MAX_BYTES = 100
    with pytest.raises(ImportFileError, match="MB"):
        import_decode(b"nombre;telefono\n" + b"Ana;0968196046\n" * 10)
