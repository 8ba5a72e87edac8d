"""The scenario interface every benchmark module follows, and the statistics they share.

A benchmark module exposes `run(quick: bool) -> list[dict]`; each dict is one scenario
in the shape of `result(...)` below (the issue's JSON shape). A scenario may also carry
`"samples": {"caxton": [...], "floor": [...], "spade": [...], ...}` (latencies in its
unit); the driver draws them in the latency plot and leaves them out of the JSON.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import os
import statistics
import sys
import tempfile
from collections.abc import Awaitable, Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol

Result = dict[str, Any]


class Module(Protocol):
    def run(self, quick: bool) -> list[Result]: ...


class Window(Protocol):
    """The measured part of a scenario, marked for a counter (bench/callgrind.py): the
    scenario calls begin() after its warm-up and end() when the measured loop is done."""

    def begin(self) -> None: ...

    def end(self) -> None: ...


class _Unmeasured:
    def begin(self) -> None:
        pass

    def end(self) -> None:
        pass


UNMEASURED: Window = _Unmeasured()
"""The window of a run that nothing counts (the wall-clock runs)."""


def pct(values: Sequence[float], q: float) -> float:
    """The q-quantile by rank (q = 0.5 is the median, 0.99 the p99)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def median(values: Iterable[float]) -> float:
    return float(statistics.median(list(values)))


def result(
    scenario: str,
    *,
    unit: str,
    median: float | None,
    target: Any,
    met: bool | None,
    p99: float | None = None,
    floor: tuple[str, float] | None = None,
    peers: dict[str, dict[str, Any]] | None = None,
    higher_is_better: bool = False,
    **extra: Any,
) -> Result:
    """One scenario's figures in the issue's JSON shape.

    `ratio_to_floor` is how many times the floor's cost ours is (ours/floor for times,
    floor/ours for rates), so above 1 means slower than the floor either way. A peer's
    `speedup` is how many times faster we are (its median / ours for times, ours / its
    for rates).
    """
    out: Result = {"scenario": scenario, "unit": unit, "median": median, "p99": p99}
    if floor is not None:
        name, value = floor
        out["floor"] = {"name": name, "median": value}
        out["ratio_to_floor"] = (
            (value / median if higher_is_better else median / value) if (value and median) else None
        )
    else:
        out["floor"] = None
        out["ratio_to_floor"] = None
    out["peers"] = {}
    for peer, figures in (peers or {}).items():
        if "error" in figures or not figures.get("median"):
            out["peers"][peer] = figures
            continue
        theirs = figures["median"]
        speedup = median / theirs if higher_is_better else theirs / median
        out["peers"][peer] = {**figures, "speedup": speedup}
    out["target"] = target
    out["met"] = met
    out["higher_is_better"] = higher_is_better
    out.update(extra)
    return out


async def repeat(runs: int, scenario: Callable[[Path], Awaitable[Any]]) -> list[Any]:
    """Runs `scenario` `runs` times, each in a fresh temporary directory."""
    values = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory(prefix="caxton-bench-") as tmp:
            values.append(await scenario(Path(tmp)))
    return values


def run_async(coroutine: Awaitable[Any]) -> Any:
    async def main() -> Any:
        return await coroutine

    return asyncio.run(main())


def cores() -> int:
    return len(os.sched_getaffinity(0))


RESULTS = Path(__file__).parent / "results"


def write_run(module: str, rows: list[Result], *, quick: bool) -> Path:
    """A module run on its own (`python -m bench.MODULE`): its rows, with the date, the
    Python and the machine's load, in `bench/results/DATE-MODULE[-quick].json`."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    document = {
        "date": datetime.date.today().isoformat(),
        "quick": quick,
        "python": sys.version.split()[0],
        "load": ", ".join(f"{x:.2f}" for x in os.getloadavg()),
        "results": rows,
    }
    suffix = "-quick" if quick else ""
    target = RESULTS / f"{document['date']}-{module}{suffix}.json"
    target.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    return target
