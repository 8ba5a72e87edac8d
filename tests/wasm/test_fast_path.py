"""Every caxton:agent signature through both call paths: the C-API fast path and the public API.

The fast path (`caxton.shell.wasm.capi`) writes wasmtime's C values itself; these
tests are what tells a wasmtime-py upgrade that changed them (then set
`capi.ENABLED = False`, or fix the layout).
"""

from __future__ import annotations

import resource
from collections.abc import Iterator
from pathlib import Path

import pytest

from caxton.domain.events import Limits
from caxton.shell.wasm import (
    AgentError,
    Completed,
    HostServices,
    SendRefused,
    ToolFailed,
    Trapped,
    WasmHost,
    capi,
)
from tests.support import wat
from tests.wasm.wasm_support import FAST, Loader, Recorder

LEVELS = ["trace", "debug", "info", "warn", "error"]
ROOMY = Limits(memory_bytes=16 << 20, timeout_ms=2_000)


class Tools(Recorder):
    """Recorder whose `call_tool` echoes its arguments (or refuses with `tool_refusal`)."""

    def __init__(self, *, tool_refusal: str | None = None, refuse: str = "") -> None:
        super().__init__(refuse=refuse)
        self.tool_calls: list[tuple[str, str, str]] = []
        self.tool_refusal = tool_refusal

    def call_tool(self, server: str, tool: str, args_json: str) -> str:
        self.tool_calls.append((server, tool, args_json))
        if self.tool_refusal is not None:
            raise ToolFailed(self.tool_refusal)
        return args_json


def relayed(services: Tools, text: str) -> list[tuple[str, str]]:
    """The log lines relay.wat writes for `text` when the tool and send succeed."""
    return [(level, text) for level in LEVELS] + [("debug", f"m{len(services.sent)}")]


def test_the_fast_path_is_available_with_this_wasmtime() -> None:
    assert capi.AVAILABLE, "wasmtime's C value layout changed: review caxton/shell/wasm/capi.py"


def test_the_host_uses_the_path_the_switch_selects(host: WasmHost, load: Loader) -> None:
    instance = host.instantiate(load("silent"), FAST)
    assert instance.fast_path is capi.ENABLED


def test_init_and_handle_return_ok(host: WasmHost, load: Loader) -> None:
    instance = host.instantiate(load("silent"), FAST)
    assert isinstance(instance.init("{}", Recorder()), Completed)
    assert isinstance(instance.handle("{}", Recorder()), Completed)


def test_init_returns_its_error_text(host: WasmHost, load: Loader) -> None:
    outcome = host.instantiate(load("initfail"), FAST).init("{}", Recorder())
    assert isinstance(outcome, AgentError)
    assert outcome.text == "bad config"


@pytest.mark.parametrize(
    "text", ["plain", "", "héllo wörld ✓ 日本語 𝄞 🚀", '{"nested": "\\"quotes\\"\\n"}']
)
def test_text_crosses_every_string_position_unchanged(
    host: WasmHost, load: Loader, text: str
) -> None:
    instance = host.instantiate(load("relay"), FAST)
    services = Tools()
    assert isinstance(instance.handle(text, services), Completed)
    assert services.tool_calls == [("mcp", "echo", text)]
    assert services.sent == [text]
    assert services.logs == relayed(services, text)


def test_a_mebibyte_crosses_both_ways(host: WasmHost, load: Loader) -> None:
    text = "ü" * (1 << 19)  # 1 MiB of UTF-8
    instance = host.instantiate(load("relay"), ROOMY)
    services = Tools()
    assert isinstance(instance.handle(text, services), Completed)
    assert services.tool_calls == [("mcp", "echo", text)]
    assert services.sent == [text]
    assert services.logs == relayed(services, text)


def test_a_refused_tool_call_reaches_the_guest_as_its_error(host: WasmHost, load: Loader) -> None:
    instance = host.instantiate(load("relay"), FAST)
    outcome = instance.handle("{}", Tools(tool_refusal="no tool «echo» on mcp"))
    assert isinstance(outcome, AgentError)
    assert outcome.text == "no tool «echo» on mcp"
    assert instance.alive


