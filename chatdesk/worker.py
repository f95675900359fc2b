"""`dramatiq chatdesk.worker`: set Django up, then import every module that declares actors.

Dramatiq imports this module by name, so it is an entry point like manage.py and asgi.py and
names its settings itself: an operator following the README sets no DJANGO_SETTINGS_MODULE."""

import importlib
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatdesk.settings")

import django
from django.conf import settings

django.setup()


def actor_modules_load() -> None:
    for name in settings.ACTOR_MODULES:
        importlib.import_module(name)


actor_modules_load()
