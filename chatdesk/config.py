"""Pure functions that turn environment values into Django settings, so the choice between
embedded mode and real services can be tested without reloading settings."""

from pathlib import Path

import environ


def database(url: str, *, sqlite_path: Path) -> dict:
    if not url:
        sqlite_path.parent.mkdir(parents=True, exist_ok=True)
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": sqlite_path,
            # WAL and IMMEDIATE transactions let the in-process worker threads write beside
            # the web requests without "database is locked".
            "OPTIONS": {
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
            # A file, not memory, so that processes started by integration tests share it.
            "TEST": {"NAME": str(sqlite_path.with_name("test_" + sqlite_path.name))},
        }
    config = environ.Env.db_url_config(url)
    if config["ENGINE"] == "django.db.backends.postgresql":
        # Under ASGI every request would open a connection of its own without a pool.
        config.setdefault("OPTIONS", {})["pool"] = {"min_size": 2, "max_size": 20, "timeout": 10}
        config["CONN_MAX_AGE"] = 0
    return config


LAYER_SOCKET_TIMEOUT = 30.0


def channel_layers(redis_url: str, kind: str = "core") -> dict:
    if not redis_url:
        return {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    backend = {
        "core": "channels_redis.core.RedisChannelLayer",
        "pubsub": "channels_redis.pubsub.RedisPubSubChannelLayer",
    }[kind]
    # redis-py 8 reads with a 5 s socket timeout by default, exactly channels-redis's 5 s
    # BZPOPMIN: an agent socket idle for 5 s would die with "Timeout reading". Longer, not
    # endless, so a dead Redis still surfaces.
    host = {"address": redis_url, "socket_timeout": LAYER_SOCKET_TIMEOUT}
    return {"default": {"BACKEND": backend, "CONFIG": {"hosts": [host]}}}


def broker_kind(redis_url: str, *, testing: bool) -> str:
    return "redis" if redis_url and not testing else "stub"
