"""/inbox/customers/<id>/history/: a customer's whole record, filtered, searched, exported."""

import csv
import io
from datetime import timedelta

import pytest
from django.utils import timezone

from inbox.models import Message
from tests.inbox_live.conftest import HOSTILE, conversation_with

pytestmark = pytest.mark.django_db


@pytest.fixture
def record(db, bob):
    conversation = conversation_with("+593968196046", "Carlos Pérez", text="Hola", minutes_ago=0)
    now = timezone.now()
    Message.objects.filter(conversation=conversation).update(created_at=now - timedelta(days=10))
    for days, author, body in [
        (5, "campaign", "Black Friday: Netflix a mitad de precio"),
        (3, "agent", '=HYPERLINK("http://evil")'),
        (1, "customer", HOSTILE),
        (0, "bot", "Gracias por escribir"),
    ]:
        Message.objects.create(
            conversation=conversation,
            direction="in" if author == "customer" else "out",
            author_kind=author,
            agent=bob if author == "agent" else None,
            body=body,
            status="received" if author == "customer" else "read",
            created_at=now - timedelta(days=days),
        )
    return conversation.customer


def bodies(response) -> list[str]:
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))
    return [row[5] for row in rows[1:]]


def test_it_shows_the_history_to_support_but_not_to_marketing_or_charlie(
    client_for, alice, bob, carla, charlie, record
):
    # Chats are private support records: marketers see analytics, not transcripts.
    for user in (carla, charlie):
        assert client_for(user).get(f"/inbox/customers/{record.pk}/history/").status_code == 403
    for user in (alice, bob):
        response = client_for(user).get(f"/inbox/customers/{record.pk}/history/")
        assert response.status_code == 200
        assert "Black Friday" in response.content.decode()


def test_its_first_address_redirects_for_good_with_the_filters(client_for, bob, record):
    response = client_for(bob).get(f"/customers/{record.pk}/history/", {"author": "agent"})
    assert response.status_code == 301
    assert response["Location"] == f"/inbox/customers/{record.pk}/history/?author=agent"


def test_it_survives_a_date_at_the_end_of_the_calendar(client_for, bob, record):
    response = client_for(bob).get(f"/inbox/customers/{record.pk}/history/", {"to": "9999-12-31"})
    assert response.status_code == 200


def test_it_shows_every_line_newest_first_with_author_and_escapes_text(client_for, bob, record):
    html = client_for(bob).get(f"/inbox/customers/{record.pk}/history/").content.decode()
    assert html.index("Gracias por escribir") < html.index("Black Friday") < html.index(">Hola<")
    assert "Bob" in html and "Campaña" in html
    assert HOSTILE not in html and "&lt;img src=x onerror=alert(1)&gt;" in html


def test_it_filters_by_dates_author_and_text(client_for, bob, record):
    client = client_for(bob)
    url = f"/inbox/customers/{record.pk}/history/"
    today = timezone.localdate()
    html = client.get(url, {"author": "campaign"}).content.decode()
    assert "Black Friday" in html and "Gracias por escribir" not in html
    html = client.get(url, {"q": "netflix"}).content.decode()
    assert "Black Friday" in html and "Gracias" not in html
    since = (today - timedelta(days=2)).isoformat()
    html = client.get(url, {"from": since}).content.decode()
    assert "Gracias por escribir" in html and "Black Friday" not in html
    until = (today - timedelta(days=4)).isoformat()
    html = client.get(url, {"to": until}).content.decode()
    assert "Black Friday" in html and "Gracias" not in html and ">Hola<" in html


def test_it_pages_with_a_keyset_cursor(client_for, bob, record, monkeypatch):
    monkeypatch.setattr("inbox.views.HISTORY_PAGE", 2)
    client = client_for(bob)
    url = f"/inbox/customers/{record.pk}/history/"
    html = client.get(url).content.decode()
    assert html.count('id="h-') == 2
    before = html.split("before=", 1)[1].split('"', 1)[0]
    older = client.get(url, {"before": before}, HTTP_HX_REQUEST="true").content.decode()
    assert older.count('id="h-') == 2 and "Black Friday" in older


def test_it_exports_a_filtered_csv_with_formulas_neutralised(client_for, bob, record):
    response = client_for(bob).get(f"/inbox/customers/{record.pk}/history/", {"format": "csv"})
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"].startswith("attachment")
    exported = bodies(response)
    assert exported[0] == "Gracias por escribir"
    assert HOSTILE in exported  # plain text in a CSV: escaped for a spreadsheet, not for HTML
    assert '\'=HYPERLINK("http://evil")' in exported
    only_agent = client_for(bob).get(
        f"/inbox/customers/{record.pk}/history/", {"format": "csv", "author": "agent"}
    )
    assert bodies(only_agent) == ['\'=HYPERLINK("http://evil")']


@pytest.mark.parametrize("cell", ["=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx", "\x01x"])
def test_it_neutralises_every_formula_prefix(cell):
    from chatdesk.csvexport import cell_safe

    assert cell_safe(cell) == "'" + cell
    assert cell_safe("hola") == "hola"
