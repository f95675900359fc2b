"""Agents as the fault suite sees them: a logged-in session made in the private database, a
live socket on /ws/inbox/, and the HTTP list partial a page re-fetches after a reconnect."""

import asyncio
import re

import httpx
from websockets.asyncio.client import connect

from tests.faults.services import Stack

SESSION_CODE = """
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.auth.models import Group, User
from django.contrib.sessions.backends.db import SessionStore
user = User.objects.create_user({name!r}, password="pass-{name}-faults", first_name={name!r})
user.groups.add(Group.objects.get_or_create(name="agent")[0])
session = SessionStore()
session[SESSION_KEY] = str(user.pk)
session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
session[HASH_SESSION_KEY] = user.get_session_auth_hash()
session.create()
print("SESSION", session.session_key)
"""
CONV_ID = re.compile(r'id="conv-(\d+)"')
NEXT = re.compile(r'hx-get="[^"]*after=([\w-]+)"')


def agent_session(stack: Stack, name: str = "bob") -> str:
    out = stack.shell(SESSION_CODE.format(name=name))
    return re.search(r"SESSION (\w+)", out)[1]


def agent_socket(stack: Stack, session: str):
    ws_url = stack.daphne_url.replace("http://", "ws://") + "/ws/inbox/"
    return connect(
        ws_url,
        additional_headers={"Cookie": f"sessionid={session}"},
        origin=stack.daphne_url,
        open_timeout=10,
        max_size=None,
    )


async def frames_until(socket, predicate, *, timeout: float) -> list[str]:
    """Collect frames until one satisfies `predicate` or `timeout` passes."""
    frames: list[str] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        try:
            frame = await asyncio.wait_for(socket.recv(), deadline - loop.time())
        except TimeoutError:
            break
        frames.append(frame)
        if predicate(frame):
            break
    return frames


def listed_conversations(stack: Stack, session: str) -> set[int]:
    """Every conversation the list shows, page after page ("cargar más"), as htmx asks."""
    found: set[int] = set()
    after = ""
    with httpx.Client(base_url=stack.daphne_url, cookies={"sessionid": session}) as client:
        for _ in range(1000):
            response = client.get(
                "/inbox/list/",
                params={"after": after} if after else {},
                headers={"HX-Request": "true"},
                timeout=30,
            )
            response.raise_for_status()
            found |= {int(n) for n in CONV_ID.findall(response.text)}
            cursor = NEXT.search(response.text)
            if not cursor or cursor[1] == after:
                return found
            after = cursor[1]
    return found
