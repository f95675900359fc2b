"""docker-compose.yml describes a production-like run (no Docker engine runs here, so the file
is checked as data: what `docker compose config` would refuse or what would start wrong)."""

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
SERVICES = {"postgres", "redis", "web", "worker", "scheduler"}


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_it_defines_the_five_services_with_health_checks():
    services = compose()["services"]
    assert set(services) == SERVICES
    for name in SERVICES:
        assert "healthcheck" in services[name], name


def test_it_runs_chatdesk_processes_against_postgres_and_redis_once_they_are_healthy():
    services = compose()["services"]
    for name in ("web", "worker", "scheduler"):
        service = services[name]
        assert service["environment"]["DEBUG"] == "0"
        assert service["environment"]["DATABASE_URL"].startswith("postgres://")
        assert service["environment"]["REDIS_URL"].startswith("redis://redis:")
        assert service["depends_on"]["postgres"]["condition"] == "service_healthy"
        assert service["depends_on"]["redis"]["condition"] == "service_healthy"
    assert "daphne" in services["web"]["command"]
    assert "migrate" in services["web"]["command"]
    assert services["worker"]["command"][:2] == ["dramatiq", "chatdesk.worker"]
    assert services["scheduler"]["command"][-1] == "scheduler"


def test_it_keeps_data_in_named_volumes():
    data = compose()
    assert {"pgdata", "redisdata", "media"} <= set(data["volumes"])
    assert "pgdata:/var/lib/postgresql/data" in data["services"]["postgres"]["volumes"]


def test_it_is_valid_for_docker_compose_where_the_plugin_exists(tmp_path):
    docker = shutil.which("docker")
    if (
        docker is None
        or subprocess.run([docker, "compose", "version"], capture_output=True).returncode != 0
    ):
        pytest.skip(
            "no `docker compose` here: the YAML checks above stand in for `docker compose "
            "config`; tests/test_documented.py runs every service's command as a process"
        )
    (tmp_path / ".env").write_text("SECRET_KEY=x\n")
    result = subprocess.run(
        [
            docker,
            "compose",
            "-f",
            str(ROOT / "docker-compose.yml"),
            "--env-file",
            str(tmp_path / ".env"),
            "config",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
