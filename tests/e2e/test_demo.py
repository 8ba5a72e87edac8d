"""The README's demo: real Python agents built with componentize-py, a server subprocess."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from caxton.shell.agents import build_inputs_digest
from tests.conftest import AgentBuilds
from tests.e2e.conftest import caxton

# `load` too: it runs in the serial run (ADR 0009), where its CPU burners slow no other
# test. Three compiles with every core busy take minutes: 2:48 measured, at load 5.
pytestmark = [pytest.mark.slow, pytest.mark.load, pytest.mark.timeout(1200)]

EXAMPLES = Path(__file__).parents[2] / "examples"
DEMO_AGENTS = {
    "manager": EXAMPLES / "contract-net" / "manager.py",
    "bidder": EXAMPLES / "contract-net" / "bidder.py",
    "order-processor": EXAMPLES / "order-processing" / "order_processor.py",
}


@contextmanager
def every_core_busy() -> Iterator[None]:
    """One CPU-bound process per core for the duration, killed at the end."""
    burners = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"])
        for _ in range(os.cpu_count() or 1)
    ]
    try:
        yield
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()


def test_the_demo_on_a_busy_machine_shows_its_progress_and_runs_a_contract_net_and_an_order(
    tmp_path: Path, agent_builds: AgentBuilds
) -> None:
    # The demo keeps its builds in <data dir>/../build, named by what the build reads: it
    # finds this session's builds of the same sources there (tests/wasm builds them too).
    # Their compiled code is not seeded: the demo compiles three 18 MB components while
    # every core is busy, as a first run does (a minute or more each; the client once gave
    # a deploy, and so the server's first compile, 60 s).
    cache = tmp_path / "build"
    cache.mkdir()
    for source in DEMO_AGENTS.values():
        key = build_inputs_digest(source)
        shutil.copyfile(agent_builds.component(source), cache / f"{source.stem}-{key[:32]}.wasm")

    with every_core_busy():
        result = caxton("demo", "--data-dir", str(tmp_path / "demo"), timeout_s=1000)

    text = result.stdout
    assert "✓ demo finished" in text
    for name in DEMO_AGENTS:  # each long step named as it starts and as it ends
        assert f"{name}: built earlier" in text
        assert f"{name}: compiling with wasmtime (for the server) …" in text
        assert re.search(rf"{name}: compiled in \d+\.\d s", text)
    for name in ("manager", "bidder-a", "bidder-b", "bidder-c", "order-processor"):
        assert f"{name}: deploying " in text
    assert "order-processor: ✓ Running (3/3 instances healthy)" in text
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
