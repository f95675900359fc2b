"""Documented means tested, verbatim: every command the README, docs/, the Dockerfile and
docker-compose.yml give is run here as written, with only the environment its document gives
(hosts, ports and database names swapped; tests/topology.py reads and swaps them), and checked
healthy: web answers /readyz, the worker delivers a real send to the simulator (counted at
/_sim/stats), the scheduler's tick launches a scheduled campaign, the one-shot commands exit 0.

`test_it_runs_every_documented_command` fails on a documented command no test here runs: each
command is given to a runner by what it is, and every runner runs all the commands given to it.
"""

import dataclasses
import os
import re
import shlex
import shutil
import subprocess
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import redis
from django.utils import timezone

from chatdesk.models import ApiToken
from customers.models import Customer
from inbox.models import Conversation, Message
from outbound.models import AutomationSettings
from tests.conftest import make_user, require
from tests.procs import BIN, ROOT, free_port, redis_url_for_tests
from tests.topology import (
    SCHEDULER_LOCK,
    Documented,
    ForwardedProxy,
    Swap,
    cloudapi_commands,
    cloudapi_exports,
    compose,
    compose_commands,
    database_url_for_tests,
    dockerfile_commands,
    documented_commands,
    env_example,
    http_ok,
    log_text,
    markdown_block_commands,
    none_exited,
    operations_table_commands,
    run,
    shell_blocks,
    shell_env,
    start,
    stop,
    trial_commands,
)
from tests.waiting import wait_until

# Which test runs which commands. A command with no runner fails the coverage test.
RUNNERS = {
    "trial": "test_it_runs_the_readme_trial_block_as_written",
    "cloudapi trial": "test_it_runs_the_readme_cloud_api_block_as_written",
    "production": "test_it_runs_compose_the_dockerfile_and_the_operations_guide_as_written",
    "operations blocks": "test_it_runs_compose_the_dockerfile_and_the_operations_guide_as_written",
    "make demo": "test_it_runs_make_demo_as_written",
    "ci": "test_it_runs_make_test_in_ci_as_the_readme_does",
    "pytest": "test_it_selects_the_tests_the_readme_names",
    "inner loop": "test_it_selects_the_inner_loop_make_test_fast_names",
    "manage": "test_it_runs_the_management_commands_the_docs_name",
    "make messages": "test_it_runs_make_messages",
    "docker": "test_it_builds_the_image_where_a_docker_engine_runs",
    "suite target": "test_it_runs_the_tests_make_screenshots_names",
}
# Documented commands the suite does not run, and why. Each one is a gap, said out loud.
NOT_RUN = {
    "bench": "benchmarks take minutes each and append to bench/RESULTS.md: `make bench` runs "
    "them; the suite runs none (a known gap of rule 3)",
}
TENA = ("+593991110001", "+593991110002")  # customers of the scheduled campaign


def written_commands() -> list[Documented]:
    """Commands in code blocks, tables, the Dockerfile and compose: what a person runs.
    Inline mentions in prose are checked against these."""
    return [c for c in documented_commands() if c.block]


def is_mention(command: Documented, written: list[Documented]) -> bool:
    """An inline `span` whose words appear, in order, in a written command (`daphne
    chatdesk.asgi:application` in a table, for the full daphne line): it names that command."""
    words = command.words
    if words and words[0] in ("python", "python3") and "manage.py" in words:
        words = words[1:]
    for other in written:
        rest = iter(other.words)
        if all(word in rest for word in words):
            return True
    return False


def runner_for(command: Documented, written: list[Documented]) -> str:
    program = command.program
    trial = {c.source for c in trial_commands()}
    if program in ("make test", "make lint"):
        return "ci"
    if program == "make test-fast":
        return "inner loop"
    if command.source in trial:
        return "trial"
    if command.source in {c.source for c in cloudapi_commands()}:
        return "cloudapi trial"
    if command.source.startswith(("Dockerfile", "docker-compose.yml")):
        return "production"
    if command.source in {c.source for c in operations_table_commands()}:
        return "production"
    if program in ("make demo", "manage.py runembedded"):
        return "make demo"
    if program == "pytest":
        return "pytest"
    if program in ("make bench", "manage.py generate_large_data") or "bench/" in command.text:
        return "bench"
    if command.block and command.source.startswith("docs/"):
        return "operations blocks"
    if not command.block and is_mention(command, written):
        return "mention"
    if program.startswith("manage.py "):
        return "manage"
    if program == "make messages":
        return "make messages"
    if program == "make screenshots":
        return "suite target"
    if program.startswith("docker"):
        return "docker"
    return "none"


