"""GET /api/v1/stats/daily and /summary: token auth, roles, 422 for bad dates."""

import pytest

from chatdesk.models import ApiToken


def _auth(user):
    _token, raw = ApiToken.issue(user=user, name="t")
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


def test_it_requires_a_token(client, db):
    assert client.get("/api/v1/stats/daily").status_code == 401


def test_it_gives_daily_rows(client, carla, world):
    response = client.get("/api/v1/stats/daily?from=2025-03-10&to=2025-03-11", **_auth(carla))
    assert response.status_code == 200
    first, second = response.json()
    assert first["day"] == "2025-03-10" and first["sent"] == 2 and first["open_rate"] == 100
    assert second["delivered"] == 2


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("from=2025-02-30", "from"),
        ("from=hoy", "from"),
        ("from=2025-03-10&to=x", "to"),
        ("from=2025-03-10&to=2025-03-01", "to"),
        ("from=2020-01-01&to=2025-01-01", "to"),
        ("to=2025-01-01", "from"),
    ],
)
def test_bad_dates_are_a_422_naming_the_field(client, carla, query, field):
    response = client.get(f"/api/v1/stats/daily?{query}", **_auth(carla))
    assert response.status_code == 422
    (detail,) = response.json()["detail"]
    assert detail["loc"] == ["query", field] and detail["msg"]


def test_an_agent_may_not_read_daily_stats(client, bob):
    assert client.get("/api/v1/stats/daily", **_auth(bob)).status_code == 403


def test_the_summary_is_for_every_role(client, bob, world):
    response = client.get("/api/v1/stats/summary?from=2025-03-10&to=2025-03-11", **_auth(bob))
    assert response.status_code == 200
    body = response.json()
    assert body["period"]["sent"] == 3 and body["period"]["open_rate"] == 67
    assert set(body["figures"]) >= {"sent", "read", "open_rate", "new_conversations"}


def test_charlie_may_not_read_the_summary(client, charlie):
    assert client.get("/api/v1/stats/summary", **_auth(charlie)).status_code == 403
