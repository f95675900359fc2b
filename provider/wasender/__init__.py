"""WaSender (wasenderapi.com): one WhatsApp number is one session with its own API key and
webhook. `client()` is the process-wide client; see client.py, payloads.py, simulator.py."""

from provider.wasender.api import MessageInfo, WaSenderClient, client

__all__ = ["MessageInfo", "WaSenderClient", "client"]
