"""Structured logs and the request id that follows one piece of work from the webhook (or the
page, or the API call) through the Dramatiq worker to the provider call.

The id lives in a contextvar: RequestIdMiddleware sets it for a request, RequestIdDramatiq
copies it into every message enqueued meanwhile and sets it again in the worker. `log_context`
adds fields such as message_id or webhook_event_id for a block of work; `extra=` does the same
for one line.
"""

import contextvars
import json
import logging
import re
import uuid
from contextlib import contextmanager
from datetime import UTC, datetime

import dramatiq

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")
fields_var: contextvars.ContextVar[dict] = contextvars.ContextVar("log_fields", default={})  # noqa: B039 (never mutated)

# Fields a line may carry (from the context or from extra=), in this order after the basics.
CONTEXT_FIELDS = ("message_id", "webhook_event_id", "conversation_id", "campaign_id", "actor")
REQUEST_ID_HEADER_OK = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
MESSAGE_OPTION = "request_id"


def request_id_new() -> str:
    return uuid.uuid4().hex


def request_id_from_header(value: str | None) -> str:
    """A caller's X-Request-ID is kept when it is short and plain (it ends up in logs and in a
    response header); anything else gets a fresh id."""
    if value and REQUEST_ID_HEADER_OK.match(value):
        return value
    return request_id_new()


def request_id_get() -> str:
    return request_id_var.get()


@contextmanager
def log_context(**fields):
    """Fields added to every log line inside the block (None values are left out)."""
    merged = {**fields_var.get(), **{k: v for k, v in fields.items() if v is not None}}
    token = fields_var.set(merged)
    try:
        yield
    finally:
        fields_var.reset(token)


# A run of 7 or more digits (with a leading + or not) is taken for a phone number: customers'
# numbers reach log lines through paths (/api/v1/customers/<phone>/renewals, a 404's path) and
# exception texts. Structured fields (message_id, ...) are left alone.
PHONE_LIKE = re.compile(r"\+?(?<!\d)\d{7,}")
REDACTED = "[phone]"


def redact(text: str) -> str:
    return PHONE_LIKE.sub(REDACTED, text)


class ContextFilter(logging.Filter):
    """Puts request_id (and the context's fields) on every record, for both formats, and takes
    phone numbers out of its message and exception text."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if PHONE_LIKE.search(message):
            record.msg, record.args = redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if not getattr(record, "request_id", None):
            record.request_id = request_id_var.get() or "-"
        for name, value in fields_var.get().items():
            if getattr(record, name, None) is None:
                setattr(record, name, value)
        return True


def _request_id(record: logging.LogRecord) -> str | None:
    rid = getattr(record, "request_id", None) or request_id_var.get()
    return rid if rid and rid != "-" else None


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, request_id, the
    known context fields when present, and the exception text when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": _request_id(record),
        }
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is None:
                value = fields_var.get().get(name)
            if value is not None:
                line[name] = value
        if record.exc_text or record.exc_info:
            line["exc"] = record.exc_text or self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, ensure_ascii=False, default=str)


class RequestIdDramatiq(dramatiq.Middleware):
    """Carries the request id from the process that enqueues into the worker that runs the
    message, so webhook -> worker -> provider call share one id in the logs. A message
    enqueued outside any request (the scheduler) gets an id of its own in the worker."""

    def before_enqueue(self, broker, message, delay):
        rid = request_id_var.get()
        if rid and MESSAGE_OPTION not in message.options:
            message.options[MESSAGE_OPTION] = rid

    def before_process_message(self, broker, message):
        rid = message.options.get(MESSAGE_OPTION) or request_id_new()
        # Worker threads are reused: the previous message's values are simply replaced.
        request_id_var.set(rid)
        fields_var.set({"actor": message.actor_name})

    def after_process_message(self, broker, message, *, result=None, exception=None):
        request_id_var.set("")
        fields_var.set({})

    after_skip_message = after_process_message
