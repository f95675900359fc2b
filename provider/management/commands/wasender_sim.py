"""Run the WaSender simulator alone under daphne, for tests and for chatdesk running as
separate processes. Knobs left out here come from WASENDER_SIM_* variables, then defaults."""

from django.conf import settings

from provider.management.simulator_command import FAULT_KNOBS, RUN_KNOBS, SimulatorCommand
from provider.wasender.simulator import SimConfig, Simulator

KNOBS = {
    # option: (SimConfig field, type, help); see simulator_command.py for the shared ones
    "webhook_url": ("webhook_url", str, "where to push webhooks (chatdesk's /webhooks/wasender/)"),
    "secret": ("webhook_secret", str, "X-Webhook-Signature value (default: the settings')"),
    "api_key": ("api_key", str, "bearer key to accept (default: WASENDER_SIMULATOR_KEY)"),
    "rate_per_minute": ("rate_per_minute", float, "send limit, messages per minute"),
    "burst": ("burst", int, "token bucket size (default one minute's worth)"),
    **FAULT_KNOBS,
    "answer_without_id": ("answer_without_id", float, "share of sends answered without msgId"),
    "echo_first": ("echo_first", float, "share of sends echoed by webhook before the answer"),
    "variants": ("variants", float, "chance of list/string/ms payload variants"),
    "not_on_whatsapp": ("not_on_whatsapp", str, "comma-separated numbers without WhatsApp"),
    "status_delays": ("status_delays", str, "seconds before statuses 2,3,4, e.g. 0.3,1,2"),
    **RUN_KNOBS,
}


class Command(SimulatorCommand):
    help = "Run the WaSender simulator (loopback only)."
    simulator_class = Simulator
    config_class = SimConfig
    default_port = 8001
    knobs = KNOBS

    def config_defaults(self) -> dict:
        return {
            "api_key": settings.WASENDER_SIMULATOR_KEY,
            "webhook_secret": settings.WASENDER_WEBHOOK_SECRET,
            "webhook_url": "http://127.0.0.1:8000/webhooks/wasender/",
        }

    def listening(self, host: str, port: int, config) -> str:
        return (
            f"WaSender simulator on http://{host}:{port}/api "
            f"(webhooks to {config.webhook_url or 'nowhere'})"
        )
