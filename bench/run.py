"""Run every benchmark in turn (`make bench`), each on a database of its own.

Needs DATABASE_URL (a PostgreSQL server; the database named in it is not touched) and
REDIS_URL. On that server: <name>_bench for the webhook and socket benchmarks, <name>_cbench
for the campaign launch (its tables are emptied), <name>_large for the pages (the large data
set, generated when it has no messages yet: a few minutes). Redis: database
CHATDESK_BENCH_REDIS_DB (9 unless set) of REDIS_URL's server, flushed by the campaign launch
and by the reply benchmark (it starts the production processes on an empty broker).
Each benchmark appends its section to bench/RESULTS.md.
"""

import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# (script, database suffix)
BENCHMARKS = [
    ("webhook_ingest.py", "bench"),
    ("webhook_to_browser.py", "bench"),
    ("idle_sockets.py", "bench"),
    ("load_webhooks.py", "bench"),
    ("reply_to_visible.py", "bench"),
    ("campaign_launch.py", "cbench"),
    ("pages.py", "large"),
]


def database_url(base: str, suffix: str) -> str:
    parts = urlsplit(base)
    name = parts.path.lstrip("/") or "chatdesk"
    return urlunsplit(parts._replace(path=f"/{name}_{suffix}"))


def database_ensure(base: str, url: str) -> None:
    name = urlsplit(url).path.lstrip("/")
    with psycopg.connect(base, autocommit=True) as conn:
        found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not found:
            conn.execute(f'CREATE DATABASE "{name}"')


def has_messages(url: str) -> bool:
    with psycopg.connect(url) as conn:
        table = conn.execute("SELECT to_regclass('inbox_message')").fetchone()[0]
        return bool(table) and bool(
            conn.execute("SELECT EXISTS (SELECT 1 FROM inbox_message)").fetchone()[0]
        )


def main() -> None:
    base, redis_url = os.environ.get("DATABASE_URL", ""), os.environ.get("REDIS_URL", "")
    if not base.startswith("postgres") or not redis_url:
        sys.exit("make bench needs DATABASE_URL (PostgreSQL) and REDIS_URL.")
    redis_db = os.environ.get("CHATDESK_BENCH_REDIS_DB", "9")
    redis_url = urlunsplit(urlsplit(redis_url)._replace(path=f"/{redis_db}"))
    for script, suffix in BENCHMARKS:
        url = database_url(base, suffix)
        database_ensure(base, url)
        env = {"DEBUG": "1", **os.environ, "DATABASE_URL": url, "REDIS_URL": redis_url}
        if suffix == "large" and not has_messages(url):
            print(f"== generating the large data set in {url}", flush=True)
            manage = [sys.executable, "manage.py"]
            subprocess.run(
                [*manage, "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True
            )
            subprocess.run([*manage, "generate_large_data"], cwd=ROOT, env=env, check=True)
        print(f"== {script} on {urlsplit(url).path.lstrip('/')}", flush=True)
        subprocess.run([sys.executable, str(HERE / script), *sys.argv[1:]], env=env, check=True)


if __name__ == "__main__":
    main()
