"""The README's demo: real Python agents built with componentize-py, a server subprocess."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.e2e.conftest import caxton

pytestmark = pytest.mark.slow


def test_the_demo_runs_a_contract_net_and_an_order_and_prints_their_traces(tmp_path: Path) -> None:
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
