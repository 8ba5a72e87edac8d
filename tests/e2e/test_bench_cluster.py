"""bench/cluster.py runs, in its quick form, as `python -m bench` runs it: a 3-node cluster
of `caxton server start` processes on PostgreSQL, a node killed, and the rows written in
the driver's shape. A change that breaks the benchmark fails here, not in the next full
run. No figure is judged: the machine is shared."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.store.conftest import _require_postgres

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.cluster]

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = {
    "pg_commit_round_trip",
    "pg_eventlog_append_one_event",
    "pg_locked_commits_1_writers",
    "pg_locked_commits_2_writers",
    "pg_locked_commits_3_writers",
    "pg_eventlog_append_batched_1_writers",
    "pg_eventlog_append_batched_3_writers",
    "cluster_throughput_1_nodes",
    "cluster_throughput_2_nodes",
    "cluster_throughput_3_nodes",
    "cluster_request_reply_same_node",
    "cluster_request_reply_cross_node",
    "cluster_failover_lease_3s",
}


def test_the_quick_cluster_benchmark_measures_every_scenario_and_writes_them(
    tmp_path: Path,
) -> None:
    _require_postgres()
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--only", "cluster", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1800,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    (written,) = tmp_path.glob("*-quick-cluster.json")
    assert written.with_suffix(".md").exists()
    document = json.loads(written.read_text())
    failed = [s for s in document["skipped"] if s.startswith("bench/cluster.py")]
    assert not failed, done.stdout + done.stderr
    rows = {row["scenario"]: row for row in document["scenarios"]}
    assert set(rows) == SCENARIOS
    assert all(row["median"] > 0 for row in rows.values()), rows

    for size in (1, 2, 3):
        row = rows[f"cluster_throughput_{size}_nodes"]
        assert row["accepted_per_s"] > 0 and row["log_commits_per_s"] > 0
        assert row["events_per_message"] >= 2  # each message sent and handled
        assert len(row["agents_per_node"]) == size and all(row["agents_per_node"].values())
        assert row["floor"]["median"] > 0
    failover = rows["cluster_failover_lease_3s"]
    parts = ("kill_to_claim_ms", "claim_to_started_ms", "started_to_first_handled_ms")
    assert all(failover[part] >= 0 for part in parts), failover
    assert failover["claim_reasons"] == ["expired"]  # taken from the dead, not handed over
    cross = rows["cluster_request_reply_cross_node"]
    assert set(cross["compared"]) == {
        "same_node_3_nodes",
        "one_node_cluster",
        "single_node_sqlite",
    }
