from django.apps import AppConfig


class DevdataConfig(AppConfig):
    """Data generators, not the product: the demo's month of a business (`seed_demo`) and the
    benchmark's year (`generate_large_data`). They write every app's tables through its
    services or in bulk; no runtime app imports them (an import contract says so)."""

    name = "devdata"
    verbose_name = "devdata"
