"""Bulk sends over SendStream to a real `caxton server start`: accepted, durable, counted,
refused without the token."""

from __future__ import annotations

import asyncio
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from caxton.client import CaxtonClient, SendResult, Unauthenticated
from caxton.domain.acl import AclMessage, Performative
from caxton.domain.events import MessageSent
from tests.e2e.conftest import ServerProcess, free_port
from tests.support import wat

pytestmark = pytest.mark.slow

TOKEN = "t0k"
MESSAGES = 3_000


def _requests(metrics: str, method: str) -> dict[str, float]:
    """caxton_grpc_requests_total of one method, by code."""
    with urllib.request.urlopen(f"http://{metrics}/metrics", timeout=10) as page:
        text = page.read().decode()
    return {
        sample.labels["code"]: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "caxton_grpc_requests_total" and sample.labels["method"] == method
    }


def _inform(n: int) -> AclMessage:
    return AclMessage(
        id=f"bulk-{n}",
        performative=Performative.INFORM,
        sender="",
        receivers=("sink",),
        content=f'{{"n": {n}}}',
    )


async def _send_all(address: str) -> list[SendResult]:
    async with CaxtonClient(address, token=TOKEN) as client:
        await client.deploy(wat("silent"), "sink", mailbox=MESSAGES)
        results = await client.send_many(_inform(n) for n in range(MESSAGES))
    assert all(isinstance(r, SendResult) for r in results), results[:3]
    return [r for r in results if isinstance(r, SendResult)]


async def _refused(address: str) -> None:
    async with CaxtonClient(address, token="wrong") as client:
        with pytest.raises(Unauthenticated):
            await client.send_many([_inform(0)])


async def _logged_ids(address: str) -> list[str]:
    async with CaxtonClient(address, token=TOKEN) as client:
        return [
            r.event.message.id async for r in client.events() if isinstance(r.event, MessageSent)
        ]


def test_a_bulk_send_is_accepted_whole_survives_a_restart_and_is_counted_once(
    tmp_path: Path,
) -> None:
    metrics = f"127.0.0.1:{free_port()}"
    server = ServerProcess(tmp_path / "data", f"127.0.0.1:{free_port()}")
    server.start("--token", TOKEN, "--metrics", metrics)
    try:
        results = asyncio.run(_send_all(server.address))
        asyncio.run(_refused(server.address))

        assert [r.message_id for r in results] == [f"bulk-{n}" for n in range(MESSAGES)]
        assert _requests(metrics, "SendStream") == {"OK": 1}  # one stream, one request
    finally:
        assert server.stop() == 0

    restarted = ServerProcess(tmp_path / "data", f"127.0.0.1:{free_port()}").start("--token", TOKEN)
    try:
        logged = asyncio.run(_logged_ids(restarted.address))
        assert sorted(logged) == sorted(f"bulk-{n}" for n in range(MESSAGES))
    finally:
        restarted.stop()