def commands_for(runner: str) -> list[Documented]:
    written = written_commands()
    return [c for c in documented_commands() if runner_for(c, written) == runner]


def test_it_finds_the_documented_commands():
    programs = {c.program for c in documented_commands()}
    assert {"daphne", "dramatiq", "manage.py scheduler", "manage.py wasender_sim"} <= programs
    assert "manage.py cloudapi_sim" in programs
    assert {"manage.py migrate", "manage.py seed_demo", "manage.py ops_status"} <= programs
    assert {"make demo", "make test", "pg_dump", "pg_restore", "sh"} <= programs
    assert {c.source for c in compose_commands()} == {
        f"docker-compose.yml services.{name}.command" for name in ("web", "worker", "scheduler")
    }
    assert [c.source for c in dockerfile_commands()][-1] == "Dockerfile CMD"


def test_it_runs_every_documented_command():
    written = written_commands()
    unrun = [
        f"{c.source}: {c.text}"
        for c in documented_commands()
        if runner_for(c, written) not in {*RUNNERS, *NOT_RUN, "mention"}
    ]
    assert not unrun, "documented commands no test runs:\n" + "\n".join(unrun)
    for runner, name in RUNNERS.items():
        assert callable(globals().get(name)), f"{runner}: no test named {name}"


# --- helpers ----------------------------------------------------------------------------------


def api(base: str, token: str) -> httpx.Client:
    return httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=15)


def sim_sends(simulator: str) -> dict[str, int]:
    return httpx.get(f"{simulator}/_sim/stats", timeout=5).json()["sends_by_recipient"]


def customers_for_the_campaign() -> None:
    for n, phone in enumerate(TENA):
        Customer.objects.create(name=f"Cliente Tena {n}", phone=phone, city="Tena")


def send_and_campaign_reach_the_simulator(client: httpx.Client, simulator: str, procs) -> None:
    """A message over the API goes out through the worker (counted by the simulator) and its
    statuses come back through the webhook; a campaign scheduled a few seconds ahead is
    launched by the scheduler's tick, and each of its customers gets it once."""
    sent = client.post("/api/v1/messages", json={"phone": "0987654321", "text": "Hola 👋"})
    assert sent.status_code == 201, sent.text
    message_id = sent.json()["id"]
    wait_until(
        lambda: sim_sends(simulator).get("+593987654321") == 1,
        timeout=60,
        what="the API message at the simulator",
        check=none_exited(procs),
    )
    wait_until(
        lambda: client.get(f"/api/v1/messages/{message_id}").json()["status"] == "read",
        timeout=60,
        what="the read status back through the webhook",
        check=none_exited(procs),
    )
    at = timezone.localtime() + timedelta(seconds=3)
    created = client.post(
        "/api/v1/campaigns",
        json={
            "title": "Tena",
            "text": "Hola {nombre}, novedades en Tena",
            "kind": "support",
            "filters": {"cities": ["Tena"]},
            "send_at": at.isoformat(),
            "window_start": "00:00",
            "window_end": "23:59",
        },
    )
    assert created.status_code == 201, created.text
    assert created.json()["state"] == "scheduled"
    campaign = created.json()["id"]
    wait_until(
        lambda: all(sim_sends(simulator).get(p) == 1 for p in TENA),
        timeout=90,
        what="the scheduled campaign at the simulator",
        check=none_exited(procs),
    )
    wait_until(
        lambda: client.get(f"/api/v1/campaigns/{campaign}").json()["state"] == "completed",
        timeout=60,
        what="the campaign completed",
        check=none_exited(procs),
    )
    assert {p: sim_sends(simulator)[p] for p in TENA} == dict.fromkeys(TENA, 1)


# --- the README's trial block -------------------------------------------------------------------


