"""`caxton trace`, `caxton replay --print` and `caxton events export` against a real server
whose log holds a cluster's conversation: a takeover midway, each event stamped with the
node that committed it (or not, in a log written before stamps)."""

from __future__ import annotations

import asyncio
import json
from itertools import groupby
from pathlib import Path

import pytest

from caxton.domain.events import (
    AgentDeployed,
    AgentStarted,
    MessageHandled,
    MessageSent,
    Recorded,
)
from caxton.domain.frozen import replace
from caxton.domain.ids import is_client
from caxton.shell.store import EventLog, Pending
from tests.e2e.conftest import ServerProcess, caxton, free_port
from tests.replay.cluster_recordings import ACCEPTED_BY, BIDDER_B, clustered_contract_net
from tests.replay.recordings import CONVERSATION

pytestmark = pytest.mark.slow

TAKEOVER = (
    f'node="n2" status="takeover" shard="{BIDDER_B}" from="n1" reason="lease expired" '
    'epoch="2" agent="bidder-b"'
)


def write_log(path: Path, history: list[Recorded]) -> None:
    """The events in order, each appended by a log opened as the node that stamped it. No
    agent is deployed and no delivery is left open: the server serves the log, starts
    nothing and dead-letters nothing."""
    handled = {r.event.message_id for r in history if isinstance(r.event, MessageHandled)}
    kept = [
        _closed(r, handled)
        for r in history
        if not isinstance(r.event, AgentDeployed | AgentStarted)
    ]

    async def write() -> None:
        for node, run in groupby(kept, key=lambda r: r.node):
            log = await EventLog.open(str(path), origin=node)
            try:
                await log.append([Pending(r.event, r.at, r.traceparent) for r in run])
            finally:
                await log.close()

    path.parent.mkdir(parents=True)
    asyncio.run(write())


def _closed(recorded: Recorded, handled: set[str]) -> Recorded:
    event = recorded.event
    if isinstance(event, MessageSent) and event.message.id not in handled:
        kept = tuple(d for d in event.deliveries if is_client(d))
        return replace(recorded, event=replace(event, deliveries=kept))
    return recorded


def steps(stdout: str) -> list[str]:
    return [line.split("] ", 1)[1] for line in stdout.splitlines()]


@pytest.mark.parametrize("stamped", [False, True], ids=["derived", "stamped"])
def test_trace_names_each_step_s_node_and_shows_the_takeover(tmp_path: Path, stamped: bool) -> None:
    data = tmp_path / "data"
    write_log(data / "events.db", clustered_contract_net(stamped=stamped))
    server = ServerProcess(data, f"127.0.0.1:{free_port()}").start()
    try:
        trace = caxton("trace", "--conversation-id", CONVERSATION, server=server.address)
        lines = steps(trace.stdout)
        accepted = f'node="{ACCEPTED_BY}" ' if stamped else ""
        assert lines[:2] == [
            f'{accepted}agent="client:cli" message="request" status="sent" to="manager"',
            'node="n0" agent="manager" message="request" status="received"',
        ]
        assert lines[8:11] == [
            'node="n2" agent="bidder-c" message="propose" status="sent" to="manager"',
            TAKEOVER,
            'node="n0" agent="manager" message="propose" status="received"',
        ]
        assert lines[16] == 'node="n2" agent="bidder-b" message="inform" status="sent" to="manager"'
        assert len(lines) == 19 and sum("takeover" in line for line in lines) == 1

        as_json = caxton(
            "trace", "--conversation-id", CONVERSATION, "--json", server=server.address
        )
        takeover = json.loads(as_json.stdout.splitlines()[9])
        assert takeover["takeover"] == {
            "shard": BIDDER_B,
            "from": "n1",
            "to": "n2",
            "reason": "expired",
            "epoch": 2,
        }

        printed = caxton(
            "replay", "--conversation", CONVERSATION, "--print", server=server.address
        ).stdout.splitlines()
        assert printed[11].split()[2:] == [
            "n2",
            "takeover",
            "shard",
            str(BIDDER_B),
            "n1",
            "→",
            "n2",
            "(lease",
            "expired,",
            "epoch",
            "2)",
        ]

        exported = caxton(
            "events",
            "export",
            "--conversation",
            CONVERSATION,
            "--format",
            "jsonl",
            "-o",
            "-",
            server=server.address,
        ).stdout.splitlines()
        claims = [json.loads(line) for line in exported if '"ShardClaimed"' in line]
        assert [c["data"]["node"] for c in claims if c["data"]["shard"] == BIDDER_B] == [
            "n1",
            "n2",
        ]
        nodes = {json.loads(line).get("node", "") for line in exported}
        assert nodes == ({"n0", "n1", "n2"} if stamped else {""})
    finally:
        server.stop()


def test_a_lone_server_s_trace_has_no_node_and_no_takeover(server: ServerProcess) -> None:
    sent = caxton("send", "--to", "nobody", "--content", "{}", server=server.address)
    conversation = sent.stdout.split("conversation ", 1)[1].split()[0]
    trace = caxton("trace", "--conversation-id", conversation, server=server.address).stdout
    assert "node=" not in trace and "takeover" not in trace
    assert 'status="sent" to="nobody"' in trace
