"""The tool bridge's rules: grants, the breaker's transition table, what is recorded."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from caxton.domain.errors import InvalidAgentSpec
from caxton.domain.events import BreakerClosed, BreakerHalfOpened, BreakerOpened
from caxton.domain.tools import (
    CLOSED,
    Breaker,
    BreakerKey,
    CallPolicy,
    admit,
    bounded_result,
    call_fault,
    call_policy,
    is_granted,
    journal_value,
    parse_arguments,
    parse_grants,
    read_journal_value,
    settle,
    unknown_server,
)

KEY = BreakerKey(server="db")
POLICY = CallPolicy(timeout_ms=1_000, breaker_threshold=3, breaker_reset_ms=500)


def test_a_grant_names_one_tool_or_every_tool_of_a_server() -> None:
    grants = parse_grants("db.read_query, time.*")
    assert grants == ("db.read_query", "time.*")
    assert is_granted(grants, "db", "read_query")
    assert not is_granted(grants, "db", "write_query")
    assert is_granted(grants, "time", "get_current_time")
    assert not is_granted(grants, "timer", "x")
    assert not is_granted((), "db", "read_query")


@pytest.mark.parametrize("bad", ["db", "db.", ".x", "d b.x", "db.a b", "*.x"])
def test_a_malformed_grant_is_refused_naming_it(bad: str) -> None:
    with pytest.raises(InvalidAgentSpec, match=r"not SERVER\.TOOL"):
        parse_grants(bad)


def test_an_unknown_server_is_named_with_the_configured_ones() -> None:
    assert unknown_server("db", ["db", "time"]) == ""
    assert unknown_server("x", ["time", "db"]) == "no tool server named 'x' (configured: db, time)"
    assert "none is configured" in unknown_server("x", [])


@pytest.mark.parametrize(
    ("text", "expected"),
    [("", {}), ("null", {}), ('{"a": 1}', {"a": 1})],
)
def test_arguments_are_a_json_object(text: str, expected: object) -> None:
    assert parse_arguments(text) == expected


@pytest.mark.parametrize("text", ["[1]", "3", "{", '"x"'])
def test_other_arguments_are_refused_with_a_reason(text: str) -> None:
    assert isinstance(parse_arguments(text), str)


def test_the_agent_overrides_timeout_and_threshold_and_then_has_its_own_breaker() -> None:
    shared = call_policy(timeout_ms=5_000, breaker_threshold=5, breaker_reset_ms=100, agent="a")
    assert shared == CallPolicy(timeout_ms=5_000, breaker_threshold=5, breaker_reset_ms=100)
    own = call_policy(
        timeout_ms=5_000,
        breaker_threshold=5,
        breaker_reset_ms=100,
        agent="a",
        agent_timeout_ms=10_000,
        agent_threshold=3,
    )
    assert (own.timeout_ms, own.breaker_threshold, own.breaker_agent) == (10_000, 3, "a")


def fail(breaker: Breaker, now: int, kind: str = "timeout") -> tuple[Breaker, tuple[object, ...]]:
    return settle(breaker, key=KEY, policy=POLICY, now=now, failure_kind=kind, reason=kind)


def test_threshold_failures_open_the_breaker_then_a_trial_after_the_reset_closes_it() -> None:
    breaker, events = fail(CLOSED, 1)
    breaker, events = fail(breaker, 2)
    assert (breaker.state, events) == ("closed", ())
    breaker, events = fail(breaker, 3)
    assert breaker.state == "open"
    assert events == (BreakerOpened(server="db", failures=3, reset_ms=500, reason="timeout"),)

    refused = admit(breaker, key=KEY, policy=POLICY, now=100)
    assert not refused.allowed
    assert "circuit breaker open for db after 3 failures (last: timeout)" in refused.reason
    assert "next trial in 403 ms" in refused.reason

    trial = admit(breaker, key=KEY, policy=POLICY, now=503)
    assert trial.allowed
    assert trial.events == (BreakerHalfOpened(server="db"),)
    assert (
        "trial call is in progress" in admit(trial.breaker, key=KEY, policy=POLICY, now=504).reason
    )

    closed, events = settle(trial.breaker, key=KEY, policy=POLICY, now=600)
    assert (closed, events) == (CLOSED, (BreakerClosed(server="db"),))


def test_a_failed_trial_opens_the_breaker_again_at_once() -> None:
    opened = Breaker(state="open", failures=3, opened_at=0)
    trial = admit(opened, key=KEY, policy=POLICY, now=500).breaker
    again, events = fail(trial, 700, "server-error")
    assert (again.state, again.opened_at, again.failures) == ("open", 700, 4)
    assert isinstance(events[0], BreakerOpened)


def test_refusals_and_tool_errors_do_not_count_and_a_success_resets_the_count() -> None:
    breaker, _ = fail(CLOSED, 1)
    for kind in ("refused", "tool-error", "breaker-open"):
        assert fail(breaker, 2, kind)[0] == CLOSED  # the server answered: it is healthy
    breaker, _ = fail(CLOSED, 1)
    assert settle(breaker, key=KEY, policy=POLICY, now=2)[0] == CLOSED


outcomes = st.lists(st.tuples(st.integers(0, 50), st.sampled_from(["", "timeout", "tool-error"])))


@given(outcomes)
def test_the_breaker_opens_exactly_when_counted_failures_reach_the_threshold(
    steps: list[tuple[int, str]],
) -> None:
    breaker, now, run = CLOSED, 0, 0
    for gap, kind in steps:
        now += gap
        admission = admit(breaker, key=KEY, policy=POLICY, now=now)
        if not admission.allowed:
            assert breaker.state in ("open", "half-open")
            continue
        was = admission.breaker.state
        breaker, events = settle(
            admission.breaker, key=KEY, policy=POLICY, now=now, failure_kind=kind, reason=kind
        )
        run = run + 1 if kind == "timeout" else 0
        opened = any(isinstance(e, BreakerOpened) for e in events)
        assert opened == (
            kind == "timeout" and (was == "half-open" or run == POLICY.breaker_threshold)
        )
        if breaker.state == "closed":
            assert breaker.failures == run
        if opened:
            run = 0 if was == "half-open" else run


def test_the_journal_value_holds_exactly_one_of_ok_and_error() -> None:
    ok = journal_value("db", "read_query", '{"q": 1}', ok='{"content": []}')
    assert json.loads(ok) == {
        "server": "db",
        "tool": "read_query",
        "args": '{"q": 1}',
        "ok": '{"content": []}',
    }
    assert read_journal_value(ok).ok == '{"content": []}'
    error = read_journal_value(journal_value("db", "x", "{}", error="timed out"))
    assert (error.ok, error.error) == (None, "timed out")
    with pytest.raises(ValueError, match="exactly one"):
        journal_value("db", "x", "{}")
    with pytest.raises(ValueError, match="not a call-tool journal value"):
        read_journal_value('{"server": "db", "tool": "x", "args": "{}"}')


@given(st.text(), st.integers(1024, 4096))
def test_a_result_is_kept_whole_when_it_fits_and_cut_to_fit_otherwise(
    text: str, limit: int
) -> None:
    whole = json.dumps({"content": [{"type": "text", "text": text}], "isError": False})
    bounded = bounded_result(whole, text, limit)
    if len(whole.encode()) <= limit:
        assert bounded.text == whole and not bounded.truncated
        return
    assert len(bounded.text.encode()) <= limit
    data = json.loads(bounded.text)
    assert data["truncated"] is True and data["size"] == len(whole.encode())
    assert text.startswith(data["content"][0]["text"])


def test_a_call_naming_no_tool_is_refused_with_a_short_reason() -> None:
    assert call_fault("db", "read_query") == ""
    reason = call_fault("db", "x" * (5 << 20))
    assert "is not a tool name" in reason and len(reason) < 300
    assert "is not a tool server name" in call_fault("d" * 1000, "read_query")