@pytest.mark.integration
@pytest.mark.services
def test_it_runs_the_readme_trial_block_as_written(production_topology):
    """migrate, two daphnes, the worker, the scheduler and the simulator are started by the
    fixture from the block's own lines; `make install` and `seed_demo --if-empty` run here."""
    topology = production_topology
    handled = {
        "make install",
        "manage.py migrate",
        "manage.py seed_demo",
        "daphne",
        "dramatiq",
        "manage.py scheduler",
        "manage.py wasender_sim",
        "make test",
    }
    assert {c.program for c in trial_commands()} <= handled
    lines = {c.program: c for c in trial_commands()}
    installed = run(lines["make install"], swap=topology.swap)
    assert installed.returncode == 0, installed.stderr
    seeded = run(lines["manage.py seed_demo"], swap=topology.swap)
    assert seeded.returncode == 0, seeded.stderr
    assert "Demo data seeded" in seeded.stdout
    customers_for_the_campaign()
    admin = ApiToken.issue(user=make_user("alice", "admin"), name="prueba")[1]
    procs = list(topology.processes.values())
    with api(topology.web2, admin) as client:
        send_and_campaign_reach_the_simulator(client, topology.simulator, procs)
    # The simulator pushes to web1 only: the statuses above came in there.
    assert topology.sim_stats()["webhooks_pushed"] > 0
    topology.check_alive()


REPLY_CODE = """
from outbound.services import message_send
print("ID", message_send(phone="{phone}", text="{text}", author_kind="api", channel="meta").id)
"""


@pytest.mark.integration
@pytest.mark.services
def test_it_runs_the_readme_cloud_api_block_as_written(production_topology_cloudapi):
    """The trial with the README's Cloud API block: its exports in every process, its
    simulator's line. Meta's handshake answers the block's verify token; a customer writing to
    the simulated number lands on the channel `meta`; a reply there goes out through the Cloud
    API simulator (counted there) and its statuses come back to read."""
    topology = production_topology_cloudapi
    phone, text = "+593968196046", "Hola, ya revisamos tu cuenta"
    # The away message off: one send to count.
    AutomationSettings.objects.update_or_create(pk=1, defaults={"away_enabled": False})
    handshake = httpx.get(
        f"{topology.web2}/webhooks/meta/",
        params={
            "hub.mode": "subscribe",
            "hub.verify_token": cloudapi_exports()["META_VERIFY_TOKEN"],
            "hub.challenge": "1158201444",
        },
    )
    assert (handshake.status_code, handshake.text) == (200, "1158201444")
    procs = list(topology.processes.values())
    written = httpx.post(
        f"{topology.cloudapi}/_sim/inbound",
        json={"phone": phone, "text": "¿Me ayudan con mi cuenta?", "name": "Ana"},
        timeout=30,
    )
    assert written.json()["data"]["delivered"] is True, written.text
    wait_until(
        lambda: Conversation.objects.filter(channel_id="meta", customer__phone=phone).exists(),
        timeout=30,
        what="the customer's conversation on the Cloud API number",
        check=none_exited(procs),
    )
    out = topology.manage("shell", "-c", REPLY_CODE.format(phone=phone, text=text))
    assert out.returncode == 0, out.stderr
    reply = int(re.search(r"ID (\d+)", out.stdout).group(1))
    wait_until(
        lambda: Message.objects.get(pk=reply).status == "read",
        timeout=60,
        what="the reply read, through the Cloud API simulator's statuses",
        check=none_exited(procs),
    )
    stats = httpx.get(f"{topology.cloudapi}/_sim/stats", timeout=5).json()
    assert stats["sends_by_recipient"] == {phone[1:]: 1}
    assert topology.sim_stats()["sends_accepted"] == 0  # nothing went out on WaSender
    topology.check_alive()


# --- docker-compose, the Dockerfile, the operations guide ----------------------------------


def production_swap(database_url: str, redis_url: str, tmp: Path, *, ports: dict) -> Swap:
    """Our PostgreSQL, Redis, ports and folders; WaSender's API -> the simulator's (port 8001's
    stand-in)."""
    return Swap(
        database_url=database_url,
        redis_url=redis_url,
        ports=ports,
        paths={"/srv/chatdesk": str(tmp / "srv")},
        provider=f"http://127.0.0.1:{ports[8001]}/api",
    )


def pgrep_matches(pattern: str, pid: int) -> bool:
    """Whether `pgrep -f PATTERN` (compose's health check) finds the process tree of `pid`."""
    pids = [
        pid,
        *(
            int(p)
            for p in subprocess.run(
                ["pgrep", "-g", str(os.getpgid(pid))], capture_output=True, text=True
            ).stdout.split()
        ),
    ]
    for one in pids:
        with open(f"/proc/{one}/cmdline", "rb") as f:
            cmdline = f.read().replace(b"\0", b" ").decode().strip()
        if re.search(pattern, cmdline):
            return True
    return False


