from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


def _env_channels_sync(sender, **kwargs):
    """After `migrate`, the Cloud API number named by META_PHONE_NUMBER_ID is a channel."""
    from inbox.channels import channels_env_sync

    channels_env_sync()


class InboxConfig(AppConfig):
    name = "inbox"
    verbose_name = _("Conversaciones")

    def ready(self):
        post_migrate.connect(_env_channels_sync, sender=self)
