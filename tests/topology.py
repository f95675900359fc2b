"""What the documentation tells a person to run, read from the documentation, and the
production topology started from it.

Rule: documented means tested, verbatim. So the commands are not copied into tests: they are
read here from the README's and docs/*.md's shell blocks, the operations guide's process table,
the Dockerfile (RUN's manage.py steps, CMD) and docker-compose.yml (each service's command, with
the environment compose would give it: the image's ENV, then `env_file: .env` as the README
says to write it, from .env.example, then `environment:`). Every command comes with the
environment its document gives, and nothing else.

`production_topology` (a pytest fixture; `topology_run` is the context manager under it)
guarantees, when it yields:

- every process was started by its line of the README's "Running with PostgreSQL and Redis"
  block, as written, by /bin/sh in the repository root, with only the variables that block
  exports (plus a shell's PATH, HOME and LANG): no DJANGO_SETTINGS_MODULE, no test flag;
- the only changes to the lines and their variables are swaps: PostgreSQL -> the test's
  database (pytest-django's, so a test needs `transactional_db`), Redis -> the tests' Redis
  database (flushed first), ports 8000 / 8001 -> free ports (the second daphne: another one);
- `migrate` exited 0; two daphnes (`web1`, `web2`) answer /readyz with 200; the dramatiq
  worker's two processes said they are ready; the scheduler holds its Redis lock; the
  simulator answers, and its webhooks go to `web1` (its `--webhook-url`, as documented);
- with `cloudapi` (the `production_topology_cloudapi` fixture), the README's "A Cloud API
  number beside it" block too: its META_* exports in every process's environment (swapped:
  port 8002 -> a free port), and its `cloudapi_sim` line, webhooks to `web1`;
- every process is stopped (its whole process group) afterwards; each one's output is kept in
  a log file (`topology.logs`), printed when the test fails (`topology.logs_tail()`).

It is what the issue-14 browser journeys and the documented-commands test (test_documented.py)
share. Processes that died are reported by `topology.check_alive()`.
"""

import os
import re
import shlex
import signal
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
import redis
import yaml

from tests.procs import (
    BIN,
    ROOT,
    answers,
    database_env_for_tests,
    free_port,
    free_port_run,
    redis_url_for_tests,
)
from tests.waiting import wait_until

