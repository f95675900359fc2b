"""`dramatiq chatdesk.worker`: set Django up, then import every module that declares actors."""

import importlib

import django
from django.conf import settings

django.setup()


def actor_modules_load() -> None:
    for name in settings.ACTOR_MODULES:
        importlib.import_module(name)


actor_modules_load()