@pytest.mark.integration
@pytest.mark.services
def test_it_runs_compose_the_dockerfile_and_the_operations_guide_as_written(
    transactional_db, tmp_path
):
    """The image's collectstatic step, then compose's web (migrate && daphne), worker and
    scheduler with compose's environment (DEBUG=0, the secrets from .env as .env.example has
    them), the Dockerfile's CMD, the guide's `--proxy-headers` daphne, a second worker and the
    guide's scheduler; requests go through a proxy that ends "TLS" as the guide asks. Then the
    guide's backup and restore blocks, on the data this run made."""
    database_url = database_url_for_tests()
    require(database_url.startswith("postgres"), "needs PostgreSQL")
    require(bool(os.environ.get("REDIS_URL")), "needs Redis (REDIS_URL)")
    redis_url = redis_url_for_tests()
    redis.Redis.from_url(redis_url).flushdb()
    logs = tmp_path / "logs"
    logs.mkdir()
    (tmp_path / "srv").mkdir()
    ports = {"web": free_port(), "proxied": free_port(), "cmd": free_port(), "sim": free_port()}
    swap = production_swap(
        database_url, redis_url, tmp_path, ports={8000: ports["web"], 8001: ports["sim"]}
    )
    # Image build step: collectstatic (DEBUG=0 serves from STATIC_ROOT only).
    for command in dockerfile_commands()[:-1]:
        done = run(command, swap=swap, image=True)
        assert done.returncode == 0, f"{command.text}:\n{done.stderr[-2000:]}"
    compose_by = {c.source.split(".")[-2]: c for c in compose_commands()}
    assert set(compose_by) == {"web", "worker", "scheduler"}
    table = {c.program: c for c in operations_table_commands()}
    assert set(table) == {"daphne", "dramatiq", "manage.py scheduler"}
    cmd = dockerfile_commands()[-1]
    started = []
    try:
        with ForwardedProxy(f"http://127.0.0.1:{ports['web']}") as proxy:
            # The simulator stands in for WaSender, with the same secret; WaSender calls the
            # proxy's address (the public one), as configured on its side.
            sim_swap = production_swap(
                database_url,
                redis_url,
                tmp_path,
                ports={8000: int(proxy.url.rsplit(":", 1)[1]), 8001: ports["sim"]},
            )
            sim_line = next(c for c in trial_commands() if c.program == "manage.py wasender_sim")
            sim = Documented(sim_line.source, sim_line.text, compose_by["web"].env)
            launches = [
                ("simulator", sim, sim_swap),
                ("web", compose_by["web"], swap),
                ("worker", compose_by["worker"], swap),
                ("scheduler", compose_by["scheduler"], swap),
                (
                    "dockerfile-cmd",
                    cmd,
                    production_swap(
                        database_url,
                        redis_url,
                        tmp_path,
                        ports={8000: ports["cmd"], 8001: ports["sim"]},
                    ),
                ),
                (
                    "ops-web",
                    table["daphne"],
                    production_swap(
                        database_url,
                        redis_url,
                        tmp_path,
                        ports={8000: ports["proxied"], 8001: ports["sim"]},
                    ),
                ),
                ("ops-worker", table["dramatiq"], swap),
            ]
            for name, command, its_swap in launches:
                started.append(start(name, command, swap=its_swap, logs=logs, image=True))
            by_name = {s.name: s for s in started}
            for port in (ports["web"], ports["cmd"], ports["proxied"]):
                wait_until(
                    lambda p=port: http_ok(f"http://127.0.0.1:{p}/readyz"),
                    timeout=90,
                    what=f"/readyz on {port}",
                    check=none_exited(started),
                )
            wait_until(
                lambda: redis.Redis.from_url(redis_url).exists(SCHEDULER_LOCK),
                timeout=60,
                what="the scheduler's lock",
                check=none_exited(started),
            )
            # Without the proxy's header, DEBUG=0 sends a browser to HTTPS.
            plain = httpx.get(f"http://127.0.0.1:{ports['web']}/api/v1/openapi.json")
            assert plain.status_code == 301
            customers_for_the_campaign()
            token = ApiToken.issue(user=make_user("alice", "admin"), name="prueba")[1]
            sim_url = f"http://127.0.0.1:{ports['sim']}"
            with api(proxy.url, token) as client:
                send_and_campaign_reach_the_simulator(client, sim_url, started)
            compose_health_checks(by_name, ports["web"])
            # The guide's own scheduler line, once compose's has let go of the lock.
            stop(by_name["scheduler"])
            guide_scheduler = start(
                "ops-scheduler", table["manage.py scheduler"], swap=swap, logs=logs, image=True
            )
            started.append(guide_scheduler)
            wait_until(
                lambda: redis.Redis.from_url(redis_url).exists(SCHEDULER_LOCK),
                timeout=60,
                what="the guide's scheduler takes the lock",
                check=none_exited([guide_scheduler]),
            )
            for process in started:
                if process.name != "scheduler":
                    assert process.proc.poll() is None, f"{process.name}:\n{log_text(process.log)}"
        operations_blocks_run(database_url, redis_url, tmp_path)
    finally:
        for process in reversed(started):
            stop(process)


