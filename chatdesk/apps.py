from django.apps import AppConfig
from django.conf import settings


class ChatdeskConfig(AppConfig):
    name = "chatdesk"
    verbose_name = "chatdesk"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from chatdesk import checks  # noqa: F401 (registers the production settings check)

        # First app in INSTALLED_APPS: the broker must exist before any @dramatiq.actor runs.
        from chatdesk.broker import broker_setup

        broker_setup(kind=settings.DRAMATIQ_BROKER, redis_url=settings.REDIS_URL)

        from django.db.models.signals import post_migrate

        from chatdesk.roles import admin_role_grant_all

        post_migrate.connect(admin_role_grant_all, dispatch_uid="chatdesk.admin_role_grant_all")
