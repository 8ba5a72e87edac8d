"""`python -m bench [--quick] [--out DIR] [--only MODULE …]`: every benchmark scenario, with
its floors and peers measured in the same run, written as `<DIR>/<date>.json`, `.md` and
`.png` (`<date>-quick.*` with --quick).

A benchmark module is any `bench.<name>` in MODULES exposing `run(quick) -> list[dict]`
(bench/scenario.py); a module that is not there yet is skipped with a note.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import sqlite3
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.report import markdown, plot
from bench.scenario import Result, cores

MODULES = ("runtime", "contract_net", "eventlog", "replay", "tools")


def machine() -> dict[str, Any]:
    from importlib.metadata import version

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {
        "cpu": cpu,
        "cores": cores(),
        "memory_gib": round(memory, 1),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "wasmtime": version("wasmtime"),
        "sqlite": sqlite3.sqlite_version,
    }


def load() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def run_module(name: str, quick: bool, skipped: list[str]) -> list[Result]:
    try:
        module = importlib.import_module(f"bench.{name}")
    except ModuleNotFoundError as e:
        if e.name != f"bench.{name}":
            raise
        skipped.append(f"bench/{name}.py: not present yet")
        print(f"• {name}: skipped (bench/{name}.py is not present)", flush=True)
        return []
    print(f"• {name}", flush=True)
    started = time.perf_counter()
    try:
        rows: list[Result] = module.run(quick)
    except Exception as e:
        traceback.print_exc()
        skipped.append(f"bench/{name}.py: failed: {type(e).__name__}: {e}")
        return []
    for row in rows:
        print(f"  {row['scenario']:<32} {row['median']:>12,.1f} {row['unit']}", flush=True)
    print(f"  ({time.perf_counter() - started:.0f} s)", flush=True)
    return rows


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="fewer and shorter runs (< 3 min)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--only", nargs="+", choices=MODULES, default=list(MODULES))
    args = parser.parse_args(argv)

    started = datetime.now(UTC)
    load_start = load()
    skipped: list[str] = []
    rows: list[Result] = []
    for name in args.only:
        rows.extend(run_module(name, args.quick, skipped))

    series: dict[str, dict[str, list[float]]] = {}
    units: dict[str, str] = {}
    for row in rows:
        samples = row.pop("samples", None)
        if samples:
            series[row["scenario"]] = samples
            units[row["scenario"]] = row["unit"]
    document = {
        "date": started.isoformat(timespec="seconds"),
        "seconds": round((datetime.now(UTC) - started).total_seconds()),
        "machine": machine(),
        "load": {"start": load_start, "end": load(), "note": "os.getloadavg(): 1, 5, 15 min"},
        "quick": args.quick,
        "skipped": skipped,
        "scenarios": rows,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"{started:%Y-%m-%d}{'-quick' if args.quick else ''}"
    no_plot = plot(series, units, stem.with_suffix(".png"))
    if no_plot:
        skipped.append(no_plot)
    stem.with_suffix(".json").write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    report = markdown(document)
    if not no_plot:
        report += f"\n![latency distributions]({stem.with_suffix('.png').name})\n"
    stem.with_suffix(".md").write_text(report)
    print(f"\n{report}\nwrote {stem}.json, .md{'' if no_plot else ', .png'}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
