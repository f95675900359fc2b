from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from customers.models import Customer
from tests.customers.test_importer import ACCEPTANCE


def run(*args):
    out = StringIO()
    call_command("import_customers", *args, stdout=out)
    return out.getvalue()


def test_it_prints_a_summary_and_the_rejected_lines(services, tmp_path):
    path = tmp_path / "clientes.csv"
    path.write_text(ACCEPTANCE, encoding="utf-8")

    output = run(str(path))

    assert "3 nuevos, 0 actualizados, 0 sin cambios, 3 rechazados" in output
    assert "línea 5: teléfono inválido «12345»" in output
    assert "línea 7: servicio desconocido «Paramount+»" in output
    assert Customer.objects.count() == 2
    assert "0 nuevos, 0 actualizados, 3 sin cambios, 3 rechazados" in run(str(path))


def test_it_writes_nothing_with_dry_run(services, tmp_path):
    path = tmp_path / "clientes.csv"
    path.write_text(ACCEPTANCE, encoding="utf-8")
    output = run(str(path), "--dry-run")
    assert "Simulación" in output and "3 nuevos" in output
    assert not Customer.objects.exists()


def test_it_fails_clearly_on_a_missing_or_unusable_file(db, tmp_path):
    with pytest.raises(CommandError, match="No se puede leer"):
        run(str(tmp_path / "no-existe.csv"))
    empty = tmp_path / "vacio.csv"
    empty.write_bytes(b"")
    with pytest.raises(CommandError, match="vacío"):
        run(str(empty))
