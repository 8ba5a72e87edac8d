"""The report shows the instruction counts beside the wall clock, says why a count is
missing, and for a missed instruction target shows where the instructions go."""

from __future__ import annotations

from typing import Any

from bench.report import markdown
from bench.runtime import instructions_row
from bench.scenario import result

WHERE = {
    "instructions": 600_000_000,
    "ops": 1_000,
    "by_object": [
        {"object": "libpython3.11.so.1.0", "per_op": 540_000.0, "share": 0.9},
        {"object": "libsqlite3.so.0.8.6", "per_op": 60_000.0, "share": 0.1},
    ],
    "inclusive": [
        {
            "function": "pysqlite_cursor_execute",
            "object": "_sqlite3.so",
            "per_op": 60_000.0,
            "share": 0.1,
        }
    ],
    "self": [
        {
            "function": "_PyEval_EvalFrameDefault",
            "object": "libpython3.11.so.1.0",
            "per_op": 200_000.0,
            "share": 0.33,
        }
    ],
    "python_calls": {
        "per_op": 318.0,
        "caxton_per_op": 90.0,
        "top": [
            {
                "function": "caxton/domain/world.py:evolve",
                "calls_per_op": 2.0,
                "time_share": 0.2,
                "own_time_share": 0.01,
            }
        ],
    },
}


def document(*rows: dict[str, Any]) -> dict[str, Any]:
    machine = {
        "cpu": "cpu",
        "cores": 2,
        "memory_gib": 1,
        "os": "Linux",
        "python": "3.11",
        "wasmtime": "50",
        "sqlite": "3.40",
    }
    return {
        "date": "today",
        "machine": machine,
        "load": {"start": "0", "end": "0"},
        "quick": True,
        "skipped": [],
        "scenarios": list(rows),
    }


def test_a_missed_instruction_target_shows_where_the_instructions_go() -> None:
    counted = {"instructions": 600_000_000, "ops": 1_000, "per_op": 600_000.0, "where": WHERE}

    report = markdown(document(instructions_row(counted)))

    assert "| instructions_per_message_100_agents | 600,000 instructions/msg |" in report
    assert "**missed**" in report
    assert "## Where the instructions go: instructions_per_message_100_agents" in report
    # 200,000 less the 60,000 of native work leaves 140,000 for the interpreter: 540k/140k
    assert "must fall to 140,000 per operation, 3.9× less than now" in report
    assert "| `pysqlite_cursor_execute` | _sqlite3.so | 60,000 | 10.0% |" in report
    assert "318 Python calls per operation, 90 of them into Caxton's functions" in report
    assert "| `caxton/domain/world.py:evolve` | 2.00 | 20.0% | 1.0% |" in report


def test_a_count_that_could_not_be_made_says_why_beside_the_wall_clock() -> None:
    counted = {"error": "valgrind is not installed (apt-get install valgrind)"}
    rate = result(
        "throughput_1_agents",
        unit="msg/s",
        median=5_000.0,
        target=20_000,
        met=False,
        higher_is_better=True,
        instructions=counted,
    )

    report = markdown(document(rate, instructions_row(counted)))

    assert "| throughput_1_agents | 5,000 msg/s |  | not counted |" in report
    assert "| instructions_per_message_100_agents |  |  |  |" in report
    assert "- throughput_1_agents: valgrind is not installed (apt-get install valgrind)" in report
    assert "not measured: valgrind is not installed" in report
    assert "Where the instructions go" not in report
