"""A real cluster: one conversation with an agent whose node is killed midway; `caxton
trace` from another node names the node of each step and shows the takeover."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from caxton.client import CaxtonClient
from caxton.domain.placement import shard_of
from tests.e2e.conftest import ServerProcess, caxton
from tests.e2e.test_cluster import LEASE, cluster, holder
from tests.store.conftest import postgres_schema
from tests.support import wat

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.cluster]

ANSWERED_WITHIN_S = 90  # a lease to expire, a claim, a start, on a busy machine


@pytest.fixture
def store() -> Iterator[str]:
    with postgres_schema("caxton_e2e_trace") as url:
        yield url


def ask(node: ServerProcess, conversation: str) -> None:
    """A request to echo in `conversation` through `node`, sent again until answered (the
    agent may be between two holders)."""
    deadline = time.monotonic() + ANSWERED_WITHIN_S
    while True:
        sent = caxton(
            "send",
            "--to",
            "echo",
            "--content",
            "{}",
            "--conversation-id",
            conversation,
            "--wait",
            "60s",  # past a lease: a message accepted before the takeover is answered after
            server=node.address,
            check=False,
        )
        if sent.returncode == 0:
            return
        assert time.monotonic() < deadline, sent.stdout + sent.stderr
        time.sleep(0.5)


def test_trace_shows_each_step_s_node_and_the_takeover_after_a_kill(
    tmp_path: Path, store: str
) -> None:
    with cluster(tmp_path, store, lease=LEASE) as nodes:

        async def deploy() -> None:
            async with CaxtonClient(nodes[0].address) as client:
                await client.deploy(wat("reply"), name="echo")

        asyncio.run(deploy())
        conversation = f"takeover-{uuid.uuid4().hex[:8]}"
        ask(nodes[0], conversation)
        first = asyncio.run(holder(store, "echo"))
        victim = next(n for n in nodes if n.data_dir.name == first)
        victim.kill()
        survivors = [n for n in nodes if n is not victim]
        ask(survivors[0], conversation)
        second = asyncio.run(holder(store, "echo"))
        assert second != first

        trace = caxton("trace", "--conversation-id", conversation, server=survivors[1].address)
        lines = trace.stdout.splitlines()
        # each handling by the node the last takeover gave echo's shard to (the survivors
        # may pass it on again to even out their shares: that is a takeover step too)
        current = first
        for line in lines:
            if 'status="takeover"' in line:
                assert f'shard="{shard_of("echo")}" from="{current}"' in line, trace.stdout
                current = field(line, "node")
            elif 'agent="echo"' in line:
                assert field(line, "node") == current, trace.stdout
        assert current == second
        expired = [line for line in lines if 'reason="lease expired"' in line]
        assert [field(line, "from") for line in expired] == [first], trace.stdout
        first_send = next(line for line in lines if 'agent="client:' in line)
        assert field(first_send, "node") == nodes[0].data_dir.name  # the node the client called

        as_json = [json.loads(line) for line in caxton(
            "trace", "--conversation-id", conversation, "--json", server=survivors[0].address
        ).stdout.splitlines()]  # fmt: skip
        claims = [line["takeover"] for line in as_json if line["status"] == "takeover"]
        assert (claims[0]["from"], claims[0]["reason"]) == (first, "expired")
        assert claims[-1]["to"] == second


def field(line: str, name: str) -> str:
    return line.split(f' {name}="', 1)[1].split('"', 1)[0]
