"""Guest calls through real wasmtime: replies, errors, journaled host calls."""

from __future__ import annotations

import json

from caxton.domain.errors import REASON_CHARS
from caxton.shell.wasm import AgentError, Completed, WasmHost
from tests.wasm.wasm_support import FAST, Loader, Recorder

ENVELOPE = json.dumps(
    {
        "id": "m-41",
        "performative": "request",
        "sender": "client:cli",
        "receivers": ["echo"],
        "content": '{"x": 1}',
        "protocol": "fipa-request",
        "conversation_id": "c-1",
    }
)


def test_echo_sends_back_the_envelope_it_received(host: WasmHost, load: Loader) -> None:
    instance = host.instantiate(load("echo"), FAST, name="echo")
    services = Recorder()
    assert isinstance(instance.init("{}", services), Completed)
    outcome = instance.handle(ENVELOPE, services)
    assert isinstance(outcome, Completed)
    assert services.sent == [ENVELOPE]


def test_reply_answers_the_handled_message_by_its_id(host: WasmHost, load: Loader) -> None:
    instance = host.instantiate(load("reply"), FAST)
    services = Recorder()
    outcome = instance.handle(ENVELOPE, services)
    assert isinstance(outcome, Completed)
    assert [json.loads(s) for s in services.sent] == [
        {"performative": "inform", "in_reply_to": "m-41", "content": "{}"}
    ]


def test_reply_finds_the_id_in_compact_json_too(host: WasmHost, load: Loader) -> None:
    instance = host.instantiate(load("reply"), FAST)
    services = Recorder()
    instance.handle('{"sender":"id","id":"abc"}', services)
    assert json.loads(services.sent[0])["in_reply_to"] == "abc"


def test_an_error_value_is_an_agent_error_and_the_instance_lives_on(
    host: WasmHost, load: Loader
) -> None:
    instance = host.instantiate(load("reply"), FAST)
    services = Recorder()
    outcome = instance.handle('{"sender": "x"}', services)
    assert isinstance(outcome, AgentError)
    assert outcome.text == "no id in the message"
    assert instance.alive
    assert isinstance(instance.handle(ENVELOPE, services), Completed)


def test_a_refused_send_reaches_the_guest_as_an_error(host: WasmHost, load: Loader) -> None:
    instance = host.instantiate(load("reply"), FAST)
    outcome = instance.handle(ENVELOPE, Recorder(refuse="receivers: unknown agent 'nobody'"))
    assert outcome == AgentError(
        "receivers: unknown agent 'nobody'", outcome.duration_us, outcome.cpu_us, outcome.started_us
    )


def test_a_guests_error_text_is_recorded_in_a_bounded_excerpt(host: WasmHost, load: Loader) -> None:
    instance = host.instantiate(load("reply"), FAST)
    outcome = instance.handle(ENVELOPE, Recorder(refuse="x" * 1_000_000))
    assert isinstance(outcome, AgentError)
    assert len(outcome.text) < REASON_CHARS + 40
    assert outcome.text.endswith("(1000000 characters)")


def test_init_can_refuse_its_config(host: WasmHost, load: Loader) -> None:
    instance = host.instantiate(load("initfail"), FAST)
    outcome = instance.init('{"price": -1}', Recorder())
    assert isinstance(outcome, AgentError)
    assert outcome.text == "bad config"


def test_now_random_and_log_reach_the_call_services(host: WasmHost, load: Loader) -> None:
    instance = host.instantiate(load("clock"), FAST)
    services = Recorder(clock=42)
    assert isinstance(instance.handle("hello", services), Completed)
    assert services.journal == [("now", 42), ("random", 0xDEADBEEF)]
    assert services.logs == [("info", "hello")]


def test_each_call_uses_the_services_it_was_given(host: WasmHost, load: Loader) -> None:
    instance = host.instantiate(load("echo"), FAST)
    first, second = Recorder(), Recorder()
    instance.handle("one", first)
    instance.handle("two", second)
    assert (first.sent, second.sent) == (["one"], ["two"])


def test_instances_of_one_component_are_isolated(host: WasmHost, load: Loader) -> None:
    component = load("trap")
    doomed, other = host.instantiate(component, FAST), host.instantiate(component, FAST)
    doomed.handle("x", Recorder())
    assert not doomed.alive
    assert other.alive
    assert isinstance(other.init("{}", Recorder()), Completed)
