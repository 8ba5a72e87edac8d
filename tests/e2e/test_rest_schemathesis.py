"""schemathesis against /openapi.json of a live server: generated requests, valid and not,
to every operation; no answer is a 5xx, and every answer conforms to the document (status,
content type, headers, body schema), JSON lines checked line by line.

Left out: the follow stream (it never ends by itself; test_rest reads it); the check that
every schema-valid request is accepted: the protobuf types cannot say what the domain
refuses (an agent name, a performative, a digest), which the gateway answers with a 400
problem, as gRPC answers INVALID_ARGUMENT; and the check that every schema-invalid request
is refused, which cannot tell a number from a string in a query (`?streams=5` is the
stream named "5"): test_rest shows invalid bodies and parameters refused, by name."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx2 as httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from jsonschema import Draft202012Validator
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from tests.e2e.conftest import ServerProcess, free_port
from tests.support import wat

pytestmark = pytest.mark.slow

TOKEN = "schemathesis-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def rest_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    rest = f"127.0.0.1:{free_port()}"
    data = tmp_path_factory.mktemp("schemathesis") / "data"
    server = ServerProcess(data, f"127.0.0.1:{free_port()}").start("--rest", rest, "--token", TOKEN)
    try:
        url = f"http://{rest}"
        deployed = httpx.post(
            f"{url}/api/v1/agents",
            params={"name": "echo"},
            content=wat("reply"),
            headers={**AUTH, "Content-Type": "application/wasm"},
            timeout=60,
        )
        assert deployed.status_code == 201, deployed.text
        yield schemathesis.openapi.from_url(f"{url}/openapi.json")
    finally:
        assert server.stop() == 0, "".join(server.lines)
        assert "Traceback" not in "".join(server.lines), "".join(server.lines)


schema = schemathesis.pytest.from_fixture("rest_schema").exclude(path="/api/v1/events/follow")


@schema.parametrize()
@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_the_gateway_answers_every_generated_request_as_its_document_says(case: Any) -> None:
    response = case.call_and_validate(
        headers=AUTH,
        excluded_checks=[positive_data_acceptance, negative_data_rejection],
        timeout=60,
    )
    assert response.status_code < 500, response.text
    if response.headers.get("content-type", [""])[0] == "application/x-ndjson":
        document = case.operation.schema.raw_schema
        record = {"$ref": "#/components/schemas/EventRecord", **document}
        validator = Draft202012Validator(record)
        for line in response.content.splitlines():
            validator.validate(json.loads(line))
