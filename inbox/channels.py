"""Channels: which WhatsApp numbers this desk answers on, who sees each, how to reach its
provider.

A channel's credentials come from the environment (`from_env`: WASENDER_* for the default
WaSender number, META_* for the Cloud API number configured there) or are stored encrypted
with Fernet (AES-128-CBC + HMAC-SHA256, from the `cryptography` package) under a key derived
from SECRET_KEY, or CHANNEL_CREDENTIALS_KEY when set. Nothing renders them back: the settings
page only says whether each one is set.
"""

import base64
import json
import time
from functools import cache

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.db.models import QuerySet

from chatdesk.roles import ADMIN, has_role
from inbox.models import DEFAULT_CHANNEL, Channel

META_ENV_KEY = "meta"
# What each provider's credentials hold (the settings page asks for these, never shows them).
CREDENTIAL_FIELDS = {
    Channel.Provider.WASENDER: ("api_key", "webhook_secret"),
    Channel.Provider.CLOUDAPI: ("access_token", "app_secret", "verify_token"),
}


# --- credentials --------------------------------------------------------------------------------


def _fernet() -> Fernet:
    return _fernet_for(settings.CHANNEL_CREDENTIALS_KEY, settings.SECRET_KEY)


@cache
def _fernet_for(key: str, secret_key: str) -> Fernet:
    """Derived once per key (every Meta webhook reads the app secrets)."""
    if not key:
        derived = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=b"chatdesk channel credentials"
        ).derive(secret_key.encode())
        key = base64.urlsafe_b64encode(derived).decode()
    return Fernet(key)


def credentials_seal(values: dict) -> str:
    """The encrypted form stored in Channel.credentials (blank values dropped)."""
    kept = {name: value for name, value in values.items() if value}
    return _fernet().encrypt(json.dumps(kept).encode()).decode() if kept else ""


def credentials_stored(channel: Channel) -> dict:
    """What the channel stores; {} when nothing is, or when the key changed since."""
    if not channel.credentials:
        return {}
    try:
        return json.loads(_fernet().decrypt(channel.credentials.encode()))
    except (InvalidToken, ValueError):
        return {}


def credentials(channel: Channel) -> dict:
    """The credentials a provider client and the webhook check use for this channel."""
    if channel.from_env and channel.provider == Channel.Provider.CLOUDAPI:
        simulated = not settings.META_ACCESS_TOKEN
        return {
            "access_token": settings.META_SIMULATOR_TOKEN
            if simulated
            else settings.META_ACCESS_TOKEN,
            "app_secret": settings.META_APP_SECRET
            or (settings.META_SIMULATOR_APP_SECRET if simulated else ""),
            "verify_token": settings.META_VERIFY_TOKEN,
        }
    if channel.from_env:
        key = settings.WASENDER_SIMULATOR_KEY if settings.USE_SIMULATOR else ""
        return {
            "api_key": settings.WASENDER_API_KEY or key,
            "webhook_secret": settings.WASENDER_WEBHOOK_SECRET,
        }
    return credentials_stored(channel)


def credentials_update(channel: Channel, values: dict) -> None:
    """Keep what the form left blank, replace what it filled (a secret is never shown, so a
    blank field means "unchanged")."""
    merged = credentials_stored(channel) | {name: value for name, value in values.items() if value}
    channel.credentials = credentials_seal(merged)


# --- finding channels --------------------------------------------------------------------------


def channels_env_sync() -> None:
    """The Cloud API number the environment names becomes (or stays) the channel "meta"."""
    if not settings.META_PHONE_NUMBER_ID:
        return
    fields = {
        "provider": Channel.Provider.CLOUDAPI,
        "account": settings.META_PHONE_NUMBER_ID,
        "waba_id": settings.META_WABA_ID,
        "display_phone": settings.META_DISPLAY_PHONE,
        "from_env": True,
        "sends_per_second": settings.META_SENDS_PER_SECOND,
        "daily_customer_limit": settings.META_DAILY_CUSTOMER_LIMIT,
    }
    Channel.objects.update_or_create(
        key=META_ENV_KEY,
        defaults=fields,
        create_defaults=fields | {"name": settings.META_CHANNEL_NAME, "colour": "blue"},
    )


