"""`python -m bench [--quick] [--out DIR] [--only MODULE …]`: every benchmark scenario, with
its floors and peers measured in the same run, written as `<DIR>/<date>.json`, `.md` and
`.png` (`<date>-quick.*` with --quick, `<date>-<modules>.*` with --only).

A benchmark module is any `bench.<name>` in MODULES exposing `run(quick) -> list[dict]`
(bench/scenario.py); a module that is not there yet is skipped with a note.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import platform
import sqlite3
import subprocess
import sys
import tempfile
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.report import markdown, plot
from bench.scenario import Result, cores

MODULES = (
    "runtime",
    "contract_net",
    "eventlog",
    "replay",
    "memory",
    "tools",
    "tracing",
    "api",
    "cluster",
)
MODULE_TIMEOUT_S = 3600


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
    """Runs one module in a fresh interpreter: no scenario inherits another's heap, threads
    or garbage, and a module that fails or hangs costs only its own rows."""
    if importlib.util.find_spec(f"bench.{name}") is None:
        skipped.append(f"bench/{name}.py: not present yet")
        print(f"• {name}: skipped (bench/{name}.py is not present)", flush=True)
        return []
    print(f"• {name}", flush=True)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="caxton-bench-rows-") as tmp:
        rows_file = Path(tmp) / "rows.json"
        command = [sys.executable, "-m", "bench", "--child", name, "--rows", str(rows_file)]
        try:
            done = subprocess.run(
                [*command, *(["--quick"] if quick else [])], timeout=MODULE_TIMEOUT_S, check=False
            )
        except subprocess.TimeoutExpired:
            skipped.append(f"bench/{name}.py: did not finish within {MODULE_TIMEOUT_S} s")
            return []
        if done.returncode != 0 or not rows_file.exists():
            skipped.append(
                f"bench/{name}.py: failed (exit status {done.returncode}; see its output)"
            )
            return []
        rows: list[Result] = json.loads(rows_file.read_text())
    for row in rows:
        value = "not measured" if row["median"] is None else f"{row['median']:>12,.1f}"
        counted = (row.get("instructions") or {}).get("per_op")
        also = "" if counted is None else f"  ({counted:,.0f} instructions/op)"
        print(f"  {row['scenario']:<36} {value} {row['unit']}{also}", flush=True)
    print(f"  ({time.perf_counter() - started:.0f} s)", flush=True)
    return rows


def child(name: str, quick: bool, rows_file: Path) -> None:
    # os._exit: a library thread left running (a log's reader, a pool) must not keep us
    try:
        rows = importlib.import_module(f"bench.{name}").run(quick)
        rows_file.write_text(json.dumps(rows))
    except BaseException:
        traceback.print_exc()
        sys.stdout.flush()
        os._exit(1)
    sys.stdout.flush()
    os._exit(0)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="fewer and shorter runs (< 3 min)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--only", nargs="+", choices=MODULES, default=list(MODULES))
    parser.add_argument("--child", choices=MODULES, help=argparse.SUPPRESS)
    parser.add_argument("--rows", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, args.quick, args.rows)

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
    only = "" if set(args.only) == set(MODULES) else "-" + "-".join(args.only)
    stem = args.out / f"{started:%Y-%m-%d}{'-quick' if args.quick else ''}{only}"
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
