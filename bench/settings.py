"""chatdesk's own settings plus one bench-only URL: the bare baseline view."""

from chatdesk.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
LOGGING["root"]["level"] = "WARNING"  # noqa: F405
