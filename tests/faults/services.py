"""Private PostgreSQL and Redis for the fault suite, and the chatdesk processes around them.

The machine's shared PostgreSQL (5432) and Redis (6379) serve every other test: the faults
never touch them. Each fault test gets its own Redis server (killed and restarted at will) and
its own database, copied from a migrated template, in one throwaway PostgreSQL cluster that
the session starts and may stop and start again. Everything is stopped, whole process groups,
and its directories removed, however a test ends.
"""

import glob
import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import time
from contextlib import ExitStack, suppress
from pathlib import Path

import httpx
import psycopg
import redis

from tests.procs import (
    PYTHON,
    ROOT,
    daphne_args,
    dramatiq_args,
    exited_check,
    free_port,
    process_env,
    running,
    stop,
)
from tests.waiting import wait_until

LOGS = ROOT / "var" / "test-logs" / "faults"
WEBHOOK_SECRET = "faults-webhook-secret"


def _version(path: str) -> tuple:
    return tuple(int(n) for n in re.findall(r"/postgresql/(\d+)", path)) or (0,)


def pg_bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=_version)
    return found[-1] if found else shutil.which(name)


def _postgres_user() -> bool:
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        return False
    return True


def missing_binaries() -> list[str]:
    missing = [name for name in ("initdb", "pg_ctl") if pg_bin(name) is None]
    if shutil.which("redis-server") is None:
        missing.append("redis-server")
    if os.geteuid() == 0 and not _postgres_user():
        missing.append("the postgres user")
    return missing


