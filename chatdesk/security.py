"""Small security helpers shared by the middleware and django-axes."""

import ipaddress
from functools import cache


def client_ip(request) -> str:
    """The caller's address. Behind a proxy, run daphne with --proxy-headers (and have the proxy
    overwrite X-Forwarded-For) so that REMOTE_ADDR is the client, not the proxy."""
    return request.META.get("REMOTE_ADDR", "") or ""


@cache
def _networks(cidrs: tuple[str, ...]) -> tuple:
    return tuple(ipaddress.ip_network(c.strip(), strict=False) for c in cidrs if c.strip())


def ip_allowed(address: str, cidrs) -> bool:
    """True when `cidrs` is empty (no allowlist) or the address is inside one of them."""
    networks = _networks(tuple(cidrs))
    if not networks:
        return True
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if ip.version == 6 and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return any(ip in network for network in networks)


def cidrs_check(cidrs) -> None:
    """Raises ValueError for a malformed CIDR, so a bad setting fails at start-up."""
    _networks(tuple(cidrs))


def login_failure_limit(request, credentials=None) -> int:
    """django-axes' AXES_FAILURE_LIMIT, giving two tiers to its one comparison.

    Axes counts failures for each AXES_LOCKOUT_PARAMETERS entry, (username, address) and
    address, and locks when the larger count (the address's, which includes the pair's) reaches
    this limit. So: once the pair has LOGIN_FAILURE_LIMIT failures the limit is the address's
    own count (that username is locked from there), otherwise LOGIN_ADDRESS_FAILURE_LIMIT (an
    address trying many usernames is locked whatever the names)."""
    from axes.handlers.proxy import AxesProxyHandler
    from django.conf import settings
    from django.db.models import Sum

    pair, address = (
        attempts.aggregate(n=Sum("failures_since_start"))["n"] or 0
        for attempts in AxesProxyHandler.get_implementation().get_user_attempts(
            request, credentials
        )
    )
    if pair >= settings.LOGIN_FAILURE_LIMIT:
        return max(address, 1)
    return settings.LOGIN_ADDRESS_FAILURE_LIMIT