def test_a_refused_send_reaches_the_guest_as_its_error(host: WasmHost, load: Loader) -> None:
    instance = host.instantiate(load("relay"), FAST)
    outcome = instance.handle("{}", Tools(refuse="receivers: unknown agent 'ñobody'"))
    assert isinstance(outcome, AgentError)
    assert outcome.text == "receivers: unknown agent 'ñobody'"


def test_an_empty_refusal_is_an_empty_error(host: WasmHost, load: Loader) -> None:
    outcome = host.instantiate(load("relay"), FAST).handle("{}", Tools(tool_refusal=""))
    assert outcome == AgentError("", outcome.duration_us, outcome.cpu_us, outcome.started_us)


def test_now_and_random_return_u64s_up_to_the_top(host: WasmHost, load: Loader) -> None:
    services = Recorder(clock=(1 << 64) - 1)
    outcome = host.instantiate(load("clock"), FAST).handle("tick", services)
    assert isinstance(outcome, Completed)
    assert services.journal == [("now", (1 << 64) - 1), ("random", 0xDEADBEEF)]
    assert services.logs == [("info", "tick")]


class Failing(Tools):
    """Tools whose host function `broken` raises a plain exception."""

    def __init__(self, broken: str) -> None:
        super().__init__()
        self.broken = broken

    def _maybe_fail(self, name: str) -> None:
        if name == self.broken:
            raise RuntimeError(f"{name} is on fire")

    def send(self, envelope_json: str) -> str:
        self._maybe_fail("send")
        return super().send(envelope_json)

    def log(self, level: str, text: str) -> None:
        self._maybe_fail("log")
        super().log(level, text)

    def call_tool(self, server: str, tool: str, args_json: str) -> str:
        self._maybe_fail("call_tool")
        return super().call_tool(server, tool, args_json)

    def now(self) -> int:
        self._maybe_fail("now")
        return super().now()

    def random(self) -> int:
        self._maybe_fail("random")
        return super().random()


@pytest.mark.parametrize(
    ("component", "broken"),
    [("relay", "send"), ("relay", "log"), ("relay", "call_tool"), ("clock", "now"),
     ("clock", "random")],
)  # fmt: skip
def test_an_exception_in_any_host_function_kills_the_instance_as_a_host_error(
    host: WasmHost, load: Loader, component: str, broken: str
) -> None:
    instance = host.instantiate(load(component), FAST)
    outcome = instance.handle("{}", Failing(broken))
    assert outcome == Trapped(
        "host-error",
        f"RuntimeError: {broken} is on fire",
        outcome.duration_us,
        outcome.cpu_us,
        outcome.started_us,
    )
    assert not instance.alive


class NotText(Tools):
    def send(self, envelope_json: str) -> str:
        return 42  # type: ignore[return-value]


def test_a_host_service_answering_a_non_string_is_a_host_error(
    host: WasmHost, load: Loader
) -> None:
    outcome = host.instantiate(load("relay"), FAST).handle("{}", NotText())
    assert outcome == Trapped(
        "host-error",
        "TypeError: host service returned int, not str",
        outcome.duration_us,
        outcome.cpu_us,
        outcome.started_us,
    )


class Unencodable(Tools):
    def call_tool(self, server: str, tool: str, args_json: str) -> str:
        return "\ud800"  # a lone surrogate: a str, but not UTF-8


def test_a_host_answer_that_is_not_utf8_is_a_host_error(host: WasmHost, load: Loader) -> None:
    instance = host.instantiate(load("relay"), FAST)
    outcome = instance.handle("{}", Unencodable())
    assert isinstance(outcome, Trapped)
    assert outcome.kind == "host-error"
    assert outcome.reason.startswith("UnicodeEncodeError:")
    assert not instance.alive


def test_a_guest_text_that_is_not_utf8_is_a_host_error(host: WasmHost, load: Loader) -> None:
    outcome = host.instantiate(load("silent"), FAST).handle("\udfff", Recorder())
    assert isinstance(outcome, Trapped)
    assert outcome.kind == "host-error"
    assert outcome.reason.startswith("UnicodeEncodeError:")


