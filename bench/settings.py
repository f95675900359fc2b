"""chatdesk's own settings plus one bench-only URL: the bare baseline view."""

import os

# DEBUG is off by default (then chatdesk wants production secrets); the in-process benchmarks
# run a laptop's settings as before, the servers they start get SERVER_ENV (DEBUG=0).
os.environ.setdefault("DEBUG", "1")

from chatdesk.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
LOGGING["root"]["level"] = "WARNING"  # noqa: F405
