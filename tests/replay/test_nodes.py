"""The node of each step, and takeovers as steps, in a cluster's trace and replay; and a
log outside a cluster traced and replayed exactly as before."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from caxton.domain import membership
from caxton.domain.events import (
    MessageHandled,
    NodeStarted,
    Recorded,
    ShardClaimed,
    ShardReleased,
)
from caxton.domain.frozen import replace
from caxton.domain.placement import shard_of
from caxton.replay.cursor import Cursor
from caxton.replay.nodes import NO_HOLDERS, holders_of, node_of, step_nodes
from caxton.replay.recording import record
from caxton.replay.trace import format_line, trace_lines
from caxton.replay.views import detail, mermaid, row, rows, sequence, story
from tests.domain.domain_histories import Log
from tests.replay.cluster_recordings import (
    ACCEPTED_BY,
    BIDDER_B,
    ELSEWHERE,
    LATER,
    TAKEOVER,
    clustered_contract_net,
)
from tests.replay.recordings import CONVERSATION, contract_net


def without_the_cluster(history: list[Recorded]) -> list[Recorded]:
    """The same story with no claims and no stamps: a log outside a cluster."""
    return [replace(r, node="") for r in history if not isinstance(r.event, ShardClaimed)]


def steps_of(lines: list[str]) -> list[str]:
    return [line.split("] ", 1)[1] for line in lines]


# --- trace ----------------------------------------------------------------------------


def test_each_step_names_the_holder_of_its_agent_s_shard_at_that_point_of_the_log() -> None:
    lines = trace_lines(clustered_contract_net())
    by_step = [(line.agent, line.message, line.status, line.node) for line in lines]
    assert by_step[:4] == [
        ("client:cli", "request", "sent", ""),  # accepted by whichever node: not in the claims
        ("manager", "request", "received", "n0"),
        ("manager", "cfp", "sent", "n0"),
        ("bidder-a", "cfp", "received", "n1"),
    ]
    bidder_b = [
        (line.message, line.status, line.node)
        for line in lines
        if line.agent == "bidder-b" and line.takeover is None
    ]
    assert bidder_b == [
        ("cfp", "received", "n1"),
        ("propose", "sent", "n1"),
        ("inform", "sent", "n2"),  # after the takeover: sent from the new holder
    ]


def test_a_takeover_of_a_participant_s_shard_is_a_step_in_log_order() -> None:
    text = [format_line(line) for line in trace_lines(clustered_contract_net())]
    takeover = (
        'node="n2" status="takeover" shard="23" from="n1" reason="lease expired" epoch="2" '
        'agent="bidder-b"'
    )
    assert steps_of(text)[8:11] == [
        'node="n2" agent="bidder-c" message="propose" status="sent" to="manager"',
        takeover,
        'node="n0" agent="manager" message="propose" status="received"',
    ]
    assert sum("takeover" in line for line in text) == 1


def test_claims_of_other_shards_or_after_the_last_step_are_not_steps() -> None:
    history = clustered_contract_net()
    claims = [r.event for r in history if isinstance(r.event, ShardClaimed)]
    assert ELSEWHERE in claims and LATER in claims and shard_of("bidder-b") == BIDDER_B
    shown = [line.takeover for line in trace_lines(history) if line.takeover is not None]
    assert shown == [TAKEOVER]


def test_a_takeover_line_in_json_says_shard_from_to_reason_and_epoch() -> None:
    (line,) = [line for line in trace_lines(clustered_contract_net()) if line.takeover]
    data = line.to_json()
    assert data["status"] == "takeover" and data["node"] == "n2"
    assert data["conversation_id"] == CONVERSATION and data["agent"] == "bidder-b"
    assert data["takeover"] == {
        "shard": BIDDER_B,
        "from": "n1",
        "to": "n2",
        "reason": "expired",
        "epoch": 2,
    }


def test_a_stamped_log_names_the_node_that_accepted_a_client_s_message() -> None:
    lines = trace_lines(clustered_contract_net(stamped=True))
    assert (lines[0].agent, lines[0].node) == ("client:cli", ACCEPTED_BY)
    derived = trace_lines(clustered_contract_net())
    assert [line.node for line in lines[1:]] == [line.node for line in derived[1:]]


def test_outside_a_cluster_the_trace_is_what_it_always_was() -> None:
    clustered = trace_lines(clustered_contract_net())
    alone = trace_lines(without_the_cluster(clustered_contract_net()))
    assert all(line.node == "" and line.takeover is None for line in alone)
    assert "node" not in "".join(format_line(line) for line in alone)
    assert [replace(line, node="") for line in clustered if line.takeover is None] == alone
    assert format_line(trace_lines(contract_net())[1]) == (
        '[16:00:00.001] agent="manager" message="request" status="received"'
    )
    assert "node" not in trace_lines(contract_net())[1].to_json()


# --- replay ---------------------------------------------------------------------------


def test_the_recording_holds_the_takeover_and_the_restart_as_steps() -> None:
    cursor = Cursor.open(record(CONVERSATION, clustered_contract_net()))
    timeline = cursor.timeline
    assert timeline.clustered
    table = [(r.step, r.node, r.status, r.arrow) for r in rows(timeline)]
    assert table[9:11] == [
        (10, "n2", "takeover", "shard 23 n1 → n2"),
        (11, "n2", "started", "bidder-b"),
    ]
    assert table[0][1] == "" and table[1][1] == "n0" and table[17][1:3] == ("n2", "sent")
    assert row(10, timeline.event(10), timeline).detail == "lease expired, epoch 2"  # type: ignore[arg-type]
    assert len(timeline) == len(contract_net()) - 8 + 2  # minus the prelude, plus two steps


def test_the_replay_panes_show_the_node_and_the_takeover() -> None:
    cursor = Cursor.open(record(CONVERSATION, clustered_contract_net()))
    assert detail(cursor.seek(10)).splitlines()[:3] == [
        "takeover: shard 23  n1 → n2 (lease expired, epoch 2)",
        "",
        "agents moved    bidder-b",
    ]
    assert detail(cursor.seek(2)).startswith("handled by manager#0 on n0: 180 µs")
    diagram = dict(sequence(cursor))
    assert "⇄ n1 → n2" in diagram[10]
    assert "Note over p3: takeover: shard 23  n1 → n2 (lease expired, epoch 2)" in mermaid(cursor)
    printed = story(cursor).splitlines()
    assert (
        printed[2] == "   1  [16:00:00.000]  -   sent        request          client:cli → manager"
    )
    assert printed[11].split() == [
        "10", "[16:00:00.009]", "n2", "takeover", "shard", "23", "n1", "→", "n2",
        "(lease", "expired,", "epoch", "2)",
    ]  # fmt: skip


def test_outside_a_cluster_the_replay_is_what_it_always_was() -> None:
    alone = Cursor.open(record(CONVERSATION, without_the_cluster(clustered_contract_net())))
    assert not alone.timeline.clustered
    assert all(r.node == "" for r in rows(alone.timeline))
    printed = story(alone).splitlines()
    statuses = {"sent", "handled", "started"}
    assert all(line.split()[2] in statuses for line in printed[2 : 2 + len(alone.timeline)])
    assert "takeover" not in story(alone) and " on n" not in detail(alone.seek(2))
    before = Cursor.open(record(CONVERSATION, contract_net()))
    assert story(before).splitlines()[2] == (
        "   1  [16:00:00.000]  sent        request          client:cli → manager"
    )


# --- the rule itself --------------------------------------------------------------------

AGENTS = ("manager", "bidder-a", "bidder-b", "bidder-c")
NODES = ("n0", "n1", "n2")
moves = st.lists(
    st.tuples(
        st.sampled_from(("claim", "release", "handle")),
        st.sampled_from(AGENTS),
        st.sampled_from(NODES),
    ),
    max_size=40,
)


@given(moves)
def test_the_node_of_a_handling_is_its_shard_s_owner_in_the_membership_fold(
    steps: list[tuple[str, str, str]],
) -> None:
    """Claims and releases in any order: the node named for each handling is the owner of
    the agent's shard that the membership fold gives at that position (none: no node)."""
    log = Log()
    for node in NODES:
        log.add(NodeStarted(node=node, address=f"{node}:7946", version="0.1"))
    epochs: dict[int, int] = {}
    for move, agent, node in steps:
        shard = shard_of(agent)
        if move == "claim":
            epochs[shard] = epochs.get(shard, 0) + 1
            log.add(ShardClaimed(shard=shard, node=node, epoch=epochs[shard]))
        elif move == "release":
            log.add(ShardReleased(shard=shard, node=node, epoch=epochs.get(shard, 0)))
        else:
            log.add(MessageHandled(message_id="m", conversation_id="c", agent=agent, replica=0))
    members = membership.NO_MEMBERS
    for recorded, node in zip(log.recorded, step_nodes(NO_HOLDERS, log.recorded), strict=True):
        members = membership.evolve(members, recorded)
        if isinstance(recorded.event, MessageHandled):
            assert node == (membership.owner(members, shard_of(recorded.event.agent)) or "")


def test_a_stamp_wins_over_what_the_claims_say() -> None:
    history = clustered_contract_net()
    handled = next(r for r in history if isinstance(r.event, MessageHandled))
    holders = holders_of(history[: history.index(handled)])
    assert node_of(handled, holders) == "n0"
    assert node_of(replace(handled, node="n9"), holders) == "n9"
