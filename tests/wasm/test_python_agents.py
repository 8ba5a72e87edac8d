"""Python agents built with componentize-py, run under the real host (slow: builds take seconds)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from caxton.domain.events import Limits
from caxton.shell.agents import BuildFailed, build_agent, new_agent
from caxton.shell.wasm import AgentError, AgentInstance, Completed, WasmHost
from tests.conftest import AgentBuilds
from tests.wasm.wasm_support import Recorder

pytestmark = pytest.mark.slow

ROOT = Path(__file__).parents[2]
PYTHON_LIMITS = Limits(memory_bytes=64 << 20, timeout_ms=2_000)


def envelope(performative: str, body: object, **fields: object) -> str:
    return json.dumps(
        {
            "id": "m-1",
            "performative": performative,
            "sender": "client:test",
            "receivers": ["agent"],
            "content": json.dumps(body),
            "protocol": "fipa-request",
            "conversation_id": "conv-1",
            **fields,
        }
    )


@pytest.fixture(scope="module")
def host(agent_builds: AgentBuilds) -> WasmHost:
    return WasmHost(agent_builds.compiled_cache)  # the session's compiled agents


def start(
    host: WasmHost, builds: AgentBuilds, source: Path, config: dict[str, object]
) -> AgentInstance:
    builds.compiled(source)  # built and compiled once per session
    wasm = builds.component(source).read_bytes()
    instance = host.instantiate(host.load(wasm, f"{source.stem}.wasm"), PYTHON_LIMITS)
    assert isinstance(instance.init(json.dumps(config), Recorder()), Completed)
    return instance


def test_the_request_handler_template_answers_a_request(
    host: WasmHost, agent_builds: AgentBuilds, tmp_path: Path
) -> None:
    instance = start(host, agent_builds, new_agent("desk", "request-handler", tmp_path), {})
    services = Recorder(clock=1234)
    assert isinstance(instance.handle(envelope("request", {"q": 1}), services), Completed)
    (sent,) = [json.loads(s) for s in services.sent]
    assert sent["performative"] == "inform"
    assert sent["receivers"] == ["client:test"]
    assert (sent["in_reply_to"], sent["conversation_id"]) == ("m-1", "conv-1")
    assert json.loads(sent["content"]) == {"received": {"q": 1}, "at": 1234}
    assert services.logs == [("info", "request from client:test")]


def test_an_exception_in_the_agent_is_an_agent_error(
    host: WasmHost, agent_builds: AgentBuilds, tmp_path: Path
) -> None:
    path = tmp_path / "grumpy.py"
    path.write_text(
        "from caxton_agent import Agent\n"
        "class Grumpy(Agent):\n"
        "    def handle(self, message):\n"
        "        raise ValueError('no thanks')\n"
    )
    instance = start(host, agent_builds, path, {})
    outcome = instance.handle(envelope("request", {}), Recorder())
    assert isinstance(outcome, AgentError)
    assert outcome.text == "ValueError: no thanks"
    assert instance.alive


def test_the_order_processor_books_good_orders_and_refuses_bad_ones(
    host: WasmHost, agent_builds: AgentBuilds
) -> None:
    instance = start(host, agent_builds, ROOT / "examples/order-processing/order_processor.py", {})
    services = Recorder(clock=99)
    instance.handle(envelope("request", {"order": {"items": ["book", "pen"]}}), services)
    instance.handle(envelope("request", {"order": {}}), services)
    booked, refused = [json.loads(s) for s in services.sent]
    assert booked["performative"] == "inform"
    assert json.loads(booked["content"]) == {
        "tracking_number": "TRK-00000000DE",
        "items": 2,
        "at": 99,
    }
    assert refused["performative"] == "refuse"


def test_a_contract_net_round_between_the_examples(
    host: WasmHost, agent_builds: AgentBuilds
) -> None:
    examples = ROOT / "examples/contract-net"
    manager = start(host, agent_builds, examples / "manager.py", {"bidders": 2})
    cheap = start(host, agent_builds, examples / "bidder.py", {"price": 7})
    dear = start(host, agent_builds, examples / "bidder.py", {"price": 12})

    out = Recorder(clock=1000)
    manager.handle(envelope("request", {"task": "paint", "bidders": "capability:bidding"}), out)
    (cfp,) = [json.loads(s) for s in out.sent]
    assert cfp["performative"] == "cfp"
    assert cfp["receivers"] == ["capability:bidding"]
    assert (cfp["conversation_id"], cfp["protocol"]) == ("m-1-cnet", "fipa-contract-net")
    assert cfp["reply_by"] == 3000

    def delivered(sent: str, sender: str, message_id: str) -> str:
        message = json.loads(sent)
        return json.dumps({**message, "id": message_id, "sender": sender})

    proposals = []
    for name, bidder in (("cheap", cheap), ("dear", dear)):
        answers = Recorder()
        bidder.handle(delivered(out.sent[0], "manager", "cfp-1"), answers)
        proposals.append(delivered(answers.sent[0], name, f"p-{name}"))
    awards = Recorder()
    for proposal in proposals:
        manager.handle(proposal, awards)
    verdicts = {json.loads(s)["receivers"][0]: json.loads(s)["performative"] for s in awards.sent}
    assert verdicts == {"cheap": "accept-proposal", "dear": "reject-proposal"}

    done = Recorder()
    accept = next(s for s in awards.sent if "accept-proposal" in s)
    cheap.handle(delivered(accept, "manager", "acc-1"), done)
    result = Recorder()
    manager.handle(delivered(done.sent[0], "cheap", "done-1"), result)
    (answer,) = [json.loads(s) for s in result.sent]
    assert (answer["performative"], answer["receivers"]) == ("inform", ["client:test"])
    assert (answer["conversation_id"], answer["protocol"]) == ("conv-1", "fipa-request")
    assert json.loads(answer["content"])["winner"] == "cheap"


def test_a_componentize_failure_shows_its_output(tmp_path: Path) -> None:
    path = tmp_path / "broken.py"
    path.write_text(
        "import no_such_module_anywhere\n"
        "from caxton_agent import Agent\n"
        "class Broken(Agent):\n"
        "    pass\n"
    )
    with pytest.raises(BuildFailed) as caught:
        build_agent(path, tmp_path / "broken.wasm")
    assert "no_such_module_anywhere" in caught.value.output
