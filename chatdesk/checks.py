"""Production settings that a process serving requests cannot do without.

They are listed in settings.PRODUCTION_MISSING (empty with DEBUG on).
"""

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured


@checks.register
def production_settings(app_configs=None, **kwargs) -> list[checks.Error]:
    """Every manage.py command runs this: none starts with a production setting missing."""
    return [checks.Error(message, id="chatdesk.E001") for message in settings.PRODUCTION_MISSING]


def production_settings_require() -> None:
    """The web process's refusal (daphne runs no system checks): the first one missing."""
    if settings.PRODUCTION_MISSING:
        raise ImproperlyConfigured(settings.PRODUCTION_MISSING[0])
