"""Production hardening: `check --deploy` clean with production settings, HTTPS-only cookies,
HSTS and the redirect behind the proxy, the Content Security Policy and the other headers."""

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HOST = "chatdesk.example.com"


def production_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTEST_VERSION", "DEBUG")}
    env.update(
        DEBUG="0",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS=HOST,
        WASENDER_WEBHOOK_SECRET=secrets.token_urlsafe(24),
        CSRF_TRUSTED_ORIGINS=f"https://{HOST}",
        PUBLIC_URL=f"https://{HOST}",
        DJANGO_SETTINGS_MODULE="chatdesk.settings",
    )
    env.update(extra)
    return env


def run(args: list[str], **extra) -> subprocess.CompletedProcess:
    return subprocess.run(
        args, cwd=ROOT, env=production_env(**extra), capture_output=True, text=True, timeout=120
    )


def test_it_passes_check_deploy_with_production_settings():
    result = run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "DEBUG"])
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


# Requests made by a process running with production settings (they are read at start-up).
PROBE = f"""
import json, django
django.setup()
from django.test import Client
from django.test.utils import setup_test_environment
setup_test_environment()
client = Client(HTTP_HOST="{HOST}")
plain = client.get("/accounts/login/")
probe = client.get("/healthz")
secure = client.get("/accounts/login/", secure=True)
cookies = {{name: {{"secure": bool(c["secure"]), "httponly": bool(c["httponly"]),
                  "samesite": c["samesite"]}} for name, c in secure.cookies.items()}}
print(json.dumps({{
    "plain": [plain.status_code, plain.get("Location")],
    "probe": probe.status_code,
    "secure": secure.status_code,
    "headers": {{k: secure.get(k) for k in ("Strict-Transport-Security", "Content-Security-Policy",
        "Content-Security-Policy-Report-Only", "Referrer-Policy", "X-Frame-Options",
        "X-Content-Type-Options", "Cross-Origin-Opener-Policy", "X-Request-ID")}},
    "cookies": cookies,
}}))
"""


@pytest.fixture(scope="module")
def production():
    result = run([sys.executable, "-c", PROBE], SQLITE_PATH="/tmp/chatdesk-probe.sqlite3")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_it_redirects_plain_http_to_https_behind_the_proxy_but_not_the_probes(production):
    assert production["plain"] == [301, f"https://{HOST}/accounts/login/"]
    assert production["probe"] == 200
    assert production["secure"] == 200


def test_it_sends_hsts_and_the_other_security_headers_in_production(production):
    headers = production["headers"]
    assert headers["Strict-Transport-Security"] == ("max-age=31536000; includeSubDomains; preload")
    assert headers["Referrer-Policy"] == "same-origin"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Cross-Origin-Opener-Policy"] == "same-origin"
    assert headers["X-Request-ID"]


def test_it_enforces_the_content_security_policy_in_production(production):
    headers = production["headers"]
    assert headers["Content-Security-Policy-Report-Only"] is None
    policy = parse_policy(headers["Content-Security-Policy"])
    assert policy["default-src"] == ["'self'"]
    assert policy["script-src"] == ["'self'"]  # no inline script, no eval
    assert policy["style-src"] == ["'self'"]  # no inline style either
    assert policy["img-src"] == ["'self'", "data:", "blob:"]
    # Sockets to us only: 'self', and the inbox socket on the public host (never ws:/wss: alone,
    # which allowed a socket to any host).
    assert policy["connect-src"] == ["'self'", f"wss://{HOST}"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["form-action"] == ["'self'"]


def test_it_marks_the_cookies_secure_and_http_only_in_production(production):
    csrf = production["cookies"]["csrftoken"]
    assert csrf["secure"] and csrf["samesite"] == "Lax"


def parse_policy(header: str) -> dict[str, list[str]]:
    return {part.split()[0]: part.split()[1:] for part in header.split("; ")}


def test_it_reports_the_policy_without_enforcing_it_on_a_laptop(client, db, settings):
    response = client.get("/accounts/login/")
    assert "Content-Security-Policy" not in response
    policy = parse_policy(response["Content-Security-Policy-Report-Only"])
    assert policy["script-src"] == ["'self'"]
    assert policy["connect-src"] == ["'self'", "ws://127.0.0.1:8000"]  # PUBLIC_URL's default


def test_it_keeps_a_policy_a_view_set_itself(rf, settings):
    from csp.middleware import CSPMiddleware
    from django.http import HttpResponse

    settings.CONTENT_SECURITY_POLICY = {"DIRECTIVES": {"default-src": ["'self'"]}}

    def view(request):
        response = HttpResponse("x")
        response["Content-Security-Policy"] = "sandbox"
        return response

    response = CSPMiddleware(view)(rf.get("/"))
    assert response["Content-Security-Policy"] == "sandbox"


def test_it_has_no_inline_handlers_or_scripts_in_any_template():
    """Under the policy an inline handler or <script> block silently does nothing."""
    offenders = []
    for template in ROOT.glob("**/templates/**/*.html"):
        if ".venv" in template.parts:
            continue
        text = template.read_text()
        for marker in (
            " onclick=",
            " onchange=",
            " onsubmit=",
            " oninput=",
            " onload=",
            "<script>",
            ' style="',
            "<style",
            "javascript:",
            "hx-on",
        ):
            if marker in text:
                offenders.append(f"{template.relative_to(ROOT)}: {marker.strip()}")
    assert not offenders
