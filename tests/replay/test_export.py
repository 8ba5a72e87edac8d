"""The JSON-lines export: one object per event; a cluster's events name their node."""

from __future__ import annotations

import orjson

from caxton.domain.events import AgentStopped, Recorded
from caxton.replay.export import jsonl_lines


def test_a_cluster_s_event_names_its_node_and_a_lone_server_s_has_no_node_key() -> None:
    lone = Recorded(
        position=1, stream="agent:x", version=1, at=1_000, event=AgentStopped(agent="x")
    )
    clustered = Recorded(
        position=2, stream="agent:x", version=2, at=2_000, event=AgentStopped(agent="x"), node="n2"
    )
    first, second = (orjson.loads(line) for line in jsonl_lines([lone, clustered]))
    assert "node" not in first
    assert second["node"] == "n2" and second["type"] == "AgentStopped"