DOC_FILES = ("README.md", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md")))
TRIAL_HEADING = "## Running with PostgreSQL and Redis"
CLOUDAPI_HEADING = "### A Cloud API number beside it"
PROVIDER = "https://www.wasenderapi.com/api"
SHELL_LANGS = {"sh", "bash", "shell", "console"}
# Words a command starts with (after VAR=value prefixes). An inline `span` starting with one of
# these and carrying an argument is a command; `daphne` alone is a name.
PROGRAMS = {
    "daphne",
    "dramatiq",
    "python",
    "python3",
    "manage.py",
    "make",
    "docker",
    "pg_dump",
    "pg_restore",
    "createdb",
    "dropdb",
    "psql",
    "pytest",
    "sh",
    "bash",
    "curl",
}
# The documented bind-all address and example host name, both this machine's loopback here.
DOCUMENTED_HOSTS = {"0.0.0.0": "127.0.0.1", "chatdesk.example.com": "127.0.0.1"}  # noqa: S104
SCHEDULER_LOCK = "dramatiq-scheduler"  # dramatiq-crontab's Redis lock
ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")


# --- reading the documents --------------------------------------------------------------------


@dataclass(frozen=True)
class Documented:
    """One command as a document gives it: `text` is what a person types (comment removed),
    `env` the variables the document sets for it (exports before it in its block, or what
    compose gives a service)."""

    source: str  # "README.md:152", "docker-compose.yml services.web.command", ...
    text: str
    env: tuple[tuple[str, str], ...] = ()
    block: bool = True  # False: an inline `span` in prose or a table

    @property
    def environ(self) -> dict[str, str]:
        return dict(self.env)

    @property
    def words(self) -> list[str]:
        """The command's words, without VAR=value prefixes and with the program's path dropped
        (`.venv/bin/python` -> `python`)."""
        try:
            words = shlex.split(self.text)
        except ValueError:
            words = self.text.split()
        while words and ASSIGNMENT.match(words[0]):
            words.pop(0)
        if words:
            words[0] = words[0].rsplit("/", 1)[-1]
        return words

    @property
    def program(self) -> str:
        """`manage.py <subcommand>` for Django commands, else the program's name."""
        words = self.words
        if not words:
            return ""
        if words[0] in ("python", "python3") and len(words) > 1 and words[1] == "manage.py":
            words = words[1:]
        if words[0] == "manage.py" and len(words) > 1:
            return f"manage.py {words[1]}"
        if words[0] == "make" and len(words) > 1:
            return f"make {words[1]}"
        if words[0] == "docker" and len(words) > 1:
            return f"docker {words[1]}"
        return words[0]


def _strip_comment(line: str) -> str:
    return re.sub(r"(^|\s)#(\s.*)?$", "", line).rstrip()


def _exports(line: str) -> dict[str, str] | None:
    if not line.startswith("export "):
        return None
    return dict(word.split("=", 1) for word in shlex.split(line)[1:] if "=" in word)


def shell_blocks(path: str) -> Iterator[tuple[int, str, str]]:
    """(first line number, heading above it, text) of every shell code block of a Markdown
    file; blocks tagged with another language (json, yaml...) are not commands."""
    lines = (ROOT / path).read_text().splitlines()
    heading, i = "", 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("#") and not line.startswith("#!"):
            heading = line.strip()
        fence = re.match(r"^```\s*(\S*)\s*$", line)
        if fence:
            start, body = i + 1, []
            i += 1
            while i < len(lines) and not lines[i].startswith("```"):
                body.append(lines[i])
                i += 1
            if fence.group(1) in SHELL_LANGS:
                yield start + 1, heading, "\n".join(body)
        i += 1


def markdown_block_commands(path: str) -> list[Documented]:
    """Each line of each shell block, with the variables exported above it in its block; in
    docs/ (the operator's guides) on top of .env.example's, the app's environment there."""
    commands = []
    for first, _heading, text in shell_blocks(path):
        env: dict[str, str] = dict(env_example()) if path.startswith("docs/") else {}
        for offset, raw in enumerate(text.splitlines()):
            line = _strip_comment(raw.strip())
            if not line:
                continue
            exported = _exports(line)
            if exported is not None:
                env.update(exported)
                continue
            commands.append(Documented(f"{path}:{first + offset}", line, tuple(env.items())))
    return commands


def markdown_inline_commands(path: str) -> list[Documented]:
    """Inline `spans` that are commands (a program word and at least one argument)."""
    found = []
    in_block = False
    for number, line in enumerate((ROOT / path).read_text().splitlines(), start=1):
        if line.startswith("```"):
            in_block = not in_block
            continue
        if in_block:
            continue
        for span in re.findall(r"`([^`]+)`", line):
            command = Documented(f"{path}:{number}", span.strip(), block=False)
            words = command.words
            if len(words) > 1 and words[0] in PROGRAMS:
                found.append(command)
    return found


def env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines as docker compose's `env_file` reads them (comments and blanks
    skipped, `KEY=` is an empty value)."""
    values = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        values[key.strip()] = value.strip()
    return values


def dockerfile() -> dict:
    """The Dockerfile's ENV (as a dict), its RUN lines and its CMD (a list)."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    env, runs, cmd = {}, [], None
    for line in text.splitlines():
        word, _, rest = line.strip().partition(" ")
        if word == "ENV":
            env.update(dict(part.split("=", 1) for part in shlex.split(rest)))
        elif word == "RUN":
            runs.append(rest.strip())
        elif word == "CMD":
            cmd = yaml.safe_load(rest)
    return {"env": env, "runs": runs, "cmd": cmd}


