"""Who sees what, the panel partial, and bounded query counts."""

from datetime import timedelta

from inbox.models import SessionState


def test_it_shows_the_panel_to_every_role(client_for, alice, bob, carla):
    for user in (alice, bob, carla):
        response = client_for(user).get("/")
        assert response.status_code == 200
        assert b'data-figure="sent"' in response.content


def test_it_refuses_the_panel_to_charlie(client_for, charlie):
    assert client_for(charlie).get("/").status_code == 403


def test_it_answers_the_polled_partial_alone(client_for, bob):
    response = client_for(bob).get("/", HTTP_HX_REQUEST="true")
    assert b'id="panel"' in response.content and b"<html" not in response.content


def test_it_warns_when_whatsapp_is_disconnected(client_for, bob):
    SessionState.objects.create(session="default", status="need_scan")
    assert b"session-banner" in client_for(bob).get("/").content


def test_it_bounds_the_panel_queries(client_for, alice, world, django_assert_max_num_queries):
    client = client_for(alice)
    with django_assert_max_num_queries(12):
        client.get("/")


def test_it_keeps_analytics_from_agents_and_charlie(client_for, bob, charlie):
    assert client_for(bob).get("/insights/").status_code == 403
    assert client_for(charlie).get("/insights/").status_code == 403


def test_it_shows_analytics_to_admin_and_marketer(client_for, alice, carla, world):
    for user in (alice, carla):
        response = client_for(user).get("/insights/?from=2025-03-10&to=2025-03-11")
        assert response.status_code == 200
        assert "lunes 23:00-00:00" in response.content.decode()
        assert b'id="trend-data"' in response.content


def test_it_escapes_customer_text_in_tables_and_chart_data(client_for, alice, world):
    world["promo"].title = "<script>alert(1)</script>"
    world["promo"].save()
    html = client_for(alice).get("/insights/?from=2025-03-10&to=2025-03-11").content.decode()
    assert "<script>alert(1)" not in html and "&lt;script&gt;alert(1)" in html


def test_it_sorts_campaigns(client_for, alice, world):
    response = client_for(alice).get("/insights/?from=2025-03-10&to=2025-03-11&sort=opt_outs")
    assert response.status_code == 200 and 'aria-sort="ascending"' in response.content.decode()


def test_it_says_what_is_wrong_with_a_bad_range(client_for, alice):
    response = client_for(alice).get("/insights/?from=2025-02-30")
    assert response.status_code == 200 and "no es una fecha válida" in response.content.decode()


def test_it_loads_agents_and_behaviour_sections(client_for, alice, world):
    client = client_for(alice)
    agents = client.get("/insights/?from=2025-03-10&to=2025-03-11&section=agents")
    assert "Bob" in agents.content.decode() and "35 min" in agents.content.decode()
    behaviour = client.get("/insights/?section=behaviour")
    assert b'data-group="fast"' in behaviour.content


def test_it_bounds_the_analytics_queries(client_for, alice, world, django_assert_max_num_queries):
    from insights.rollups import rollups_fold
    from tests.insights.conftest import D1, at

    client = client_for(alice)
    # Nothing folded yet: every figure counted from the rows, plus a look at each rollup's mark.
    with django_assert_max_num_queries(30):
        client.get("/insights/?from=2025-03-10&to=2025-03-11")
    rollups_fold(now=at(D1, 12) + timedelta(days=2))
    with django_assert_max_num_queries(20):
        client.get("/insights/?from=2025-03-10&to=2025-03-11")


def test_it_offers_the_number_only_when_there_are_several(client_for, alice, world):
    from inbox.models import Channel

    client = client_for(alice)
    assert b'name="channel"' not in client.get("/").content
    assert b'name="channel"' not in client.get("/insights/").content
    Channel.objects.create(key="soporte", name="Soporte", provider="cloudapi", account="1")
    for url in ("/", "/insights/"):
        page = client.get(url + "?channel=soporte").content.decode()
        assert 'name="channel"' in page
        assert '<option value="soporte" selected>Soporte</option>' in page
    # The panel's polling keeps the number it shows.
    assert b'hx-get="/?channel=soporte"' in client.get("/?channel=soporte").content
    section = client.get("/insights/?channel=soporte&range=7").content.decode()
    assert "channel=soporte&amp;section=agents" in section


def test_an_unknown_number_is_a_spanish_message_not_an_error(client_for, alice, world):
    client = client_for(alice)
    response = client.get("/insights/?channel=nada")
    assert response.status_code == 200
    assert "Ese número de WhatsApp no existe" in response.content.decode()
    response = client.get("/insights/export/daily.csv?channel=nada")
    assert response.status_code == 400
    assert "Ese número de WhatsApp no existe" in response.content.decode()
