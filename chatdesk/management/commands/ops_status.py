"""manage.py ops_status: the /ops/ page in a terminal (or as JSON for a monitor).

Exit status 1 when something needs a person: dead letters, stuck sends, failed webhooks, or a
dependency that does not answer.
"""

import json

from django.core.management.base import BaseCommand

from chatdesk.ops import STUCK_MINUTES_DEFAULT, ops_status, readiness_checks


def _as_dict(status, checks) -> dict:
    last = status.last_webhook
    return {
        "checked_at": status.checked_at.isoformat(),
        "checks": checks,
        "queues": [vars(q) for q in status.queues],
        "queues_error": status.queues_error or None,
        "dead_letters": status.dead_letters,
        "stuck_minutes": status.stuck_minutes,
        "stuck_queued": status.stuck_queued,
        "stuck_sending": status.stuck_sending,
        "unconfirmed": status.unconfirmed_count,
        "last_webhook": last
        and {"received_at": last.received_at.isoformat(), "event": last.event, "state": last.state},
        "webhook_counts": status.webhook_counts,
        "sessions": [
            {"session": s.session, "status": s.status, "changed_at": s.changed_at.isoformat()}
            for s in status.sessions
        ],
    }


class Command(BaseCommand):
    help = "Queue depth, stuck messages, dead letters, the last webhook and the WhatsApp session."

    def add_arguments(self, parser):
        parser.add_argument(
            "--minutes",
            type=int,
            default=STUCK_MINUTES_DEFAULT,
            help="a queued or sending message older than this is stuck",
        )
        parser.add_argument("--json", action="store_true", help="one JSON object")

    def handle(self, *args, minutes, json: bool = False, **options):
        status = ops_status(stuck_minutes=minutes)
        checks = readiness_checks()
        data = _as_dict(status, checks)
        if json:
            self.stdout.write(_dumps(data))
        else:
            self._print(data)
        healthy = (
            all(v == "ok" for v in checks.values())
            and not status.queues_error
            and not status.dead_letters
            and not status.stuck_queued
            and not status.stuck_sending
            and not status.webhooks_failed
        )
        if not healthy:
            raise SystemExit(1)

    def _print(self, data: dict) -> None:
        out = self.stdout.write
        out("checks: " + ", ".join(f"{k}={v}" for k, v in data["checks"].items()))
        out("queues (ready / delayed / in progress / dead):")
        for q in data["queues"]:
            out(f"  {q['name']}: {q['ready']} / {q['delayed']} / {q['in_progress']} / {q['dead']}")
        if data["queues_error"]:
            out(f"  unreadable: {data['queues_error']}")
        out(f"dead letters: {data['dead_letters']}")
        out(
            f"stuck > {data['stuck_minutes']} min: queued {data['stuck_queued']}, "
            f"sending {data['stuck_sending']}"
        )
        out(f"unconfirmed sends (waiting for WhatsApp's echo): {data['unconfirmed']}")
        last = data["last_webhook"]
        out(
            "last webhook: "
            + (f"{last['received_at']} {last['event'] or '-'} {last['state']}" if last else "none")
        )
        out(
            "webhooks by state: "
            + (", ".join(f"{k}={v}" for k, v in data["webhook_counts"].items()) or "none")
        )
        for s in data["sessions"] or [{"session": "-", "status": "unknown", "changed_at": ""}]:
            out(f"session {s['session']}: {s['status']} {s['changed_at']}")


def _dumps(data: dict) -> str:
    return json.dumps(data, ensure_ascii=False)