def dockerfile_commands() -> list[Documented]:
    """The CMD, and the RUN steps that are chatdesk's own commands (collectstatic); pip and
    useradd are the image build's, proven only by `docker build`."""
    image = dockerfile()
    env = tuple(image["env"].items())
    commands = []
    for run in image["runs"]:
        for part in run.split("&&"):
            part = part.strip()
            if "manage.py" in part:
                commands.append(Documented("Dockerfile RUN", part, env))
    commands.append(Documented("Dockerfile CMD", shlex.join(image["cmd"]), compose_env("web")))
    return commands


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def compose_env(service: str) -> tuple[tuple[str, str], ...]:
    """What a chatdesk container of `service` gets: the image's ENV, then the .env file the
    README says to write (.env.example's lines), then the service's `environment:`."""
    spec = compose()["services"][service]
    env = dict(dockerfile()["env"])
    if spec.get("env_file"):
        env.update(env_file(ROOT / ".env.example"))
    env.update({k: str(v) for k, v in (spec.get("environment") or {}).items()})
    return tuple(env.items())


def compose_commands() -> list[Documented]:
    """The command of every service built from our image (postgres and redis are images of
    their own: the local servers stand in for them)."""
    commands = []
    for name, spec in compose()["services"].items():
        if "build" not in spec or "command" not in spec:
            continue
        command = spec["command"]
        text = shlex.join(command) if isinstance(command, list) else command.strip()
        text = re.sub(r"\s*\n\s*", " ", text)
        commands.append(
            Documented(f"docker-compose.yml services.{name}.command", text, compose_env(name))
        )
    return commands


def operations_table_commands() -> list[Documented]:
    """docs/operations.md's process table (the one with a `command` column): the first `span`
    of that column, run with .env.example's variables (the guide's "Settings": all from the
    environment, .env.example lists them)."""
    found, column = [], None
    lines = (ROOT / "docs" / "operations.md").read_text().splitlines()
    for number, line in enumerate(lines, start=1):
        if not line.startswith("|"):
            column = None
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if column is None and "command" in cells:
            column = cells.index("command")
            continue
        span = re.match(r"`([^`]+)`", cells[column]) if column is not None else None
        if span:
            found.append(Documented(f"docs/operations.md:{number}", span.group(1), env_example()))
    return found


def env_example() -> tuple[tuple[str, str], ...]:
    """.env.example's variables: the app's environment as the operator's guides give it."""
    return tuple(env_file(ROOT / ".env.example").items())


def documented_commands() -> list[Documented]:
    """Every command the project documents, each once per place it is written."""
    commands: list[Documented] = []
    for path in DOC_FILES:
        commands += markdown_block_commands(path)
    table = operations_table_commands()
    commands += table
    in_table = {(c.source, c.text) for c in table}
    for path in DOC_FILES:
        commands += [
            c for c in markdown_inline_commands(path) if (c.source, c.text) not in in_table
        ]
    commands += dockerfile_commands()
    commands += compose_commands()
    return commands


def trial_commands() -> list[Documented]:
    """The README's "Running with PostgreSQL and Redis" block, line by line."""
    return block_commands("README.md", TRIAL_HEADING)


def cloudapi_commands() -> list[Documented]:
    """The README's block that adds a Cloud API number to the trial: META_* exports (for
    every process of the trial) and the Cloud API simulator's line."""
    return block_commands("README.md", CLOUDAPI_HEADING)


def block_commands(path: str, heading: str) -> list[Documented]:
    """The commands of the first shell block under `heading`."""
    for first, found, text in shell_blocks(path):
        if found == heading:
            last = first + len(text.splitlines())
            return [
                c
                for c in markdown_block_commands(path)
                if first <= int(c.source.split(":")[1]) < last
            ]
    raise LookupError(f"{path} has no shell block under {heading!r}")