def compose_health_checks(by_name: dict, web_port: int) -> None:
    services = compose()["services"]
    web_check = services["web"]["healthcheck"]["test"]
    assert web_check[0] == "CMD"
    probe = Documented(
        "docker-compose.yml web healthcheck", shlex.join(web_check[1:]), by_name["web"].command.env
    )
    done = run(probe, swap=Swap(ports={8000: web_port}), image=True)
    assert done.returncode == 0, done.stderr
    for name in ("worker", "scheduler"):
        test = services[name]["healthcheck"]["test"]
        pattern = re.search(r"pgrep -f '([^']+)'", test[1]).group(1)
        assert pgrep_matches(pattern, by_name[name].proc.pid), (name, pattern)


def operations_blocks_run(database_url: str, redis_url: str, tmp: Path) -> None:
    """docs/*.md's shell blocks, in order, each line as written (the server, the database
    names, the dump's date and its folder swapped): the backup, then the restore and its
    checks. The restored copy has the rows the original has."""
    restored = database_url.rsplit("/", 1)[1] + "_restored"
    subprocess.run(
        ["dropdb", "--if-exists", f"--maintenance-db={database_url}", restored], check=True
    )
    swap = Swap(
        database_url=database_url,
        redis_url=redis_url,
        databases={"chatdesk_restored": restored},
        paths={"--file=chatdesk-": f"--file={tmp}/chatdesk-"},
    )
    ran = 0
    try:
        for command in commands_for("operations blocks"):
            done = run(command, swap=swap, image=True)
            assert done.returncode == 0, f"{command.source}: {command.text}\n{done.stderr[-2000:]}"
            ran += 1
            # The dump is named by the shell's `date +%F` (the machine's day, not Guayaquil's,
            # and a run may cross midnight): the restore reads the file the backup made.
            dumps = sorted(tmp.glob("chatdesk-*.dump"))
            if dumps and not swap.dump_name:
                swap = dataclasses.replace(swap, dump_name=str(dumps[0]))
        assert swap.dump_name and Path(swap.dump_name).exists()
        counts = (
            "SELECT (SELECT count(*) FROM inbox_message), (SELECT count(*) FROM customers_customer)"
        )
        original = psql(database_url, counts)
        assert psql(f"{database_url.rsplit('/', 1)[0]}/{restored}", counts) == original
        assert original.split("|")[0] != "0"
    finally:
        subprocess.run(["dropdb", "--if-exists", f"--maintenance-db={database_url}", restored])
    assert ran >= 5


def psql(url: str, query: str) -> str:
    return subprocess.run(
        ["psql", "-tAc", query, url], capture_output=True, text=True, check=True
    ).stdout.strip()


# --- make demo, make test, the README's test selections ---------------------------------


