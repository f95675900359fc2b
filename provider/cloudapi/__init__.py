"""Meta's WhatsApp Cloud API: one WhatsApp number is a phone_number_id in a WhatsApp Business
Account, reached with an access token; webhooks are signed with the app secret. See api.py (the
client), payloads.py (webhooks), codes.py (error codes), simulator.py."""

from provider.cloudapi.api import CloudApiClient, Template, window_closes_at

__all__ = ["CloudApiClient", "Template", "window_closes_at"]
