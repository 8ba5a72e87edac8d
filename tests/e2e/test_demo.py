"""The README's demo: real Python agents built with componentize-py, a server subprocess."""

from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path

import pytest

from tests.conftest import AgentBuilds
from tests.e2e.conftest import caxton

pytestmark = pytest.mark.slow

EXAMPLES = Path(__file__).parents[2] / "examples"
DEMO_AGENTS = {
    "manager": EXAMPLES / "contract-net" / "manager.py",
    "bidder": EXAMPLES / "contract-net" / "bidder.py",
    "order-processor": EXAMPLES / "order-processing" / "order_processor.py",
}


def test_the_demo_runs_a_contract_net_and_an_order_and_prints_their_traces(
    tmp_path: Path, agent_builds: AgentBuilds
) -> None:
    # The demo keeps its builds in <data dir>/../build, named by source hash; it finds
    # this session's builds of the same sources there (tests/wasm builds them too), and
    # their compiled code in its server's component cache.
    cache = tmp_path / "build"
    cache.mkdir()
    for name, source in DEMO_AGENTS.items():
        digest = hashlib.sha256(source.read_bytes()).hexdigest()[:16]
        shutil.copyfile(agent_builds.component(source), cache / f"{name}-{digest}.wasm")
    agent_builds.seed(tmp_path / "demo", *DEMO_AGENTS.values())

    result = caxton("demo", "--data-dir", str(tmp_path / "demo"))

    text = result.stdout
    assert "✓ demo finished" in text
    cnet = text[text.index("# the contract net") : text.index("== Request/reply")]
    steps = re.findall(r'agent="([\w:-]+)" message="([\w-]+)" status="sent"', cnet)
    performatives = [p for _, p in steps]
    assert performatives[0] == "cfp"
    assert sorted(performatives[1:4]) == ["propose", "propose", "propose"]
    assert sorted(performatives[4:7]) == ["accept-proposal", "reject-proposal", "reject-proposal"]
    assert performatives[7:] == ["inform"]
    assert ("manager", "accept-proposal") in steps
    assert re.search(r"-cnet\s+fipa-contract-net\s+done\s+8 messages", text)
    assert '"winner": "bidder-b", "price": 9' in text
    assert "order-processor replied inform" in text and "TRK-" in text
    assert "✓ Running (3/3 instances healthy)" in text

    # the hint it ends with works: the contract net replays from the stopped server's log
    hint = re.search(r"\$ caxton replay --log (\S+) --conversation (\S+)", text)
    assert hint is not None
    replayed = caxton("replay", "--log", hint[1], "--conversation", hint[2], "--print")
    assert "fipa-contract-net" in replayed.stdout and "accept-proposal" in replayed.stdout
    assert "Violations\n  none" in replayed.stdout
