"""The Dramatiq broker, chosen once at start-up before any actor module is imported."""

import dramatiq
from django.db import close_old_connections
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import Middleware

from chatdesk.logging import RequestIdDramatiq


class DbConnections(Middleware):
    """Worker threads outlive requests: hand their connection back after every message, so a
    connection broken by a database restart is not reused forever."""

    def before_process_message(self, broker, message):
        close_old_connections()

    def after_process_message(self, broker, message, *, result=None, exception=None):
        close_old_connections()

    after_skip_message = after_process_message


def broker_setup(*, kind: str, redis_url: str) -> dramatiq.Broker:
    if kind == "redis":
        broker = RedisBroker(url=redis_url, namespace="chatdesk")
    else:
        broker = StubBroker()
        broker.emit_after("process_boot")
    broker.add_middleware(DbConnections())
    broker.add_middleware(RequestIdDramatiq())
    dramatiq.set_broker(broker)
    return broker
