"""/api/v1/messages: bearer tokens acting with their user's role, clear 4xx for bad input."""

import dramatiq
import pytest
from django.core.management import call_command
from django.utils import timezone

from chatdesk.models import ApiToken, token_digest
from inbox.models import Message

URL = "/api/v1/messages"


@pytest.fixture(autouse=True)
def broker_empty():
    dramatiq.get_broker().flush_all()
    yield
    dramatiq.get_broker().flush_all()


def bearer(user) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {ApiToken.issue(user=user, name='t')[1]}"}


def post(client, headers, body):
    return client.post(URL, body, content_type="application/json", **headers)


def test_it_requires_a_token(client, db):
    response = post(client, {}, {"phone": "+593968196046", "text": "Hola"})
    assert response.status_code == 401
    assert not Message.objects.exists()


def test_it_refuses_an_unknown_token(client, db):
    response = post(
        client, {"HTTP_AUTHORIZATION": "Bearer cd_nope"}, {"phone": "0968196046", "text": "Hola"}
    )
    assert response.status_code == 401


def test_it_refuses_a_revoked_token(client, bob):
    headers = bearer(bob)
    ApiToken.objects.update(revoked_at=timezone.now())
    assert post(client, headers, {"phone": "0968196046", "text": "Hola"}).status_code == 401


def test_it_refuses_a_session_without_a_token(client_for, bob):
    response = post(client_for(bob), {}, {"phone": "0968196046", "text": "Hola"})
    assert response.status_code == 401


def test_a_marketer_token_may_not_send(client, carla):
    response = post(client, bearer(carla), {"phone": "0968196046", "text": "Hola"})
    assert response.status_code == 403
    assert not Message.objects.exists()


def test_an_agent_token_sends(client, bob, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = post(client, bearer(bob), {"phone": "0968196046", "text": "Hola"})
    assert response.status_code == 201
    message = Message.objects.get()
    assert response.json() == {
        "id": message.id,
        "status": "queued",
        "conversation_id": message.conversation_id,
        "phone": "+593968196046",
    }
    assert message.author_kind == "api" and message.agent == bob
    assert len(dramatiq.get_broker().queues["outbound"].queue) == 1


def test_an_admin_token_sends_media(client, alice):
    response = post(
        client,
        bearer(alice),
        {"phone": "+593968196046", "text": "", "media_url": "https://cdn.example.com/a.png"},
    )
    assert response.status_code == 201
    assert Message.objects.get().kind == "image"


def test_it_records_last_use_at_most_once_a_minute(client, bob):
    headers = bearer(bob)
    post(client, headers, {"phone": "0968196046", "text": "Hola"})
    first = ApiToken.objects.get().last_used_at
    assert first is not None
    post(client, headers, {"phone": "0968196046", "text": "Otra"})
    assert ApiToken.objects.get().last_used_at == first


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"phone": "123", "text": "Hola"}, "phone"),
        ({"phone": "0968196046", "text": "  "}, "text"),
        ({"phone": "0968196046", "text": "Hola", "media_url": "javascript:alert(1)"}, "media_url"),
        ({"text": "Hola"}, "phone"),
        ({"phone": 593968196046, "text": "Hola"}, "phone"),
    ],
)
def test_bad_input_is_a_422_naming_the_field(client, bob, body, field):
    response = post(client, bearer(bob), body)
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert any(error["loc"][-1] == field for error in detail), detail
    assert not Message.objects.exists()


@pytest.mark.parametrize("use_simulator", [False, True])
def test_it_requires_an_https_media_url(client, bob, settings, use_simulator):
    settings.USE_SIMULATOR = use_simulator
    body = {"phone": "0968196046", "text": "Hola", "media_url": "http://cdn.example.com/a.png"}
    response = post(client, bearer(bob), body)
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"][-1] == "media_url" and "https://" in error["msg"]
    assert not Message.objects.exists()


def test_a_spanish_reason_for_a_bad_phone(client, bob):
    response = post(client, bearer(bob), {"phone": "123", "text": "Hola"})
    assert "número de teléfono no es válido" in response.json()["detail"][0]["msg"]


@pytest.mark.parametrize("raw", ["{not json", "[1, 2]", "", "null"])
def test_broken_json_is_a_client_error(client, bob, raw):
    response = client.post(URL, raw, content_type="application/json", **bearer(bob))
    assert 400 <= response.status_code < 500


def test_get_shows_status_timestamps_and_reason(client, bob):
    headers = bearer(bob)
    created = post(client, headers, {"phone": "0968196046", "text": "Hola"}).json()
    Message.objects.filter(id=created["id"]).update(
        status="failed", failed_at=timezone.now(), failure_reason="El número no tiene WhatsApp"
    )
    response = client.get(f"{URL}/{created['id']}", **headers)
    assert response.status_code == 200
    data = response.json()
    assert data["status"] == "failed"
    assert data["failure_reason"] == "El número no tiene WhatsApp"
    assert data["failed_at"] and data["created_at"]
    assert data["sent_at"] is None
    assert data["phone"] == "+593968196046" and data["text"] == "Hola"


def test_get_of_a_missing_message_is_404(client, bob):
    assert client.get(f"{URL}/999999", **bearer(bob)).status_code == 404


def test_get_needs_a_token(client, bob):
    assert client.get(f"{URL}/1").status_code == 401


def test_the_openapi_schema_is_served(client, db):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["info"]["title"] == "chatdesk API"
    assert "/api/v1/messages" in schema["paths"]
    assert client.get("/api/v1/docs").status_code == 200


def test_the_command_prints_a_working_token(client, bob, capsys):
    call_command("create_api_token", "bob", "tienda")
    raw = capsys.readouterr().out.strip()
    token = ApiToken.objects.get()
    assert token.digest == token_digest(raw) and token.name == "tienda"
    assert (
        post(
            client, {"HTTP_AUTHORIZATION": f"Bearer {raw}"}, {"phone": "0968196046", "text": "Hola"}
        ).status_code
        == 201
    )


def test_the_token_page_creates_and_shows_the_raw_token_once(client_for, bob):
    client = client_for(bob)
    response = client.post("/account/tokens/", {"name": "tienda"})
    token = ApiToken.objects.get()
    raw = response.context["raw_token"]
    assert token.digest == token_digest(raw)
    assert raw in response.content.decode()
    page = client.get("/account/tokens/").content.decode()
    assert raw not in page and token.prefix in page and "tienda" in page


def test_it_keeps_the_token_page_out_of_every_cache(client_for, bob):
    # The back button must not show the raw token again from the browser's cache.
    response = client_for(bob).post("/account/tokens/", {"name": "tienda"})
    cache_control = response.headers["Cache-Control"]
    assert "no-store" in cache_control and "no-cache" in cache_control
    assert "private" in cache_control


def test_the_token_page_revokes(client_for, bob):
    token = ApiToken.issue(user=bob, name="t")[0]
    response = client_for(bob).post(f"/account/tokens/{token.id}/revoke/")
    assert response.status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is not None


def test_nobody_revokes_someone_elses_token(client_for, bob, alice):
    token = ApiToken.issue(user=alice, name="t")[0]
    assert client_for(bob).post(f"/account/tokens/{token.id}/revoke/").status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None


def test_the_token_page_needs_a_login(client, db):
    response = client.get("/account/tokens/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
