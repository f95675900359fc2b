"""chatdesk's own settings plus one bench-only URL: the bare baseline view."""

import os
import sys

# DEBUG is off by default (then chatdesk wants production secrets); the in-process benchmarks
# run a laptop's settings as before, the servers they start get SERVER_ENV (DEBUG=0).
os.environ.setdefault("DEBUG", "1")

from chatdesk.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
LOGGING["root"]["level"] = "WARNING"  # noqa: F405

# The server only (not the worker or manage.py): where its event loop's time goes.
if os.environ.get("BENCH_PROBE") and sys.argv[0].endswith("daphne"):
    from bench import probe

    probe.install(os.environ["BENCH_PROBE"])