class Postgres:
    """A throwaway cluster: trust auth on loopback, no fsync (nothing here must survive a
    power cut, only a server restart)."""

    def __init__(self):
        self.root = Path(tempfile.mkdtemp(prefix="chatdesk-faults-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        cmd = list(args)
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, check=check, capture_output=True, text=True, timeout=90)

    def init(self) -> None:
        self._run(
            pg_bin("initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
            "--locale=C",
        )
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(
                "\nfsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
                "max_connections = 300\nlisten_addresses = '127.0.0.1'\n"
            )

    def is_up(self) -> bool:
        done = self._run(pg_bin("pg_ctl"), "-D", str(self.data), "status", check=False)
        return done.returncode == 0

    def start(self) -> None:
        if self.is_up():
            return
        self._run(
            pg_bin("pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            f"-p {self.port} -k {self.root}",
            "-l",
            str(self.root / "log"),
            "-w",
            "-t",
            "60",
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        self._run(
            pg_bin("pg_ctl"),
            "-D",
            str(self.data),
            "-m",
            mode,
            "-w",
            "-t",
            "60",
            "stop",
            check=False,
        )

    def destroy(self) -> None:
        try:
            self.stop("immediate")
        finally:
            pid_file = self.data / "postmaster.pid"
            if pid_file.exists():  # pg_ctl failed: the postmaster goes the hard way
                with suppress(ProcessLookupError, ValueError):
                    os.kill(int(pid_file.read_text().split()[0]), signal.SIGKILL)
            shutil.rmtree(self.root, ignore_errors=True)

    def url(self, db: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{db}"

    def sql(self, db: str, query: str, *params) -> list[tuple]:
        with psycopg.connect(self.url(db), autocommit=True, connect_timeout=10) as conn:
            cursor = conn.execute(query, params or None)
            return cursor.fetchall() if cursor.description else []


class RedisServer:
    """`--save "" --appendonly no`: a restart loses every queued message, as a crash would."""

    def __init__(self, root: Path):
        self.root, self.port, self.proc = root, free_port(), None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        args = [
            shutil.which("redis-server"),
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.root),
            "--logfile",
            str(self.root / "redis.log"),
        ]
        self.proc = subprocess.Popen(args, start_new_session=True, stdout=subprocess.DEVNULL)
        client = redis.Redis.from_url(self.url)

        def pings() -> bool:
            try:
                return bool(client.ping())
            except redis.ConnectionError:
                return False

        wait_until(
            pings,
            timeout=20,
            every=0.05,
            what="the private redis-server",
            check=exited_check(self.proc, "the private redis-server"),
        )

    def kill(self) -> None:
        if self.proc is not None:
            stop(self.proc, signal.SIGKILL)

    def restart(self, down_seconds: float = 1.0) -> None:
        """A crash and a restart on the same port: everything it held is gone."""
        self.kill()
        time.sleep(down_seconds)
        self.start()


class Stack:
    """chatdesk's processes (daphne, dramatiq, the scheduler, the simulator) on one private
    database and one private Redis. Settings go in `settings` before a process starts."""

    def __init__(self, *, pg: Postgres, db: str, redis_server: RedisServer, name: str):
        self.pg, self.db, self.redis, self.name = pg, db, redis_server, name
        self.exit = ExitStack()
        self.settings = {
            "DEBUG": "0",
            "SECRET_KEY": "faults-" * 8,
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "WASENDER_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "SECURE_SSL_REDIRECT": "0",
            "SECURE_COOKIES": "0",
            "SECURE_HSTS_SECONDS": "0",
            "LOG_FORMAT": "plain",
            "LOG_LEVEL": "WARNING",
            "DRAMATIQ_BROKER": "redis",
            "WASENDER_API_KEY": "",
            # Nothing listens there until a test starts the simulator: an auto-reply sent by a
            # worker must never reach another test's simulator on the default port.
            "WASENDER_BASE_URL": f"http://127.0.0.1:{free_port()}/api",
            "WASENDER_TIMEOUT": "1.5",
            "SEND_RATE_PER_MINUTE": "1200",
            "SEND_RETRY_BASE_SECONDS": "0.3",
            "SEND_RETRY_MAX_SECONDS": "2",
            "SEND_MAX_ATTEMPTS": "12",
            "SEND_STUCK_SENDING_SECONDS": "4",
            "SEND_UNCONFIRMED_SECONDS": "6",
            "SEND_STUCK_QUEUED_SECONDS": "5",
            "SEND_SWEEP_EVERY_SECONDS": "2",
            "CAMPAIGN_TICK_SECONDS": "2",
            "CAMPAIGN_STALL_SECONDS": "3",
        }
        self.daphne_url = ""
        self.sim_url = ""
        LOGS.mkdir(parents=True, exist_ok=True)

    def env(self) -> dict:
        return process_env(
            DATABASE_URL=self.pg.url(self.db), REDIS_URL=self.redis.url, **self.settings
        )

    def _start(self, args: list[str], label: str, ready_url: str | None = None):
        log = LOGS / f"{self.name}-{label}.log"
        return self.exit.enter_context(running(args, env=self.env(), ready_url=ready_url, log=log))

    def daphne(self) -> str:
        port = free_port()
        self.daphne_url = f"http://127.0.0.1:{port}"
        self._start(daphne_args(port), "daphne", ready_url=f"{self.daphne_url}/healthz")
        return self.daphne_url

    def simulator(self, **knobs) -> str:
        port = free_port()
        webhook = f"{self.daphne_url}/webhooks/wasender/" if self.daphne_url else ""
        args = [
            PYTHON,
            "manage.py",
            "wasender_sim",
            "--skip-checks",
            "--port",
            str(port),
            "--webhook-url",
            webhook,
            "--secret",
            WEBHOOK_SECRET,
            "--seed",
            "7",
        ]
        self.sim_url = f"http://127.0.0.1:{port}"
        self._start(args, "sim", ready_url=f"{self.sim_url}/")
        self.settings["WASENDER_BASE_URL"] = f"{self.sim_url}/api"
        if knobs:
            self.sim_config(**knobs)
        return self.sim_url

    # The simulator answers its control endpoints between pushes: under a storm of webhooks on
    # two cores that may take a while.
    CONTROL_TIMEOUT = 60

    def sim_config(self, *, reset: bool = True, **knobs) -> None:
        url, timeout = self.sim_url, self.CONTROL_TIMEOUT
        httpx.post(f"{url}/_sim/config", json=knobs, timeout=timeout).raise_for_status()
        if reset:
            httpx.post(f"{url}/_sim/reset", timeout=timeout).raise_for_status()

    def sim_inbound(self, **message) -> None:
        """A customer writes to us: {"phone", "text", "name"?, "event"?}."""
        httpx.post(
            f"{self.sim_url}/_sim/inbound", json=message, timeout=self.CONTROL_TIMEOUT
        ).raise_for_status()

    def sim_messages(self) -> list[dict]:
        return httpx.get(f"{self.sim_url}/_sim/messages", timeout=self.CONTROL_TIMEOUT).json()

    def sim_stats(self) -> dict:
        return httpx.get(f"{self.sim_url}/_sim/stats", timeout=self.CONTROL_TIMEOUT).json()

    def sim_settled(self) -> bool:
        """Every webhook pushed (in_flight 0). A stats call that times out while the simulator
        is still pushing a storm means "not yet", for a poll to ask again."""
        try:
            return self.sim_stats()["in_flight"] == 0
        except httpx.TimeoutException:
            return False

    def worker(
        self, label: str = "worker", threads: int = 4, processes: int = 1
    ) -> subprocess.Popen:
        return self._start(dramatiq_args(processes=processes, threads=threads), label)

    def scheduler(self, label: str = "scheduler") -> subprocess.Popen:
        return self._start([PYTHON, "manage.py", "scheduler", "--skip-checks"], label)

    def shell(self, code: str) -> str:
        done = subprocess.run(
            [PYTHON, "manage.py", "shell", "--no-imports", "-c", code],
            cwd=ROOT,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=180,
        )
        if done.returncode != 0:
            raise RuntimeError(f"manage.py shell failed:\n{done.stdout}\n{done.stderr}")
        return done.stdout

    def sql(self, query: str, *params) -> list[tuple]:
        return self.pg.sql(self.db, query, *params)

    def close(self) -> None:
        self.exit.close()
