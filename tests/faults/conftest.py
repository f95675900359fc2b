"""Fixtures of the fault suite: services of its own, never the machine's shared ones.

`private_postgres` (one per session) is a throwaway cluster with a migrated template database;
`stack` (one per test) is a fresh copy of that database, a private Redis server and whatever
chatdesk processes the test starts on them. None of this uses pytest-django's database: the
tests read the private database with psycopg.
"""

import itertools
import os
import re
import subprocess
import tempfile
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import mark_folder, require
from tests.faults.services import LOGS, Postgres, RedisServer, Stack, missing_binaries
from tests.procs import PYTHON, ROOT, process_env

TEMPLATE = "faults_template"
_numbers = itertools.count(1)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items):
    """Every test here injects faults into processes of its own."""
    mark_folder(items, __file__, pytest.mark.faults, pytest.mark.integration)


@pytest.fixture(scope="session")
def private_postgres():
    missing = missing_binaries()
    require(not missing, f"the fault suite needs {', '.join(missing)}")
    pg = Postgres()
    try:
        pg.init()
        pg.start()
        pg.sql("postgres", f"CREATE DATABASE {TEMPLATE}")
        LOGS.mkdir(parents=True, exist_ok=True)
        env = process_env(DATABASE_URL=pg.url(TEMPLATE), REDIS_URL="", DRAMATIQ_BROKER="stub")
        subprocess.run(
            [PYTHON, "manage.py", "migrate", "--noinput", "-v", "0"],
            cwd=ROOT,
            env=env,
            check=True,
            timeout=300,
        )
        yield pg
    finally:
        pg.destroy()


@contextmanager
def stack_made(private_postgres, name: str):
    """A fresh copy of the template database, a private Redis server, and whatever chatdesk
    processes the test starts on them; all of it gone afterwards, however the test ends."""
    db = f"faults_{next(_numbers)}_{os.getpid()}"
    private_postgres.sql("postgres", f"CREATE DATABASE {db} TEMPLATE {TEMPLATE}")
    redis_dir = Path(tempfile.mkdtemp(prefix="chatdesk-faults-redis-"))
    redis_server = RedisServer(redis_dir)
    stack = Stack(pg=private_postgres, db=db, redis_server=redis_server, name=name)
    try:
        redis_server.start()
        yield stack
    finally:
        try:
            stack.close()
        finally:
            redis_server.kill()
            subprocess.run(["rm", "-rf", str(redis_dir)], check=False)
            try:
                private_postgres.start()  # a test that stopped it may have failed midway
                private_postgres.sql("postgres", f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
            except Exception as exc:  # cleanup must not hide the test's own failure
                print(f"could not drop {db}: {exc}")


@pytest.fixture
def stack(private_postgres, request):
    with stack_made(private_postgres, re.sub(r"\W+", "_", request.node.name)[:40]) as made:
        yield made


@pytest.fixture(scope="module")
def module_stack(private_postgres, request):
    """One stack for a module whose tests share its processes (each test resets the simulator
    and brings its own customers): the start-up is paid once."""
    with stack_made(private_postgres, request.module.__name__.rsplit(".", 1)[-1]) as made:
        yield made
