"""Open inbox sockets lose access the moment their user does.

A socket is authenticated once, at connect. Afterwards its session may be logged out or
deleted, its user deactivated, given a new password or moved out of the support roles, by any
process (the admin, a shell, `clearsessions`). So every process re-checks its own sockets every
SOCKET_RECHECK_SECONDS, all of them at once: one query for their sessions and one for their
users and roles, however many sockets it holds; a socket that fails is closed (4401 without a
valid session, 4403 without the role) and gets nothing more.
"""

import asyncio
import logging
import weakref
from importlib import import_module

from channels.db import database_sync_to_async
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.contrib.auth.models import Group
from django.db.models import Prefetch
from django.utils import timezone
from django.utils.crypto import constant_time_compare

from chatdesk.roles import ROLES, SUPPORT, has_role

CLOSE_UNAUTHENTICATED = 4401  # the same codes as a refused connect (inbox/consumers.py)
CLOSE_FORBIDDEN = 4403

# event loop -> {consumer: (session key, user id)}, and the loop's sweep while it has sockets.
_sockets: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict]" = weakref.WeakKeyDictionary()
_sweeps: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Task]" = (
    weakref.WeakKeyDictionary()
)
log = logging.getLogger(__name__)


def socket_watch(consumer, *, session_key: str, user_id: int) -> None:
    """Start re-checking this socket's session and user (call once it is accepted)."""
    loop = asyncio.get_running_loop()
    sockets = _sockets.setdefault(loop, {})
    sockets[consumer] = (session_key, user_id)
    if loop not in _sweeps:
        _sweeps[loop] = loop.create_task(_sweep(sockets))


def socket_forget(consumer) -> None:
    loop = asyncio.get_running_loop()
    sockets = _sockets.get(loop, {})
    sockets.pop(consumer, None)
    sweep = _sweeps.get(loop)
    # The last socket gone: stop the sweep now (unless it is the sweep closing that socket: it
    # ends by itself once it has closed the others).
    if not sockets and sweep is not None and sweep is not asyncio.current_task():
        _sweeps.pop(loop).cancel()
        _sockets.pop(loop, None)


async def _sweep(sockets: dict) -> None:
    """Wait, check every socket of this loop at once, close the ones that lost access."""
    while sockets:
        await asyncio.sleep(settings.SOCKET_RECHECK_SECONDS)
        watched = dict(sockets)
        try:
            verdicts = await database_sync_to_async(sockets_verdict)(list(watched.values()))
        except Exception:  # the database is away: keep the sockets, ask again next time
            log.warning("socket access check failed", exc_info=True)
            continue
        for consumer, entry in watched.items():
            code = verdicts.get(entry)
            if code is not None and consumer in sockets:
                try:
                    await consumer.access_lost(code)
                except Exception:  # already gone: the others are still to be closed
                    log.warning("closing a socket that lost access failed", exc_info=True)
    loop = asyncio.get_running_loop()
    _sweeps.pop(loop, None)
    _sockets.pop(loop, None)


def sockets_verdict(entries: list[tuple[str, int]]) -> dict[tuple[str, int], int]:
    """{(session key, user id): close code} for the entries that lost access."""
    store = import_module(settings.SESSION_ENGINE).SessionStore
    keys = {key for key, _ in entries}
    sessions = {
        session.session_key: store().decode(session.session_data)
        for session in store.get_model_class().objects.filter(
            session_key__in=keys, expire_date__gt=timezone.now()
        )
    }
    roles = Prefetch("groups", queryset=Group.objects.filter(name__in=ROLES), to_attr="roles")
    users = {
        user.pk: user
        for user in get_user_model()
        .objects.filter(pk__in={uid for _, uid in entries})
        .prefetch_related(roles)
    }
    for user in users.values():  # what chatdesk.roles.user_roles would query, one user at a time
        user._chatdesk_roles = frozenset(group.name for group in user.roles)
    verdicts = {}
    for key, user_id in set(entries):
        user = users.get(user_id)
        if user is None or not _session_holds(sessions.get(key), user):
            verdicts[(key, user_id)] = CLOSE_UNAUTHENTICATED
        elif not has_role(user, *SUPPORT):
            verdicts[(key, user_id)] = CLOSE_FORBIDDEN
    return verdicts


def _session_holds(data: dict | None, user) -> bool:
    """The session still logs this user in, as django.contrib.auth.get_user would decide:
    same user, an active one, and the password hash the session was made with."""
    if not data or str(data.get(SESSION_KEY)) != str(user.pk) or not user.is_active:
        return False
    if data.get(BACKEND_SESSION_KEY) not in settings.AUTHENTICATION_BACKENDS:
        return False
    given = data.get(HASH_SESSION_KEY) or ""
    hashes = [user.get_session_auth_hash(), *user.get_session_auth_fallback_hash()]
    return any(constant_time_compare(given, expected) for expected in hashes)
