"""Run the Meta Cloud API simulator alone under daphne, for tests and for chatdesk running as
separate processes. Knobs left out here come from CLOUDAPI_SIM_* variables, then defaults."""

from django.conf import settings

from provider.cloudapi.simulator import SimConfig, Simulator
from provider.management.simulator_command import FAULT_KNOBS, RUN_KNOBS, SimulatorCommand

KNOBS = {
    # option: (SimConfig field, type, help); see simulator_command.py for the shared ones
    "webhook_url": ("webhook_url", str, "where to push webhooks (chatdesk's /webhooks/meta/)"),
    "app_secret": ("app_secret", str, "app secret signing X-Hub-Signature-256"),
    "access_token": ("access_token", str, "bearer token to accept"),
    "phone_number_id": ("phone_number_id", str, "the simulated number's phone_number_id"),
    "display_phone_number": ("display_phone_number", str, "its digits as customers see them"),
    "waba_id": ("waba_id", str, "the WhatsApp Business Account id"),
    "throughput": ("throughput_per_second", float, "messages per second (130429 over it)"),
    "burst": ("burst", int, "token bucket size (default one second's worth)"),
    "pair_rate_seconds": ("pair_rate_seconds", float, "gap per customer (131056); 0 off"),
    "window_hours": ("window_hours", float, "customer-service window (131047 outside it)"),
    "window_check": ("window_check", str, "enforce the window: 1 or 0"),
    "async_errors": ("async_errors", str, "131047/131049/131026 as failed statuses: 1 or 0"),
    "marketing_cap": ("marketing_cap", float, "share of marketing templates held (131049)"),
    "undeliverable": ("undeliverable", str, "comma-separated numbers failing with 131026"),
    **FAULT_KNOBS,
    "answer_without_id": ("answer_without_id", float, "share of sends answered without wamid"),
    "echo_first": ("echo_first", float, "share of sends whose sent status comes first"),
    "batch": ("batch", float, "chance a status webhook carries two statuses"),
    "status_delays": ("status_delays", str, "seconds before sent, delivered, read: 0.3,1,2"),
    **RUN_KNOBS,
}


class Command(SimulatorCommand):
    help = "Run the Meta WhatsApp Cloud API simulator (loopback only)."
    simulator_class = Simulator
    config_class = SimConfig
    default_port = 8002
    knobs = KNOBS

    def config_defaults(self) -> dict:
        defaults = {"webhook_url": "http://127.0.0.1:8000/webhooks/meta/"}
        if getattr(settings, "META_APP_SECRET", ""):
            defaults["app_secret"] = settings.META_APP_SECRET
        return defaults

    def listening(self, host: str, port: int, config) -> str:
        return (
            f"Cloud API simulator on http://{host}:{port}/v21.0/{config.phone_number_id} "
            f"(webhooks to {config.webhook_url or 'nowhere'})"
        )
