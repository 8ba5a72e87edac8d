"""A real server's /metrics as a CLI that follows a conversation and is interrupted sees it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import ServerProcess, caxton, free_port, write_component

pytestmark = pytest.mark.slow


def _stream_requests(metrics: str) -> dict[str, float]:
    """caxton_grpc_requests_total of StreamEvents, by code."""
    with urllib.request.urlopen(f"http://{metrics}/metrics", timeout=10) as page:
        text = page.read().decode()
    return {
        sample.labels["code"]: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "caxton_grpc_requests_total" and sample.labels["method"] == "StreamEvents"
    }


def test_an_interrupted_trace_follow_is_counted_as_cancelled(tmp_path: Path) -> None:
    metrics = f"127.0.0.1:{free_port()}"
    server = ServerProcess(tmp_path / "data", f"127.0.0.1:{free_port()}").start(
        "--metrics", metrics
    )
    try:
        caxton(
            "agent",
            "deploy",
            str(write_component(tmp_path, "reply")),
            "--name",
            "echo",
            server=server.address,
        )
        sent = caxton(
            "send", "--to", "echo", "--content", "{}", "--wait", "5s", server=server.address
        ).stdout
        conversation = next(
            line.split()[1] for line in sent.splitlines() if line.startswith("conversation ")
        )
        following = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "caxton",
                "trace",
                "--conversation-id",
                conversation,
                "--follow",
                "--server",
                server.address,
            ],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "NO_COLOR": "1"},
        )
        assert following.stdout is not None
        for _ in range(3):  # the history: sent, received, the reply sent
            assert following.stdout.readline()
        caxton(  # a step that only the follow stream can bring: once printed, it is open
            "send",
            "--to",
            "echo",
            "--content",
            "{}",
            "--conversation-id",
            conversation,
            server=server.address,
        )
        assert 'status="sent"' in following.stdout.readline()  # the new request, followed
        following.send_signal(signal.SIGINT)  # Ctrl-C
        following.communicate(timeout=30)

        # the server counts the stream once it has seen the client go: poll its /metrics
        deadline = time.monotonic() + 20
        counted = _stream_requests(metrics)
        while "CANCELLED" not in counted and time.monotonic() < deadline:
            time.sleep(0.05)
            counted = _stream_requests(metrics)

        # the follow cancelled once; the reads of the history before it ended OK
        assert counted.get("CANCELLED") == 1 and set(counted) <= {"OK", "CANCELLED"}, counted
    finally:
        server.stop()
