"""Spanish first: the desk speaks the business's language unless a person picks English."""

from django.test import Client


def test_it_answers_in_spanish_even_to_an_english_browser(db):
    response = Client().get("/accounts/login/", headers={"Accept-Language": "en-US,en;q=0.9"})
    assert "Contraseña" in response.text
    assert response.headers["Content-Language"] == "es-ec"


def test_it_switches_to_english_when_the_person_picks_it(db):
    client = Client()
    client.post("/i18n/setlang/", {"language": "en", "next": "/accounts/login/"})
    response = client.get("/accounts/login/")
    assert response.headers["Content-Language"] == "en"


def test_it_ignores_an_unknown_language_cookie(db):
    client = Client()
    client.cookies["django_language"] = "xx"
    response = client.get("/accounts/login/")
    assert response.headers["Content-Language"] == "es-ec"