def trial_command(program: str) -> Documented:
    """The trial block's line for `program` (`daphne`, `manage.py migrate`...)."""
    for command in trial_commands():
        if command.program == program:
            return command
    raise LookupError(f"the README's trial block has no {program!r} line")


# --- swapping hosts, ports and database names ---------------------------------------------------


@dataclass
class Swap:
    """The only changes a test makes to a documented command or variable: where PostgreSQL,
    Redis, WaSender and the documented ports and paths are on this machine."""

    database_url: str = ""
    redis_url: str = ""
    ports: dict[int, int] = field(default_factory=dict)
    provider: str = ""  # the simulator's API root, for WaSender's
    databases: dict[str, str] = field(default_factory=dict)  # other database names -> ours
    paths: dict[str, str] = field(default_factory=dict)
    hosts: dict[str, str] = field(default_factory=lambda: dict(DOCUMENTED_HOSTS))
    dump_name: str = ""  # the example dump file's dated name -> the one made here

    def _postgres(self, match: re.Match) -> str:
        if not self.database_url:
            return match.group(0)
        name = match.group(1) or ""
        base = self.database_url.rsplit("/", 1)[0]
        ours = self.databases.get(name, self.database_url.rsplit("/", 1)[1])
        return f"{base}/{ours}"

    def text(self, text: str) -> str:
        for name, ours in self.databases.items():
            text = re.sub(rf"(?<![\w/]){re.escape(name)}(?!\w)", ours, text)
        text = re.sub(r"postgres(?:ql)?://[^\s\"'`]*?/(\w+)(?=[\s\"'`]|$)", self._postgres, text)
        if self.redis_url:
            text = re.sub(r"redis://[^\s\"'`]+", self.redis_url, text)
        if self.provider:
            text = text.replace(PROVIDER, self.provider)
        for port, ours in self.ports.items():
            text = re.sub(rf"(?<=[:\s=]){port}(?!\d)", str(ours), text)
        for host, ours in self.hosts.items():
            text = re.sub(rf"(?<![\w.]){re.escape(host)}(?![\w.])", ours, text)
        for path, ours in self.paths.items():
            text = text.replace(path, ours)
        if self.dump_name:
            text = re.sub(r"chatdesk-\d{4}-\d{2}-\d{2}\.dump", self.dump_name, text)
        return text

    def env(self, env: dict[str, str]) -> dict[str, str]:
        return {key: self.text(value) for key, value in env.items()}


def shell_env(*, image: bool = False) -> dict[str, str]:
    """What a login shell has before the document's exports: PATH, HOME, LANG. `image`: the
    container's PATH, where chatdesk's scripts (python, daphne, dramatiq) are installed."""
    system = [p for p in os.environ.get("PATH", "/usr/bin:/bin").split(":") if p != str(BIN)]
    return {
        "PATH": ":".join([str(BIN), *system] if image else system),
        "HOME": os.environ.get("HOME", "/root"),
        "LANG": "C.UTF-8",
    }


# --- processes --------------------------------------------------------------------------------


@dataclass
class Started:
    name: str
    command: Documented
    text: str  # as run (swapped)
    env: dict[str, str]
    proc: subprocess.Popen
    log: Path


