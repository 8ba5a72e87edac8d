"""`caxton cluster members|status` and the node in `caxton agent status`: the text made
from a cluster's view, and the real CLI against a real server (alone, so not clustered);
`caxton cluster check` over real and hand-made exports."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

from rich.console import Console

from caxton.domain.acl import AclMessage, Performative
from caxton.domain.cluster_audit import ranges
from caxton.domain.events import (
    Event,
    MemberChanged,
    MessageHandled,
    MessageSent,
    NodeStarted,
    Recorded,
    ShardClaimed,
    stream_of,
)
from caxton.replay.export import jsonl_lines
from caxton.shell.cli.cluster import (
    agents_cell,
    members_notes,
    members_table,
    status_lines,
)
from caxton.shell.client import ClusterView, LogInfo, MemberInfo
from tests.e2e.conftest import ServerProcess, caxton, write_component


def member(node: str, state: str, shards: tuple[int, ...], agents: tuple[str, ...]) -> MemberInfo:
    return MemberInfo(
        node=node,
        address=f"{node}:50051",
        state=state,
        incarnation=2 if node == "node-b" else 1,
        version="0.1.0",
        since_ms=1_764_000_000_000,
        shards=shards,
        agents=agents,
    )


CLUSTER = ClusterView(
    node="node-a",
    clustered=True,
    shard_count=64,
    members=(
        member("node-a", "alive", tuple(range(0, 30)), ("alice",)),
        member("node-b", "suspect", tuple(range(30, 61)), tuple(f"agent-{i}" for i in range(7))),
        member("node-c", "left", (), ()),
    ),
    unowned_shards=(61, 62, 63),
    unowned_agents=("zed",),
)
LOG = LogInfo(last_position=12_345, store="postgresql://db/caxton", node="node-a")


def rendered(view: ClusterView) -> list[str]:
    console = Console(file=io.StringIO(), width=200, no_color=True)
    console.print(members_table(view))
    text = console.file.getvalue()  # type: ignore[attr-defined]
    return [line.rstrip() for line in text.splitlines()]


def test_members_are_one_line_per_node_with_state_incarnation_shards_and_agents() -> None:
    lines = rendered(CLUSTER)
    assert lines[0].split() == ["NODE", "ADDRESS", "STATE", "INCARNATION", "SHARDS", "AGENTS"]
    assert lines[1].split() == ["node-a*", "node-a:50051", "alive", "1", "30", "alice"]
    assert lines[2].split() == [
        "node-b",
        "node-b:50051",
        "suspect",
        "2",
        "31",
        "agent-0,agent-1,agent-2,agent-3,agent-4",
        "+2",
        "more",
    ]
    assert lines[3].split() == ["node-c", "node-c:50051", "left", "1", "0", "-"]
    assert members_notes(CLUSTER) == [
        "* node-a answered; 64 shards in the cluster",
        "3 shards held by no node: 61-63",
        "  their agents run nowhere until a node claims them: zed",
    ]


def test_status_counts_members_by_state_and_says_what_no_node_holds() -> None:
    assert status_lines(CLUSTER, LOG) == [
        "cluster of 3 nodes (1 alive, 1 suspect, 1 left); this is node-a",
        "node-a holds 30 of 64 shards and runs 1 of 9 agents",
        "3 shards held by no node: 61-63",
        "  their agents run nowhere until a node claims them: zed",
        "log: postgresql://db/caxton, position 12,345",
    ]


def test_a_server_alone_is_not_clustered() -> None:
    alone = ClusterView(
        node="solo",
        clustered=False,
        shard_count=64,
        members=(member("solo", "alive", (), ("a", "b")),),
        unowned_shards=(),
        unowned_agents=(),
    )
    assert status_lines(alone, LOG)[0] == "not clustered: solo runs every agent (2 agents)"
    assert rendered(alone)[1].split() == ["solo*", "solo:50051", "alive", "1", "-", "a,b"]
    assert members_notes(alone) == ["* solo answered; not clustered: it runs every agent"]


def test_shards_fold_into_runs_and_agents_are_cut_short() -> None:
    assert ranges([7, 0, 1, 2, 3, 9, 10, 12]) == "0-3,7,9-10,12"
    assert ranges([]) == ""
    assert agents_cell(()) == "-"
    assert agents_cell(("a", "b")) == "a,b"


def test_cluster_commands_against_a_server_alone(server: ServerProcess, tmp_path: Path) -> None:
    echo = write_component(tmp_path, "reply")
    caxton("agent", "deploy", str(echo), "--name", "echo", server=server.address)

    members = caxton("cluster", "members", server=server.address).stdout.splitlines()
    assert members[0].split() == ["NODE", "ADDRESS", "STATE", "INCARNATION", "SHARDS", "AGENTS"]
    row = members[1].split()
    node = row[0].removesuffix("*")
    assert row[1:] == [server.address, "alive", "1", "-", "echo"]
    assert members[2] == f"* {node} answered; not clustered: it runs every agent"

    (as_json,) = caxton("cluster", "members", "--json", server=server.address).stdout.splitlines()
    assert json.loads(as_json) | {"since_ms": 0, "version": ""} == {
        "node": node,
        "address": server.address,
        "state": "alive",
        "incarnation": 1,
        "version": "",
        "since_ms": 0,
        "shards": [],
        "agents": ["echo"],
        "answering": True,
        "clustered": False,
    }

    status = caxton("cluster", "status", server=server.address).stdout.splitlines()
    assert status[0] == f"not clustered: {node} runs every agent (1 agent)"
    assert re.fullmatch(
        rf"log: {re.escape(str(server.data_dir))}/events.db, position \d+", status[1]
    )

    agent = caxton("agent", "status", "echo", server=server.address).stdout.splitlines()
    assert agent[:2] == ["✓ Running (1/1 instances healthy)", f"  node: {node}"]
    listed = caxton("agent", "list", server=server.address).stdout
    assert re.search(rf"echo\s+running\s+1/1\s.*\s{re.escape(node)}\s*$", listed, re.MULTILINE)


# --- caxton cluster check -------------------------------------------------------------


def write_export(
    path: Path, events: list[Event], *, node: str = "n1", then: Event | None = None
) -> Path:
    """A hand-made log exported as `caxton events export --format jsonl` writes it: an
    event a millisecond, and `then` a second after the last."""
    at = 1_764_000_000_000
    records = [
        Recorded(position=i, stream=stream_of(e), version=1, at=at + i, event=e, node=node)
        for i, e in enumerate(events, start=1)
    ]
    if then is not None:
        last = len(records)
        records.append(
            Recorded(
                position=last + 1,
                stream=stream_of(then),
                version=1,
                at=at + last + 1000,
                event=then,
                node=node,
            )
        )
    path.write_bytes(b"".join(jsonl_lines(records)))
    return path


def request(mid: str) -> MessageSent:
    message = AclMessage(
        id=mid, performative=Performative.REQUEST, sender="client:t", receivers=("echo",)
    )
    return MessageSent(message=message, deliveries=("echo#0",))


def handling(mid: str) -> MessageHandled:
    return MessageHandled(message_id=mid, conversation_id="", agent="echo", replica=0)


def test_check_of_a_lone_server_s_export_is_sound(server: ServerProcess, tmp_path: Path) -> None:
    echo = write_component(tmp_path, "reply")
    caxton("agent", "deploy", str(echo), "--name", "echo", server=server.address)
    for _ in range(3):
        caxton("send", "--to", "echo", "--content", "{}", "--wait", "10s", server=server.address)
    export = tmp_path / "log.jsonl"
    caxton("events", "export", "--format", "jsonl", "-o", str(export), server=server.address)
    checked = caxton("cluster", "check", str(export))
    assert re.fullmatch(
        rf"✓ {re.escape(str(export))}: \d+ events, 6 messages accepted once, 3 handlings each "
        r"once and in order; not a cluster's log \(no shard claims\)\n",
        checked.stdout,
    ), checked.stdout


def test_check_prints_each_finding_and_exits_1(tmp_path: Path) -> None:
    export = write_export(
        tmp_path / "log.jsonl",
        [request("m1"), handling("m1"), handling("m1"), request("m2"), request("m2")],
    )
    checked = caxton("cluster", "check", str(export), check=False)
    assert checked.returncode == 1
    assert checked.stdout.splitlines() == [
        "✗ position 3: [handled] echo#0 handled m1 again (it was handled at position 2)",
        "✗ position 5: [accepted] message m2 was accepted again (first at position 4)",
        "✗ end of log: [handled] m2 was accepted for echo#0 at position 4 and never handled",
    ]
    assert checked.stderr.strip() == f"✗ {export}: 3 findings"


def test_check_after_a_fault_wants_the_shards_of_the_nodes_it_took_down_claimed(
    tmp_path: Path,
) -> None:
    started = NodeStarted(node="n1", address="a", version="1")
    claims = [ShardClaimed(shard=s, node="n1", epoch=1, reason="unowned") for s in range(64)]
    joined = NodeStarted(node="n2", address="b", version="1")
    export = write_export(tmp_path / "log.jsonl", [started, *claims, joined])
    said = caxton("cluster", "check", str(export)).stdout
    assert "64 claims with rising epochs, no deposed node committed" in said
    unstamped = write_export(tmp_path / "api.jsonl", [started, *claims, joined], node="")
    said = caxton("cluster", "check", str(unstamped)).stdout
    assert "64 claims with rising epochs, fencing not checked (no event names its node" in said
    fault_ended = "66"  # n2's start: n1 was killed then, and n2 claimed nothing
    seen_dead = MemberChanged(node="n1", state="dead", by="n2")  # a second later
    export = write_export(tmp_path / "fault.jsonl", [started, *claims, joined], then=seen_dead)
    taken_down = caxton(
        "cluster",
        "check",
        str(export),
        "--after",
        fault_ended,
        "--gone",
        "n1",
        "--within",
        "0.5",
        check=False,
    )
    assert taken_down.returncode == 1
    assert taken_down.stdout.startswith(
        "✗ end of log: [owners] shards 0-63 have had no holder since"
    )
    assert taken_down.stdout.rstrip().endswith("(its holder n1 was taken down)")


def test_check_says_what_is_wrong_with_a_file_that_is_not_an_export(tmp_path: Path) -> None:
    not_json = tmp_path / "notes.txt"
    not_json.write_text("hello\n")
    unknown = tmp_path / "newer.jsonl"
    unknown.write_text(
        json.dumps(
            {
                "schema": "caxton.events/1",
                "position": 1,
                "stream": "x",
                "version": 1,
                "at_ms": 1,
                "type": "ShardSplit",
                "data": {},
            }
        )
        + "\n"
    )
    missing_key = write_export(tmp_path / "cut.jsonl", [request("m1")])
    line = json.loads(missing_key.read_text())
    del line["data"]["deliveries"]
    missing_key.write_text(json.dumps(line) + "\n")
    expected = {
        not_json: "line 1: not JSON",
        unknown: "line 1: unknown event type 'ShardSplit' (exported by a newer Caxton?)",
        missing_key: "line 1: a MessageSent without its 'deliveries'",
        tmp_path / "absent.jsonl": "cannot read (No such file or directory)",
    }
    for path, why in expected.items():
        checked = caxton("cluster", "check", str(path), check=False)
        assert checked.returncode == 1, checked
        assert checked.stderr.startswith(f"✗ {path}: {why}"), checked.stderr
        assert "Traceback" not in checked.stderr
    bad_after = caxton("cluster", "check", str(missing_key), "--after", "1h", check=False)
    assert bad_after.returncode == 1 and "Traceback" not in bad_after.stderr
