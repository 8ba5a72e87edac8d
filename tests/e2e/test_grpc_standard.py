"""A `caxton server start` answers Google's health and reflection clients (grpcurl's calls)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import ServerProcess

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]  # where `-m tests.e2e.…` is found

CAXTON_SERVICES = {
    "caxton.v1.AgentService",
    "caxton.v1.MessageService",
    "caxton.v1.ConversationService",
    "caxton.v1.EventService",
    "caxton.v1.OpsService",
    "caxton.v1.ToolService",
    "caxton.v1.ClusterService",
}


def google_client(*args: str) -> list[str]:
    result = subprocess.run(
        [sys.executable, "-m", "tests.e2e.google_grpc_clients", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.splitlines()


def test_the_health_check_says_serving_for_the_server_and_a_service(
    server: ServerProcess,
) -> None:
    assert google_client("check", server.address, "") == ["SERVING"]
    assert google_client("check", server.address, "caxton.v1.MessageService") == ["SERVING"]


def test_reflection_lists_and_describes_the_services(server: ServerProcess) -> None:
    assert set(google_client("list", server.address)) == {*CAXTON_SERVICES, "grpc.health.v1.Health"}
    assert google_client("describe", server.address, "caxton.v1.MessageService") == [
        "Send(caxton.v1.SendRequest) caxton.v1.SendReply",
        "SendStream(caxton.v1.StreamedSend) caxton.v1.SendAcks",
    ]


def test_a_health_watch_hears_not_serving_before_the_server_goes(server: ServerProcess) -> None:
    with subprocess.Popen(
        [sys.executable, "-m", "tests.e2e.google_grpc_clients", "watch", server.address, ""],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as watch:
        assert watch.stdout is not None
        assert watch.stdout.readline() == "SERVING\n"
        assert server.stop() == 0
        rest, _ = watch.communicate(timeout=60)
    # the stream is not ended by the server: it goes with the connection
    assert rest.splitlines() == ["NOT_SERVING", "ended UNAVAILABLE"]
