"""bench/callgrind.py counts the instructions of a scenario's window: proportional to the
work done in it, on its own thread only, read back from callgrind's files; and says why
when it cannot count (no valgrind)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import callgrind

MODULE = "tests.bench.counted_loop"


@pytest.fixture(scope="module")
def counting() -> None:
    try:
        callgrind.shim()
    except callgrind.Unavailable as e:
        pytest.skip(f"cannot count instructions here: {e}")


@pytest.mark.usefixtures("counting")
def test_a_window_of_k_operations_counts_instructions_in_proportion_to_k() -> None:
    small = callgrind.count(MODULE, "loop", 2_000)
    large = callgrind.count(MODULE, "loop", 8_000)

    assert "error" not in small and "error" not in large, (small, large)
    assert small["ops"] == 2_000 and large["ops"] == 8_000
    # one operation is a generator over ~37 squares: hundreds of instructions, not a few
    assert small["per_op"] > 500
    assert 3.8 < large["instructions"] / small["instructions"] < 4.2
    assert large["per_op"] == pytest.approx(small["per_op"], rel=0.05)


@pytest.mark.usefixtures("counting")
def test_a_thread_busy_beside_the_window_is_not_counted() -> None:
    alone = callgrind.count(MODULE, "loop", 4_000)
    beside = callgrind.count(MODULE, "loop_beside_a_busy_thread", 4_000, detail=True)

    assert "error" not in alone and "error" not in beside, (alone, beside)
    assert beside["threads"] == 1
    assert beside["per_op"] == pytest.approx(alone["per_op"], rel=0.05)
    assert beside["where"]["by_object"][0]["object"].startswith(("libpython", "python"))


def test_without_valgrind_the_count_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")

    assert callgrind.count(MODULE, "loop", 10) == {
        "error": "valgrind is not installed (apt-get install valgrind)"
    }


SAMPLE = """\
version: 1
creator: callgrind-3.19.0
pid: 1
cmd: python
part: 1
thread: 1
desc: Trigger: Client Request: sample
positions: line
events: Ir
summary: 170
ob=(1) /usr/lib/libpython3.11.so
fl=(1) ceval.c
fn=(1) eval
10 50
cob=(2) /usr/lib/libsqlite3.so
cfi=(2) sqlite3.c
cfn=(2) sqlite3_step
calls=2 100
12 100
cfn=(1)
calls=1 10
13 30
fn=(3) eval'2
11 20
ob=(2)
fl=(2)
fn=(2)
100 70
+1 30
totals: 170
"""


def test_a_dump_is_read_with_its_compressed_names_and_calls(tmp_path: Path) -> None:
    (tmp_path / "callgrind.out.1-01").write_text(SAMPLE)

    [dump] = callgrind.dumps(tmp_path)
    seen = callgrind.profile(dump.path)

    assert (dump.thread, dump.trigger, dump.instructions) == (1, "Client Request: sample", 170)
    assert seen.total == 50 + 20 + 70 + 30
    assert dict(seen.self_cost) == {"eval": 50, "eval'2": 20, "sqlite3_step": 100}
    # eval's own 50 and its call into SQLite; its call to itself is not counted again
    assert seen.inclusive["eval"] == 150
    assert dict(seen.by_object) == {"/usr/lib/libpython3.11.so": 70, "/usr/lib/libsqlite3.so": 100}
    assert seen.objects["sqlite3_step"] == "/usr/lib/libsqlite3.so"


def test_python_calls_in_a_window_grow_exactly_with_its_operations() -> None:
    totals = []
    for ops in (700, 1_400, 2_100):  # multiples of 7: each has the same mix of operations
        calls = callgrind.python_calls(MODULE, "loop", ops)
        assert "error" not in calls, calls
        totals.append(round(calls["per_op"] * ops))

    assert totals[2] - totals[1] == totals[1] - totals[0]
    assert totals[1] - totals[0] > 700  # at least the call of each operation itself