@pytest.mark.integration
def test_it_runs_make_demo_as_written(running_demo):
    """`make demo` with a shell's environment only (the port and the SQLite file swapped):
    it migrates, seeds, serves, and a message sent over the API reaches its simulator. The
    Makefile's demo recipe is what the README's `manage.py runembedded` names."""
    recipe = re.search(r"^demo:.*\n((?:\t.*\n)+)", (ROOT / "Makefile").read_text(), re.M)
    assert "manage.py runembedded" in recipe.group(1)
    demo = running_demo
    token = demo.manage("create_api_token", "admin", "prueba")
    assert token.returncode == 0, token.stderr
    with api(demo.url, token.stdout.strip()) as client:
        sent = client.post("/api/v1/messages", json={"phone": "0968196046", "text": "Hola"})
        assert sent.status_code == 201, sent.text
    wait_until(
        lambda: sim_sends(demo.simulator).get("+593968196046", 0) >= 1,
        timeout=60,
        what="the demo's send at its simulator",
        check=none_exited([demo.started]),
    )
    assert "Demo data seeded" in log_text(demo.started.log)


def test_it_runs_make_test_in_ci_as_the_readme_does():
    """`make test` and `make lint` are what CI runs (.ci/run), `make test` with the README's
    trial variables: the suite cannot run itself (nor judge its own formatting), CI is where
    those lines are run as written."""
    script = (ROOT / ".ci" / "run").read_text()
    assert {c.program for c in commands_for("ci")} == {"make test", "make lint"}
    for command in commands_for("ci"):
        assert re.search(rf"^{re.escape(command.text)}$", script, re.M), command.text
    trial = {c.program: c.environ for c in trial_commands()}["make test"]
    for name in ("DATABASE_URL", "REDIS_URL"):
        assert f"export {name}={trial[name]}" in script


@pytest.mark.integration
def test_it_selects_the_tests_the_readme_names():
    """The README's pytest lines select tests (collected as written, plus --collect-only: the
    tests themselves run in `make test`)."""
    for command in commands_for("pytest"):
        done = run(
            Documented(command.source, f"{command.text} --collect-only -q -p no:cacheprovider"),
            swap=Swap(),
        )
        assert done.returncode == 0, f"{command.text}\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
        selected = re.search(r"(\d+)(?:/\d+)? tests? (?:collected|selected)", done.stdout)
        assert selected and int(selected.group(1)) > 0, (command.text, done.stdout[-500:])


def collected(text: str) -> list[str]:
    """The test ids `text` (a pytest command) selects, collected only: `make test` runs them."""
    line = Documented("collect", f"{text} --collect-only -q -p no:cacheprovider")
    done = run(line, swap=Swap())
    assert done.returncode == 0, f"{text}\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
    return [line for line in done.stdout.splitlines() if "::" in line]


@pytest.mark.integration
def test_it_selects_the_inner_loop_make_test_fast_names():
    """`make test-fast` is the suite's own pytest on a marker expression: it is collected here
    (running it would run the suite inside itself; its tests run in `make test`). It selects
    tests, and none from the folders its markers leave out."""
    for command in commands_for("inner loop"):
        recipe = make_recipe(command.words[1]).strip()
        assert recipe.startswith("$(BIN)/python -m pytest -m "), recipe
        ids = collected(recipe.replace("$(BIN)", str(BIN)))
        assert len(ids) > 100, ids
        for folder in ("browser", "faults", "integration"):
            assert not [i for i in ids if i.startswith(f"tests/{folder}/")], folder


# --- management commands named in prose ------------------------------------------------------


PLACEHOLDERS = {"FILE": "{csv}", "USER": "alice", "NAME": "tienda", "<username>": "alice"}


def fill(text: str, csv: Path) -> str:
    words = []
    for word in text.replace("[", "").replace("]", "").split():
        words.append(PLACEHOLDERS.get(word, word).format(csv=csv))
    line = " ".join(words)
    return line if line.startswith("python") else f"python {line}"


@pytest.mark.integration
@pytest.mark.services
def test_it_runs_the_management_commands_the_docs_name(transactional_db, tmp_path):
    """`manage.py import_customers FILE`, `create_api_token USER NAME`, `ops_status [--minutes
    10] [--json]`, `check --deploy`, `axes_reset_username <username>`... with the placeholders
    filled, in the environment of the document that names them: the README's trial variables,
    or the app's (.env.example) for docs/."""
    database_url = database_url_for_tests()
    require(database_url.startswith("postgres"), "needs PostgreSQL")
    require(bool(os.environ.get("REDIS_URL")), "needs Redis (REDIS_URL)")
    redis_url = redis_url_for_tests()
    redis.Redis.from_url(redis_url).flushdb()
    make_user("alice", "admin")
    csv = tmp_path / "clientes.csv"
    csv.write_text("nombre;telefono;ciudad\nAna Pérez;0968196046;Quito\n", encoding="utf-8")
    trial_env = {c.program: c.env for c in trial_commands()}["manage.py migrate"]
    swap = Swap(
        database_url=database_url, redis_url=redis_url, paths={"/srv/chatdesk": str(tmp_path)}
    )
    commands = commands_for("manage")
    assert {"manage.py import_customers", "manage.py create_api_token"} <= {
        c.program for c in commands
    }
    for command in commands:
        env = env_example() if command.source.startswith("docs/") else trial_env
        line = Documented(command.source, fill(command.text, csv), env)
        done = run(line, swap=swap, image=True)
        assert done.returncode == 0, f"{command.source}: {line.text}\n{done.stderr[-2000:]}"
    assert Customer.objects.filter(phone="+593968196046").exists()