def test_an_import_with_the_wrong_signature_traps_the_guest(
    host: WasmHost, load: Loader, monkeypatch: pytest.MonkeyPatch
) -> None:
    # uploads with mistyped imports are refused (test_uploads.py); one that got past the
    # check, as a component stored before it existed, must still not misread the value
    monkeypatch.setattr("caxton.shell.wasm.cache.check_world", lambda *args: False)
    instance = host.instantiate(load("mistyped"), FAST)
    outcome = instance.handle("{}", Recorder())
    assert isinstance(outcome, Trapped)
    assert outcome.kind in ("trap", "host-error")
    assert not instance.alive


def test_a_trap_after_host_calls_is_reported_and_the_next_instance_works(
    host: WasmHost, load: Loader
) -> None:
    dead = host.instantiate(load("trap"), FAST)
    outcome = dead.handle("{}", Recorder())
    assert isinstance(outcome, Trapped)
    assert (outcome.kind, outcome.reason) == ("trap", "unreachable")
    fresh = host.instantiate(load("relay"), FAST)
    assert isinstance(fresh.handle("again", Tools()), Completed)


def test_many_calls_on_one_instance_keep_the_result_slots_clean(
    host: WasmHost, load: Loader
) -> None:
    instance = host.instantiate(load("reply"), FAST)
    for i in range(200):
        if i % 2:
            assert isinstance(instance.handle(f'{{"id": "m{i}"}}', Recorder()), Completed)
        else:
            outcome = instance.handle("{}", Recorder())
            assert outcome == AgentError(
                "no id in the message", outcome.duration_us, outcome.cpu_us, outcome.started_us
            )


# --- memory ---------------------------------------------------------------


class Quiet:
    """HostServices that keep nothing, so only a leak can grow the process."""

    def __init__(self) -> None:
        self.calls = 0

    def send(self, envelope_json: str) -> str:
        self.calls += 1
        if self.calls % 3 == 0:
            raise SendRefused("refused, every third time")
        return "m-1"

    def log(self, level: str, text: str) -> None:
        pass

    def now(self) -> int:
        return 1

    def random(self) -> int:
        return 2

    def call_tool(self, server: str, tool: str, args_json: str) -> str:
        if self.calls % 5 == 4:
            raise ToolFailed("tool refused")
        return args_json


def _rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize()


@pytest.fixture
def fast_host(tmp_path: Path) -> Iterator[WasmHost]:
    assert capi.enabled()
    with WasmHost(tmp_path / "cache") as wasm_host:
        yield wasm_host


def _calls(host: WasmHost, text: str, n: int) -> None:
    relay = host.instantiate(host.load(wat("relay"), "relay.wasm"), ROOMY)
    reply = host.instantiate(host.load(wat("reply"), "reply.wasm"), ROOMY)
    assert relay.fast_path and reply.fast_path
    services: HostServices = Quiet()
    for i in range(n):
        relay.handle(text, services)
        reply.handle(text if i % 2 else '{"id": "x"}', services)
        assert relay.alive and reply.alive


@pytest.mark.slow
def test_two_hundred_thousand_calls_do_not_grow_the_process(fast_host: WasmHost) -> None:
    text = '{"id": "m-1", "content": "héllo"}'
    _calls(fast_host, text, 20_000)  # warm up: allocator pools, caches
    before = _rss()
    _calls(fast_host, text, 100_000)  # 200k guest calls, ~850k host callbacks
    grown = _rss() - before
    assert grown < 4 << 20, f"RSS grew by {grown >> 10} KiB"


@pytest.mark.slow
def test_mebibyte_calls_do_not_grow_the_process(fast_host: WasmHost) -> None:
    text = "x" * (1 << 20)
    _calls(fast_host, text, 20)
    before = _rss()
    _calls(fast_host, text, 200)  # 400 calls: a leaked copy per call would be ≥ 400 MiB
    grown = _rss() - before
    assert grown < 32 << 20, f"RSS grew by {grown >> 10} KiB"
