from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ProviderConfig(AppConfig):
    """An app only for its management command (`wasender_sim`): no models, no URLs."""

    name = "provider"
    verbose_name = _("Proveedores de WhatsApp")
