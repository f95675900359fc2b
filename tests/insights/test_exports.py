"""Streamed CSV: BOM, escaping, formulas neutralised, filters, roles."""

import csv
import io

from tests.insights.conftest import D, at, inbound


def _rows(response):
    assert response.streaming
    text = b"".join(response.streaming_content).decode("utf-8")
    assert text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(text[1:])))


def test_it_neutralises_formulas_and_escapes_quotes(client_for, alice, world):
    for body in ('=HYPERLINK("http://x")', "+1", "-2", "@SUM(A1)", "\tTAB", "\rCR", 'a,"b"'):
        inbound(world["conv_a"], at(D, 13), body=body)
    response = client_for(alice).get(
        "/insights/export/messages.csv?from=2025-03-10&to=2025-03-10&direction=in"
    )
    bodies = [row[8] for row in _rows(response)[1:]]
    assert '\'=HYPERLINK("http://x")' in bodies
    assert {"'+1", "'-2", "'@SUM(A1)", "'\tTAB", "'\rCR", 'a,"b"'} <= set(bodies)


def test_it_filters_messages_by_direction_and_status(client_for, alice, world):
    client = client_for(alice)
    failed = _rows(
        client.get("/insights/export/messages.csv?from=2025-03-10&to=2025-03-11&status=failed")
    )
    assert len(failed) == 2 and failed[1][13] == "El número no tiene WhatsApp"
    inbound_rows = _rows(
        client.get("/insights/export/messages.csv?from=2025-03-10&to=2025-03-11&direction=in")
    )
    assert [r[1] for r in inbound_rows[1:]] == ["2025-03-10 23:45:00", "2025-03-11 00:10:00"]


def test_it_rejects_an_unknown_filter_value(client_for, alice):
    response = client_for(alice).get("/insights/export/messages.csv?status=nope")
    assert response.status_code == 400


def test_it_exports_daily_metrics(client_for, alice, world):
    rows = _rows(client_for(alice).get("/insights/export/daily.csv?from=2025-03-10&to=2025-03-11"))
    assert rows[1] == ["2025-03-10", "2", "1", "1", "1", "1", "1", "100"]
    assert rows[2] == ["2025-03-11", "1", "2", "1", "1", "0", "1", "0"]


def test_it_neutralises_a_campaign_title(client_for, alice, world):
    rows = _rows(
        client_for(alice).get("/insights/export/campaigns.csv?from=2025-03-10&to=2025-03-11")
    )
    assert rows[1][0] == "'Promo =marzo" or rows[1][0] == "Promo =marzo"
    assert rows[1][3:10] == ["2", "2", "1", "1", "0", "1", "0"]


def test_it_exports_customers(client_for, alice, world):
    rows = _rows(client_for(alice).get("/insights/export/customers.csv"))
    assert [r[1] for r in rows[1:]] == ["Ana", "Beto"]
    assert rows[1][7] == "1" and rows[2][5] == "2025-03-11 11:00:00"


def test_it_streams_every_other_export(client_for, alice, world):
    client = client_for(alice)
    for kind in ("hours", "services", "reminders", "agents", "behaviour"):
        assert (
            len(_rows(client.get(f"/insights/export/{kind}.csv?from=2025-03-10&to=2025-03-11"))) > 1
        )


def test_it_keeps_exports_from_agents(client_for, bob):
    assert client_for(bob).get("/insights/export/messages.csv").status_code == 403
