import re
from html import unescape

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from customers.models import Customer, Subscription
from tests.customers.test_importer import ACCEPTANCE

URL = reverse("customers:import")


def upload(client, data: bytes, name="clientes.csv"):
    return client.post(URL, {"file": SimpleUploadedFile(name, data, "text/csv")})


def token_of(response) -> str:
    match = re.search(r'name="token" value="([^"]+)"', response.content.decode())
    assert match, "no confirm form in the preview"
    return unescape(match.group(1))


def test_it_previews_every_row_then_applies_on_confirm(carla, client_for, services):
    client = client_for(carla)
    preview = upload(client, ACCEPTANCE.encode())

    html = preview.content.decode()
    assert preview.status_code == 200 and "Vista previa" in html
    assert not Customer.objects.exists()  # the preview writes nothing
    assert preview.context["counts"] == {"create": 3, "update": 0, "unchanged": 0, "rejected": 3}
    rows = re.findall(r'<tr class="outcome-(\w+)">\s*<td>(\d+)</td>', html)
    assert rows == [
        ("create", "2"),
        ("create", "3"),
        ("create", "4"),
        ("rejected", "5"),
        ("rejected", "6"),
        ("rejected", "7"),
    ]
    assert "teléfono inválido «12345»" in html
    assert "servicio desconocido «Paramount+»" in html

    done = client.post(URL, {"token": token_of(preview)})

    assert done.status_code == 200 and "Importación terminada" in done.content.decode()
    assert done.context["counts"]["create"] == 3
    assert "línea 5" in done.content.decode()
    assert Customer.objects.count() == 2 and Subscription.objects.count() == 3

    again = upload(client, ACCEPTANCE.encode())
    assert again.context["counts"] == {"create": 0, "update": 0, "unchanged": 3, "rejected": 3}
    assert 'name="token"' not in again.content.decode()  # nothing left to confirm


def test_it_refuses_a_tampered_or_foreign_preview(alice, carla, client, services):
    client.force_login(carla)
    token = token_of(upload(client, ACCEPTANCE.encode()))

    tampered = client.post(URL, {"token": token[:-3] + "abc"})
    assert "caducó o no es válida" in tampered.content.decode()
    client.force_login(alice)
    foreign = client.post(URL, {"token": token})
    assert "otro usuario" in foreign.content.decode()
    assert not Customer.objects.exists()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", None),  # Django's own "the file is empty" form error
        (b"PK\x03\x04\x00\x00", "no es un CSV"),
        (b"nombre;ciudad\nAna;Quito\n", "Falta la columna obligatoria"),
    ],
)
def test_it_explains_an_unusable_file_without_failing(carla, client_for, services, data, message):
    response = upload(client_for(carla), data)
    assert response.status_code == 200
    html = response.content.decode()
    assert 'type="file"' in html
    if message:
        assert message in html
    else:
        assert "errorlist" in html


def test_it_refuses_a_file_over_the_cap(carla, client_for, services, settings):
    settings.CUSTOMER_IMPORT_MAX_BYTES = 1024
    response = upload(client_for(carla), ACCEPTANCE.encode() * 20)
    assert "divídalo en partes" in response.content.decode()
    assert not Customer.objects.exists()


def test_it_offers_an_example_csv_that_imports_cleanly(carla, client_for, services):
    client = client_for(carla)
    assert reverse("customers:import_example") in client.get(URL).content.decode()
    example = client.get(reverse("customers:import_example"))
    assert example["Content-Type"].startswith("text/csv")
    assert "attachment" in example["Content-Disposition"]
    preview = upload(client, example.content)
    assert preview.context["counts"]["rejected"] == 0
    assert preview.context["counts"]["create"] == 3


def test_it_escapes_file_content_in_the_preview(carla, client_for, services):
    data = b"nombre;telefono\n<script>alert(1)</script>;<b>x</b>\n"
    html = upload(client_for(carla), data).content.decode()
    assert "<script>alert(1)</script>" not in html and "<b>x</b>" not in html
    assert "&lt;script&gt;" in html
