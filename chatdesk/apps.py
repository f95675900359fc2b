from django.apps import AppConfig
from django.conf import settings


class ChatdeskConfig(AppConfig):
    name = "chatdesk"
    verbose_name = "chatdesk"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # First app in INSTALLED_APPS: the broker must exist before any @dramatiq.actor runs.
        from chatdesk.broker import broker_setup

        broker_setup(kind=settings.DRAMATIQ_BROKER, redis_url=settings.REDIS_URL)