@pytest.mark.integration
def test_it_runs_make_messages(tmp_path):
    """`make messages` (README, Translations), in a copy of the tree so the committed
    catalogue is not rewritten by the test."""
    if not (shutil.which("xgettext") and shutil.which("msgfmt")):
        pytest.skip("GNU gettext (xgettext, msgfmt) is not installed: `make messages` needs it")
    copy = tmp_path / "tree"
    files = (
        subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True)
        .stdout.decode()
        .split("\0")
    )
    for name in filter(None, files):
        target = copy / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if (ROOT / name).is_file():
            shutil.copy2(ROOT / name, target)
    (copy / ".venv").symlink_to(BIN.parent)
    compiled = copy / "locale" / "en" / "LC_MESSAGES" / "django.mo"
    compiled.unlink()
    for command in commands_for("make messages"):
        done = run(command, swap=Swap(), cwd=copy)
        assert done.returncode == 0, done.stderr[-2000:]
    assert compiled.stat().st_size > 0


def test_it_builds_the_image_where_a_docker_engine_runs(tmp_path):
    docker = shutil.which("docker")
    engine = docker and subprocess.run([docker, "info"], capture_output=True).returncode == 0
    if not engine:
        pytest.skip(
            "no Docker engine here (`docker info` fails): the image is not built and "
            "`docker compose up --scale worker=3` is not run; every service's command runs "
            "above as a process, with compose's environment"
        )
    built = subprocess.run(
        [docker, "build", "-q", "-t", "chatdesk:test", "."],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    for command in commands_for("docker"):
        env_file = tmp_path / ".env"
        env_file.write_text((ROOT / ".env.example").read_text())
        words = command.text.split()
        check = [docker, "compose", "--env-file", str(env_file), "config", "--quiet"]
        assert words[:2] == ["docker", "compose"]
        done = subprocess.run(check, cwd=ROOT, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr


def test_it_gives_no_process_a_django_settings_module():
    assert "DJANGO_SETTINGS_MODULE" not in shell_env()
    assert "DJANGO_SETTINGS_MODULE" not in shell_env(image=True)
    for command in documented_commands():
        assert "DJANGO_SETTINGS_MODULE" not in command.environ, command.source


def test_it_reads_the_shell_blocks_only():
    blocks = [b for path in ("README.md", "docs/operations.md") for b in shell_blocks(path)]
    assert blocks and all("{" not in text.split("\n")[0] for _n, _h, text in blocks)
    assert markdown_block_commands("docs/operations.md")


def make_recipe(target: str) -> str:
    found = re.search(rf"^{target}:.*\n((?:\t.*\n)+)", (ROOT / "Makefile").read_text(), re.M)
    assert found, f"no make target {target}"
    return found.group(1)


def test_it_runs_the_tests_make_screenshots_names():
    """`make screenshots` only runs tests of the suite with a folder to keep their pictures in
    (docs/screenshots/): `make test` runs the same tests (pictures into test-results/), so the
    target's work is run by the suite; running the target itself would rewrite committed
    files."""
    for command in commands_for("suite target"):
        target = command.words[1]
        recipe = make_recipe(target)
        assert "$(BIN)/python -m pytest" in recipe, recipe
        paths = re.findall(r"tests/\S+\.py", recipe)
        assert paths and all((ROOT / path).is_file() for path in paths), recipe
        for path in paths:
            names = re.search(r'-k "([^"]+)"', recipe).group(1).split(" or ")
            source = (ROOT / path).read_text()
            assert any(f"def test_it_{n}" in source or f"_{n}" in source for n in names), path
