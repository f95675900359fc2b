"""Schema fuzzing of /api/v1/: schemathesis reads the OpenAPI schema the app serves, generates
requests from it (valid and invalid) and sends them to the app in-process over WSGI, with
Alice's (admin) bearer token. Every answer must be a non-5xx and match what the schema says
about it: status code, content type, body."""

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from chatdesk.models import ApiToken

# What the schema promises. Left out: "a schema-valid request is accepted" (a string the schema
# allows may still be an invalid phone number or date range: a documented 422, not a bug).
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]

# Read from the app itself, as a client would (serving the schema touches no database).
schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", get_wsgi_application())


@pytest.fixture
def token(db, alice) -> str:
    # As Django's test client does: a request must not close the test's database connection
    # (its transaction is the test's isolation).
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield ApiToken.issue(user=alice, name="schemathesis")[1]
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@schema.parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
def test_it_answers_generated_requests_without_5xx_and_as_the_schema_says(case, token):
    case.call_and_validate(headers={"Authorization": f"Bearer {token}"}, checks=CHECKS)
