"""The server's codec refuses undecodable or mistyped request payloads as INVALID_ARGUMENT."""

from __future__ import annotations

import pytest
from grpclib import GRPCError
from grpclib.const import Status
from grpclib.health.v1.health_pb2 import HealthCheckRequest

from caxton.shell.api.codec import RequestCodec
from caxton.shell.api.generated.caxton import v1


def refusal(payload: bytes, kind: type) -> str:
    with pytest.raises(GRPCError) as caught:
        RequestCodec().decode(payload, kind)
    assert caught.value.status is Status.INVALID_ARGUMENT
    return str(caught.value.message)


def test_a_valid_request_decodes_as_usual() -> None:
    request = v1.SendRequest(
        message=v1.AclEnvelope(performative="inform", receivers=["echo"], reply_by=5), wait_ms=5
    )
    assert RequestCodec().decode(bytes(request), v1.SendRequest) == request


def test_a_truncated_payload_is_invalid_argument() -> None:
    assert refusal(b"\x0a\x05ab", v1.SendRequest).startswith(
        "the request is not a valid SendRequest message ("
    )


def test_a_group_where_a_string_belongs_is_refused_by_name() -> None:
    assert "field 'name' has the wrong wire type" in refusal(b"\x0b", v1.DeployRequest)


def test_a_varint_where_a_string_belongs_is_refused() -> None:
    assert "field 'name' should be string" in refusal(b"\x08\x05", v1.DeployRequest)


def test_a_mistyped_field_inside_a_nested_message_is_refused() -> None:
    nested = b"\x0a\x02\x10\x01"  # SendRequest.message = AclEnvelope with a varint field 2
    assert "field 'performative' should be string" in refusal(nested, v1.SendRequest)


def test_a_google_protobuf_request_decodes_as_usual() -> None:
    # grpclib's health and reflection services take google.protobuf messages
    request = HealthCheckRequest(service="caxton.v1.MessageService")
    decoded = RequestCodec().decode(request.SerializeToString(), HealthCheckRequest)
    assert decoded == request


def test_a_truncated_google_protobuf_request_is_refused_briefly() -> None:
    # field 1 (service) says one byte more than the payload holds
    payload = b"\x0a" + _varint(50_001) + b"x" * 50_000
    message = refusal(payload, HealthCheckRequest)
    assert message.startswith("the request is not a valid HealthCheckRequest message (")
    assert len(message) < 300


def _varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    return bytes([*out, n])