def start(
    name: str, command: Documented, *, swap: Swap, logs: Path, image=False, extra_env=None
) -> Started:
    """Start `command` as a person would type it, with its documented environment swapped
    (`extra_env`: a swap that is a variable, such as SQLITE_PATH for var/chatdesk.sqlite3)."""
    text = swap.text(command.text)
    env = {**shell_env(image=image), **swap.env(command.environ), **(extra_env or {})}
    log = logs / f"{name}.log"
    out = open(log, "ab")  # noqa: SIM115 (kept open by the child)
    proc = subprocess.Popen(
        ["/bin/sh", "-c", f"exec {text}"],
        cwd=ROOT,
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    out.close()
    return Started(name, command, text, env, proc, log)


def run(command: Documented, *, swap: Swap, image=False, timeout=300, cwd: Path = ROOT, **kw):
    """Run a short command to its end; returns the CompletedProcess (text output)."""
    text = swap.text(command.text)
    env = {**shell_env(image=image), **swap.env(command.environ), **kw.pop("extra_env", {})}
    return subprocess.run(
        ["/bin/sh", "-c", text],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        **kw,
    )


def stop(started: Started, timeout: float = 15.0) -> None:
    proc = started.proc
    if proc.poll() is not None:
        return
    with suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def log_text(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


def none_exited(procs) -> Callable[[], None]:
    """wait_until's `check` for started processes: stop waiting, with its log, at the first
    one that exited."""

    def check() -> None:
        for started in procs:
            if started.proc.poll() is not None:
                raise RuntimeError(
                    f"{started.name} exited with {started.proc.returncode}:\n"
                    f"{log_text(started.log)[-3000:]}"
                )

    return check


def http_ok(url: str, *, headers: dict | None = None) -> bool:
    try:
        return httpx.get(url, timeout=2.0, headers=headers).status_code == 200
    except httpx.TransportError:
        return False


class ForwardedProxy:
    """The reverse proxy docs/operations.md asks for, minus TLS: it sets (never passes on)
    X-Forwarded-Proto: https and X-Forwarded-For, and forwards HTTP to one daphne. With
    DEBUG=0 a request without it is redirected to HTTPS, as production wants."""

    def __init__(self, upstream: str):
        self.upstream = upstream
        client = httpx.Client(base_url=upstream, timeout=30.0)

        class Handler(BaseHTTPRequestHandler):
            def _forward(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                skip = {"host", "x-forwarded-proto", "x-forwarded-for", "connection"}
                headers = {k: v for k, v in self.headers.items() if k.lower() not in skip}
                headers.update(
                    {"X-Forwarded-Proto": "https", "X-Forwarded-For": self.client_address[0]}
                )
                answer = client.request(self.command, self.path, content=body, headers=headers)
                self.send_response(answer.status_code)
                for key, value in answer.headers.multi_items():
                    if key.lower() not in ("content-length", "transfer-encoding", "connection"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _forward

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._client = client
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
        self._client.close()


# --- the topology -----------------------------------------------------------------------------


@dataclass
class Topology:
    web1: str
    web2: str
    simulator: str
    processes: dict[str, Started]
    logs: dict[str, Path]
    env: dict[str, str]  # the trial block's variables, swapped: what every process got
    swap: Swap
    cloudapi: str = ""  # the Cloud API simulator's address, when the topology runs one

    def sim_config(self, **knobs) -> dict:
        """Change the simulator's knobs while it runs (SimConfig field names)."""
        answer = httpx.post(f"{self.simulator}/_sim/config", json=knobs, timeout=5.0)
        answer.raise_for_status()
        return answer.json()

    def sim_stats(self) -> dict:
        return httpx.get(f"{self.simulator}/_sim/stats", timeout=5.0).json()

    def sim_reset(self) -> None:
        httpx.post(f"{self.simulator}/_sim/reset", timeout=5.0).raise_for_status()

    def manage(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        """`.venv/bin/python manage.py ARGS` with the trial block's variables, as a person at
        the same terminal would run it."""
        line = ".venv/bin/python manage.py " + shlex.join(args)
        command = Documented("topology.manage", line, tuple(self.env.items()))
        return run(command, swap=Swap(), timeout=timeout)

    def check_alive(self) -> None:
        dead = {
            n: s.proc.returncode for n, s in self.processes.items() if s.proc.poll() is not None
        }
        assert not dead, f"processes exited: {dead}\n{self.logs_tail()}"

    def logs_tail(self, lines: int = 60) -> str:
        parts = []
        for name, path in self.logs.items():
            tail = "\n".join(log_text(path).splitlines()[-lines:])
            parts.append(f"--- {name} ({path}) ---\n{tail}")
        return "\n".join(parts)


def worker_ready(started: Started, processes: int) -> bool:
    return log_text(started.log).count("ready for action") >= processes


def with_exports(command: Documented, exports: dict[str, str]) -> Documented:
    """`command` in a terminal where `exports` were exported too (after its own block's)."""
    return Documented(command.source, command.text, tuple({**command.environ, **exports}.items()))


def cloudapi_exports() -> dict[str, str]:
    """The META_* variables the README's Cloud API block exports."""
    return cloudapi_commands()[-1].environ


@contextmanager
def topology_run(
    *, logs: Path, database_url: str, redis_url: str, seed: bool = False, cloudapi: bool = False
):
    """Start the README's production processes (see the module docstring); `seed` also runs
    its `seed_demo --if-empty` line. `cloudapi`: the README's Cloud API block too, as it says:
    its exports in every process's terminal, and the Cloud API simulator (port 8002 swapped),
    its webhooks to `web1`."""
    logs.mkdir(parents=True, exist_ok=True)
    redis.Redis.from_url(redis_url).flushdb()
    web1, web2, sim = free_port(), free_port(), free_port()
    meta = free_port() if cloudapi else 0
    sims = {8001: sim, **({8002: meta} if cloudapi else {})}
    base = Swap(database_url=database_url, redis_url=redis_url, ports={8000: web1, **sims})
    exports = cloudapi_exports() if cloudapi else {}

    def line(program: str) -> Documented:
        return with_exports(trial_command(program), exports)

    env = {**shell_env(), **base.env(line("daphne").environ)}
    for program in ("manage.py migrate", *(("manage.py seed_demo",) if seed else ())):
        done = run(line(program), swap=base)
        (logs / f"{program.split()[-1]}.log").write_text(done.stdout + done.stderr)
        assert done.returncode == 0, f"{program} exited {done.returncode}:\n{done.stderr[-3000:]}"
    with ExitStack() as stack:
        started: dict[str, Started] = {}

        def launch(name: str, program: str, swap: Swap) -> Started:
            process = start(name, line(program), swap=swap, logs=logs)
            stack.callback(stop, process)
            started[name] = process
            return process

        launch("web1", "daphne", base)
        launch("web2", "daphne", Swap(database_url, redis_url, ports={8000: web2, **sims}))
        launch("worker", "dramatiq", base)
        launch("scheduler", "manage.py scheduler", base)
        launch("simulator", "manage.py wasender_sim", base)
        if cloudapi:
            terminal = {**trial_command("daphne").environ, **exports}
            sim_line = with_exports(cloudapi_commands()[-1], terminal)
            started["cloudapi"] = start("cloudapi", sim_line, swap=base, logs=logs)
            stack.callback(stop, started["cloudapi"])
        procs = list(started.values())
        urls = {"web1": f"http://127.0.0.1:{web1}", "web2": f"http://127.0.0.1:{web2}"}
        for name, url in urls.items():
            wait_until(
                lambda u=url: http_ok(f"{u}/readyz"),
                timeout=60,
                what=f"{name} /readyz",
                check=none_exited(procs),
            )
        simulator = f"http://127.0.0.1:{sim}"
        wait_until(
            lambda: answers(f"{simulator}/_sim/stats"),
            timeout=60,
            what="simulator",
            check=none_exited(procs),
        )
        meta_url = f"http://127.0.0.1:{meta}" if cloudapi else ""
        if cloudapi:
            wait_until(
                lambda: answers(f"{meta_url}/_sim/stats"),
                timeout=60,
                what="the Cloud API simulator",
                check=none_exited(procs),
            )
        processes = int(re.search(r"--processes (\d+)", started["worker"].text).group(1))
        wait_until(
            lambda: worker_ready(started["worker"], processes),
            timeout=90,
            what="the worker's processes ready",
            check=none_exited(procs),
        )
        # Its "Starting scheduler" waits in a pipe's buffer (the trial sets no
        # PYTHONUNBUFFERED); the lock dramatiq-crontab takes in Redis says the same.
        lock = redis.Redis.from_url(redis_url)
        wait_until(
            lambda: lock.exists(SCHEDULER_LOCK),
            timeout=60,
            what="the scheduler's lock",
            check=none_exited(procs),
        )
        yield Topology(
            web1=urls["web1"],
            web2=urls["web2"],
            simulator=simulator,
            processes=started,
            logs={name: s.log for name, s in started.items()},
            env=env,
            swap=base,
            cloudapi=meta_url,
        )


def database_url_for_tests() -> str:
    """pytest-django's test database as a URL ("" on SQLite)."""
    return database_env_for_tests().get("DATABASE_URL", "")


@contextmanager
def _topology_for_a_test(tmp_path: Path, *, cloudapi: bool = False):
    from tests.conftest import require

    database_url = database_url_for_tests()
    require(database_url.startswith("postgres"), "the production topology needs PostgreSQL")
    require(bool(os.environ.get("REDIS_URL")), "the production topology needs Redis (REDIS_URL)")
    with topology_run(
        logs=tmp_path / "topology",
        database_url=database_url,
        redis_url=redis_url_for_tests(),
        cloudapi=cloudapi,
    ) as topology:
        yield topology
        # Shown by pytest only when the test failed ("Captured stdout teardown").
        print(topology.logs_tail())


@pytest.fixture
def production_topology(transactional_db, tmp_path):
    """The README's production processes on the test database and the tests' Redis database;
    see the module docstring. Skips without PostgreSQL and Redis (fails under
    CHATDESK_REQUIRE_SERVICES=1)."""
    with _topology_for_a_test(tmp_path) as topology:
        yield topology


@pytest.fixture
def production_topology_cloudapi(transactional_db, tmp_path):
    """production_topology with the README's Cloud API block: a second number, `meta`, on
    the Cloud API simulator (`topology.cloudapi`)."""
    with _topology_for_a_test(tmp_path, cloudapi=True) as topology:
        yield topology


# --- `make demo` --------------------------------------------------------------------------------


@dataclass
class Demo:
    url: str
    simulator: str
    started: Started
    sqlite_path: Path

    def manage(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        """A management command on the demo's database (DEBUG=1: a tool of the test's, run
        beside the demo, not a documented command)."""
        env = {**shell_env(), "SQLITE_PATH": str(self.sqlite_path), "DEBUG": "1"}
        return subprocess.run(
            [str(BIN / "python"), "manage.py", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )


def readme_command(program: str) -> Documented:
    for command in markdown_block_commands("README.md"):
        if command.program == program:
            return command
    raise LookupError(f"the README has no {program!r} line")


@contextmanager
def demo_run(*, logs: Path, sqlite_path: Path, timeout: float = 240):
    """The README's `make demo`, as written, with nothing in its environment but a shell's and
    two swaps: the port (`PORT=`, the Makefile's) and the SQLite file (`SQLITE_PATH`, instead of
    var/chatdesk.sqlite3). Yields once /readyz answers 200."""
    logs.mkdir(parents=True, exist_ok=True)
    port = free_port_run()
    command = readme_command("make demo")
    swapped = Documented(command.source, f"{command.text} PORT={port}", command.env)
    process = start(
        "make-demo", swapped, swap=Swap(), logs=logs, extra_env={"SQLITE_PATH": str(sqlite_path)}
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until(
            lambda: http_ok(f"{url}/readyz"),
            timeout=timeout,
            what="make demo's /readyz",
            check=none_exited([process]),
        )
        yield Demo(url, f"http://127.0.0.1:{port + 1}", process, sqlite_path)
    finally:
        stop(process)
