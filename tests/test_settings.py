"""Settings come from the environment: embedded defaults, real services when configured, and a
loud refusal when production settings are missing."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from chatdesk.config import broker_kind, channel_layers, database

ROOT = Path(__file__).resolve().parent.parent
PROD_ENV = {
    "DEBUG": "0",
    "SECRET_KEY": "x" * 50,
    "ALLOWED_HOSTS": "chatdesk.example.com",
    "WASENDER_WEBHOOK_SECRET": "s3cret",
}


def without_production_settings() -> dict[str, str]:
    """This environment less the production secrets and pytest's marker."""
    return {k: v for k, v in os.environ.items() if k not in PROD_ENV and k != "PYTEST_VERSION"}


def run_python(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


def run_check(**env_overrides) -> subprocess.CompletedProcess:
    return run_python("manage.py", "check", env=without_production_settings() | env_overrides)


def test_it_uses_sqlite_without_database_url(tmp_path):
    config = database("", sqlite_path=tmp_path / "db.sqlite3")
    assert config["ENGINE"] == "django.db.backends.sqlite3"
    assert config["NAME"] == tmp_path / "db.sqlite3"
    # The test database is a file too, so processes started by tests can share it.
    assert config["TEST"]["NAME"].endswith("test_db.sqlite3")


def test_it_uses_pooled_postgresql_with_database_url(tmp_path):
    config = database("postgres://u:p@db.example:5433/chat", sqlite_path=tmp_path / "x")
    assert config["ENGINE"] == "django.db.backends.postgresql"
    assert (config["HOST"], config["PORT"], config["NAME"]) == ("db.example", 5433, "chat")
    assert config["OPTIONS"]["pool"]
    assert config["CONN_MAX_AGE"] == 0


def test_it_uses_the_in_memory_channel_layer_without_redis():
    assert channel_layers("")["default"]["BACKEND"] == "channels.layers.InMemoryChannelLayer"


@pytest.mark.parametrize(
    ("kind", "backend"),
    [
        ("core", "channels_redis.core.RedisChannelLayer"),
        ("pubsub", "channels_redis.pubsub.RedisPubSubChannelLayer"),
    ],
)
def test_it_uses_channels_redis_with_redis_url(kind, backend):
    layer = channel_layers("redis://127.0.0.1:6379/0", kind)["default"]
    assert layer["BACKEND"] == backend
    assert layer["CONFIG"]["hosts"] == [
        {"address": "redis://127.0.0.1:6379/0", "socket_timeout": 30.0}
    ]


def test_it_picks_the_redis_broker_only_with_redis_outside_tests():
    assert broker_kind("redis://127.0.0.1:6379/0", testing=False) == "redis"
    assert broker_kind("redis://127.0.0.1:6379/0", testing=True) == "stub"
    assert broker_kind("", testing=False) == "stub"


def test_it_runs_in_spanish_in_guayaquil_time(settings):
    assert settings.LANGUAGE_CODE == "es-ec"
    assert "en" in dict(settings.LANGUAGES)
    assert settings.TIME_ZONE == "America/Guayaquil"


@pytest.mark.parametrize("missing", ["SECRET_KEY", "ALLOWED_HOSTS", "WASENDER_WEBHOOK_SECRET"])
def test_it_refuses_to_start_without_debug_when_a_production_setting_is_missing(missing):
    env = {k: v for k, v in PROD_ENV.items() if k != missing}
    result = run_check(**env)
    assert result.returncode != 0
    assert f"{missing} must be set when DEBUG is off" in result.stderr


def test_it_starts_without_debug_when_production_settings_are_given():
    result = run_check(**PROD_ENV)
    assert result.returncode == 0, result.stderr


def test_it_runs_production_settings_when_debug_is_not_set():
    """No DEBUG in the environment is production: without its secrets chatdesk refuses to start
    (never the public development key and webhook secret), naming the first one missing."""
    result = run_check()
    assert result.returncode != 0
    assert "SECRET_KEY must be set when DEBUG is off" in result.stderr


def test_it_builds_an_image_that_runs_production_settings():
    """The Dockerfile's environment says DEBUG=0 and its command does not turn it on; only the
    build step that collects static files runs with DEBUG=1."""
    lines = (ROOT / "Dockerfile").read_text().splitlines()
    env_lines = [line for line in lines if line.startswith("ENV ")]
    assert any(" DEBUG=0 " in f"{line} " for line in env_lines)
    cmd = next(line for line in lines if line.startswith("CMD "))
    assert "DEBUG" not in cmd


def test_the_web_process_refuses_to_start_without_its_production_settings():
    """daphne runs no system checks: the ASGI module itself refuses."""
    env = without_production_settings()
    env.pop("DJANGO_SETTINGS_MODULE", None)
    result = run_python("-c", "import chatdesk.asgi", env=env)
    assert result.returncode != 0
    assert "SECRET_KEY must be set when DEBUG is off" in result.stderr


def test_the_documented_worker_starts_with_nothing_in_its_environment():
    """`dramatiq chatdesk.worker` as docs/operations.md writes it, with no DJANGO_SETTINGS_MODULE,
    no DEBUG and no secrets (it serves no request): it is still running after its start-up."""
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp")}
    worker = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "dramatiq"),
            "chatdesk.worker",
            "--processes",
            "1",
            "--threads",
            "1",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        with pytest.raises(subprocess.TimeoutExpired):
            worker.wait(timeout=8)
    finally:
        worker.terminate()
        output, _ = worker.communicate(timeout=30)
    assert "ImproperlyConfigured" not in output
    assert "Worker process is ready" in output
