"""The HTTP plumbing every provider's client shares: a request whose transport errors become
ProviderErrors that say what the failure proves (did the request reach the provider?), and a
bounded download. Each client keeps its own answer parsing and its own sentences for people.

A transport error is one of three things:
- the connection never opened (refused, DNS, connect timeout, no free connection): nothing
  reached the provider, retrying is safe;
- the request went out and no answer came in time: ambiguous, the provider may have acted;
- the connection was cut after the request was written (wholly or in part): ambiguous too.
"""

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
from django.utils.functional import Promise
from django.utils.translation import gettext as _

from provider.errors import ProviderError


@dataclass(frozen=True)
class Peer:
    """Who is at the other end: its name for the technical message, and the sentences a person
    reads when the connection fails (lazy translations, rendered when raised)."""

    name: str
    unreachable: str | Promise
    timed_out: str | Promise
    cut: str | Promise


def int_or_none(value) -> int | None:
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return None


def request_send(http: httpx.Client, method: str, url: str, *, peer: Peer, **kwargs):
    """`http.request(...)`, its transport errors raised as ProviderError."""
    try:
        return http.request(method, url, **kwargs)
    except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as e:
        # The connection never opened: nothing reached the provider.
        raise ProviderError(
            f"{peer.name} connection error: {e!r}",
            permanent=False,
            reason=str(peer.unreachable),
        ) from e
    except httpx.TimeoutException as e:
        raise ProviderError(
            f"{peer.name} timeout: {e!r}",
            permanent=False,
            ambiguous=True,
            reason=str(peer.timed_out),
        ) from e
    except httpx.HTTPError as e:
        # Written (wholly or in part) and then cut: the provider may have acted on it.
        raise ProviderError(
            f"{peer.name} connection lost: {e!r}",
            permanent=False,
            ambiguous=True,
            reason=str(peer.cut),
        ) from e


def answer_json(response: httpx.Response) -> Any:
    """The answer's JSON, or None when it is not JSON."""
    try:
        return response.json()
    except ValueError:
        return None


def url_allowed(url: str, *, netlocs: Collection[str], domains: Collection[str]) -> bool:
    """Whether a URL is one we may fetch: one of `netlocs` (host and port, as the client's own
    base URL), or https on the standard port to one of `domains` or their subdomains."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username:
        return False
    if parts.netloc.lower() in netlocs:
        return True
    host = parts.hostname.lower()
    return (
        parts.scheme == "https"
        and parts.port in (None, 443)
        and any(host == d or host.endswith("." + d) for d in domains)
    )


def download_bounded(
    http: httpx.Client,
    url: str,
    *,
    max_bytes: int,
    what: str,
    label: str = "Download",
    headers: dict | None = None,
    size_given: int | None = None,
    mime_given: str = "",
) -> tuple[bytes, str]:
    """(content, mime type) of `url`, refused past max_bytes whatever the host declares.
    `what` names the file in messages, `label` the operation; `size_given` and `mime_given`
    are what the provider said of the file before (the mime type wins over the host's)."""
    too_big = ProviderError(
        f"{what} is larger than {max_bytes} bytes",
        permanent=True,
        reason=_("El archivo supera el tamaño máximo permitido."),
    )
    if (size_given or 0) > max_bytes:
        raise too_big
    try:
        with http.stream("GET", url, headers=headers) as response:
            status = response.status_code
            if status >= 300:
                # Expired or missing media stays missing; only 5xx and 429 may pass.
                raise ProviderError(
                    f"HTTP {status} for {what}",
                    status=status,
                    permanent=status < 500 and status != 429,
                    reason=_("No se pudo descargar el archivo."),
                )
            if (int_or_none(response.headers.get("content-length")) or 0) > max_bytes:
                raise too_big
            chunks, size = [], 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > max_bytes:
                    raise too_big
                chunks.append(chunk)
            mime = mime_given or response.headers.get("content-type", "application/octet-stream")
    except httpx.TimeoutException as e:
        raise ProviderError(
            f"{label} timeout: {e!r}",
            permanent=False,
            reason=_("La descarga del archivo tardó demasiado."),
        ) from e
    except httpx.HTTPError as e:
        raise ProviderError(
            f"{label} failed: {e!r}",
            permanent=False,
            reason=_("No se pudo descargar el archivo."),
        ) from e
    return b"".join(chunks), mime.split(";")[0].strip().lower()
