"""Personas and the switch between "skip without the service" and "fail without it".

Alice is the owner (admin), Bob an agent, Carla a marketer, Charlie has an account but no role.
"""

import os
from pathlib import Path

import pytest
from django.contrib.auth.models import Group, User

REQUIRE_SERVICES = os.environ.get("CHATDESK_REQUIRE_SERVICES") == "1"


def require(condition: bool, reason: str) -> None:
    """Skip when a service or tool is missing, except in CI where it must be there."""
    if not condition:
        if REQUIRE_SERVICES:
            pytest.fail(f"{reason} (CHATDESK_REQUIRE_SERVICES=1 forbids skipping)")
        pytest.skip(reason)


@pytest.fixture
def postgres():
    """For a test of what only PostgreSQL does (SKIP LOCKED, its SQL, the one-statement
    paths): skipped on SQLite (`make test` without DATABASE_URL), failed in CI."""
    from django.db import connection

    require(connection.vendor == "postgresql", "needs PostgreSQL (DATABASE_URL)")


def mark_folder(items: list[pytest.Item], conftest: str, *marks: pytest.MarkDecorator) -> None:
    """Give every test under the folder of `conftest` (a folder conftest's `__file__`) the
    folder's marks, so that a file added there cannot forget them (`-m "not browser"` must not
    open Chromium). Call it from a `tryfirst` pytest_collection_modifyitems: before `-m`
    deselects."""
    folder = Path(conftest).parent
    for item in items:
        if folder in item.path.parents:
            for mark in marks:
                item.add_marker(mark)


def make_user(username: str, role: str | None, **extra) -> User:
    user = User.objects.create_user(username=username, password="pass-" + username, **extra)
    if role:
        # get_or_create: transactional tests flush the groups the migration made.
        user.groups.add(Group.objects.get_or_create(name=role)[0])
    return user


@pytest.fixture
def alice(db):
    return make_user("alice", "admin", first_name="Alice", is_staff=True)


@pytest.fixture
def bob(db):
    return make_user("bob", "agent", first_name="Bob")


@pytest.fixture
def carla(db):
    return make_user("carla", "marketer", first_name="Carla")


@pytest.fixture
def charlie(db):
    return make_user("charlie", None, first_name="Charlie")


@pytest.fixture
def client_for(client):
    """client_for(user) -> a test client logged in as that user."""

    def login(user):
        client.force_login(user)
        return client

    return login


# The README's production processes for integration and browser tests (tests/topology.py).
from tests.topology import (  # noqa: E402, F401
    demo_run,
    production_topology,
    production_topology_cloudapi,
)


@pytest.fixture(scope="session")
def running_demo(tmp_path_factory):
    """`make demo` exactly as the README gives it (port and SQLite file swapped), started once
    for the session and shared: the documented-commands test, the living demo's test and the
    README's screenshots all look at the same one."""
    path = tmp_path_factory.mktemp("make-demo")
    with demo_run(logs=path, sqlite_path=path / "demo.sqlite3") as demo:
        yield demo