def channel_by_account(provider: str, account: str) -> Channel | None:
    """The active channel Meta (or WaSender) names by its phone number id / session."""
    if not account:
        return None
    found = Channel.objects.filter(provider=provider, account=account, active=True).first()
    named_by_env = account == settings.META_PHONE_NUMBER_ID
    if found is None and provider == Channel.Provider.CLOUDAPI and named_by_env:
        channels_env_sync()
        found = Channel.objects.filter(provider=provider, account=account).first()
    return found


def channel_get(key: str) -> Channel:
    """The channel by key; the default one exists even without its row (configured by the
    environment, as before channels)."""
    channel = Channel.objects.filter(key=key).first()
    if channel is None and key == DEFAULT_CHANNEL:
        return Channel(key=DEFAULT_CHANNEL, name="WhatsApp", from_env=True)
    if channel is None:
        raise Channel.DoesNotExist(key)
    return channel


def channels_for(user) -> QuerySet[Channel]:
    """The channels this user works on: admins every one; an agent listed on some channels
    only those (ticking Bob on "Soporte" limits Bob to it); anyone else the channels that
    list nobody."""
    channels = Channel.objects.all()
    if has_role(user, ADMIN):
        return channels
    if channels.filter(agents=user).exists():
        return channels.filter(agents=user)
    return channels.filter(agents=None)


def channel_keys_for(user) -> set[str] | None:
    """None when the user sees every channel (the common case: no filter at all)."""
    if has_role(user, ADMIN) or not Channel.agents.through.objects.exists():
        return None
    return set(channels_for(user).values_list("key", flat=True))


def channel_keys_for_request(request) -> set[str] | None:
    """channel_keys_for(request.user), read once per request (the list, the open thread's check
    and the unread count all ask). Kept on the request, never on the user: the socket's user
    lives as long as the socket, and it re-reads on every `watch`."""
    try:
        return request._channel_keys
    except AttributeError:
        request._channel_keys = channel_keys_for(request.user)
        return request._channel_keys


# --- providers ---------------------------------------------------------------------------------


@cache
def _wasender_client(base_url: str, api_key: str, timeout: float):
    from provider.wasender.api import WaSenderClient

    return WaSenderClient(base_url=base_url, api_key=api_key, timeout=timeout)


def client_for(channel: Channel):
    """The provider client that sends for this channel (one per configuration, reused)."""
    if channel.provider == Channel.Provider.CLOUDAPI:
        return _cloudapi_client(channel.account, credentials(channel).get("access_token", ""))
    if channel.from_env:
        from provider import wasender

        return wasender.client()
    return _wasender_client(
        settings.WASENDER_BASE_URL,
        credentials(channel).get("api_key", ""),
        settings.WASENDER_TIMEOUT,
    )


@cache
def _cloudapi_client(phone_number_id: str, access_token: str):
    from provider.cloudapi.api import CloudApiClient

    return CloudApiClient(
        base_url=settings.META_GRAPH_URL,
        version=settings.META_GRAPH_VERSION,
        phone_number_id=phone_number_id,
        access_token=access_token,
        timeout=settings.META_TIMEOUT,
    )


# --- labels for the list (no query per row: a small map, refreshed every few seconds) --------

LABELS_TTL = 10.0
_labels: dict = {"at": -LABELS_TTL, "map": {}}


def labels() -> dict[str, tuple[str, str]]:
    """{key: (name, colour)} of every channel, or {} on a one-channel install (which looks as
    it did before channels)."""
    now = time.monotonic()
    if now - _labels["at"] > LABELS_TTL:
        rows = list(Channel.objects.values_list("key", "name", "colour"))
        _labels["map"] = (
            {key: (name, colour) for key, name, colour in rows} if len(rows) > 1 else {}
        )
        _labels["at"] = now
    return _labels["map"]


def labels_forget() -> None:
    """A channel changed: this process reads the labels and the channels again."""
    _labels["at"] = -LABELS_TTL
    _cached.clear()


_cached: dict = {}


def channel_cached(key: str) -> Channel:
    """channel_get for the send path: each worker reads a channel at most every LABELS_TTL."""
    now = time.monotonic()
    hit = _cached.get(key)
    if hit is None or now - hit[0] > LABELS_TTL:
        hit = (now, channel_get(key))
        _cached[key] = hit
    return hit[1]
