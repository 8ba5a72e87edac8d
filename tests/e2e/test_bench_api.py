"""bench/api.py's scenarios run, at tiny sizes, against a real `caxton server start`: a
change that breaks the benchmark fails here, not in the next full run."""

from __future__ import annotations

import asyncio

import pytest

from bench import api

pytestmark = pytest.mark.slow


def test_every_api_scenario_runs_and_measures_its_operations() -> None:
    sizes = {"warm_up": 5, "round_trips": 20, "concurrent": 16, "streamed": 300}

    measured = asyncio.run(api.one_server(sizes))
    measured["in_process"] = asyncio.run(api.in_process(sizes["streamed"]))

    assert set(measured) == {
        "list_agents",
        "unary_sequential",
        "unary_concurrent",
        "streamed",
        "invoke",
        "in_process",
    }
    for name in ("list_agents", "unary_sequential", "invoke"):
        assert len(measured[name].samples) == 20
    assert measured["streamed"].ops == 300
    assert all(m.rate > 0 and m.server_cpu_us >= 0 for m in measured.values())
