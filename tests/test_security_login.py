"""Login throttling (django-axes): 5 failures for one username from one address lock that pair
out for 15 minutes, on our login page and on the Django admin's."""

import pytest
from django.test import Client

from tests.conftest import make_user

LOGIN = "/accounts/login/"
ADMIN_LOGIN = "/admin/login/"


def attempt(client: Client, username: str, password: str, *, url: str = LOGIN, ip="10.1.1.1"):
    return client.post(url, {"username": username, "password": password}, REMOTE_ADDR=ip)


def fail_times(client: Client, username: str, times: int, **kwargs) -> None:
    for n in range(1, times + 1):
        response = attempt(client, username, "wrong-password", **kwargs)
        # The form again with its error; the fifth failure already answers with the lockout.
        assert response.status_code == (429 if n >= 5 else 200)


@pytest.fixture
def alice(db):
    return make_user("alice", "admin", is_staff=True)


def logged_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def test_it_locks_out_after_five_failures_even_with_the_right_password(alice):
    client = Client()
    fail_times(client, "alice", 5)
    response = attempt(client, "alice", "pass-alice")
    assert response.status_code == 429
    assert "Demasiados intentos fallidos" in response.content.decode()
    assert "15 minutos" in response.content.decode()
    assert not logged_in(client)


def test_it_allows_four_failures(alice):
    client = Client()
    fail_times(client, "alice", 4)
    assert attempt(client, "alice", "pass-alice").status_code == 302
    assert logged_in(client)


def test_it_does_not_lock_out_another_user_or_the_same_user_elsewhere(alice):
    make_user("bob", "agent")
    fail_times(Client(), "alice", 5)
    other_user = Client()
    assert attempt(other_user, "bob", "pass-bob").status_code == 302
    assert logged_in(other_user)
    other_place = Client()
    assert attempt(other_place, "alice", "pass-alice", ip="10.2.2.2").status_code == 302
    assert logged_in(other_place)


def test_it_resets_the_count_on_success(alice):
    client = Client()
    fail_times(client, "alice", 4)
    assert attempt(client, "alice", "pass-alice").status_code == 302
    client.logout()
    fail_times(client, "alice", 4)
    assert attempt(client, "alice", "pass-alice").status_code == 302


def test_it_locks_out_the_django_admin_login_too(alice):
    client = Client()
    fail_times(client, "alice", 5, url=ADMIN_LOGIN)
    response = attempt(client, "alice", "pass-alice", url=ADMIN_LOGIN)
    assert response.status_code == 429
    assert not logged_in(client)
    # The lock is per username and address, whichever login page counted the failures.
    assert attempt(client, "alice", "pass-alice").status_code == 429


def test_it_shows_the_lockout_in_english_when_asked(alice):
    client = Client()
    fail_times(client, "alice", 5)
    client.cookies["django_language"] = "en"
    response = attempt(client, "alice", "pass-alice")
    assert response.status_code == 429
    assert '<html lang="en"' in response.content.decode()


def test_it_locks_an_address_that_tries_many_usernames(alice):
    """The address tier: 20 failures from one address, one per made-up username, lock the
    address, even for a real user with the right password; another address still logs in."""
    client = Client()
    for n in range(20):
        response = attempt(client, f"usuario{n}", "wrong-password")
        assert response.status_code == (429 if n == 19 else 200), n
    response = attempt(client, "alice", "pass-alice")
    assert response.status_code == 429
    assert not logged_in(client)
    elsewhere = Client()
    assert attempt(elsewhere, "alice", "pass-alice", ip="10.2.2.2").status_code == 302


def test_it_lets_an_office_behind_one_address_mistype(alice):
    """Below the address tier, other people at the same address are not locked by one
    person's failures (five of them lock only that username there)."""
    make_user("bob", "agent")
    client = Client()
    fail_times(client, "alice", 5)
    for n in range(10):
        assert attempt(client, f"otro{n}", "wrong-password").status_code == 200
    bob = Client()
    assert attempt(bob, "bob", "pass-bob").status_code == 302
