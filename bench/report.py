"""The Markdown report and the latency-distribution plot of one `python -m bench` run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.scenario import Result


def figure(value: float | None, unit: str) -> str:
    if value is None:
        return ""
    if unit == "µs" and value >= 1_000:
        return f"{value / 1_000:,.2f} ms"
    if unit.startswith("bytes"):
        return f"{value / 1024:,.1f} KiB"
    if value >= 100:
        return f"{value:,.0f} {unit}"
    return f"{value:,.1f} {unit}"


def _ratio(value: float | None) -> str:
    return "" if value is None else f"×{value:,.1f}"


def _target(target: Any, unit: str) -> str:
    if target is None:
        return "—"
    if isinstance(target, str):  # said in words (bench/tracing.py: "cost <= 15% of off")
        return target
    if not isinstance(target, dict):
        return f"≥ {figure(target, unit)}" if unit.endswith("/s") else f"≤ {figure(target, unit)}"
    parts = []
    for key, value in target.items():
        if key == "share_of_floor":
            parts.append(f"≥ {value:.0%} of the floor")
        elif key.endswith("_speedup"):
            peer = key.removesuffix("_speedup")
            parts.append(
                f"≥ {value:g}× {peer}" if value >= 1 else f"within {1 / value:g}× of {peer}"
            )
        elif key.endswith("ratio_to_floor"):
            parts.append(
                f"{key.removesuffix('_ratio_to_floor') or 'median'} ≤ {value:g}× the floor"
            )
        elif isinstance(value, bool):
            parts.append(key.replace("_", " "))
        elif key in ("p50", "p99") or key.startswith("median"):
            parts.append(f"{key.split('_')[0]} ≤ {figure(value, unit)}")
        else:
            parts.append(f"{key} ≤ {value:g}")
    return ", ".join(parts)


def _peer(figures: dict[str, Any] | None, unit: str) -> str:
    if not figures:
        return ""
    if "error" in figures:
        return f"not run: {figures['error']}"
    text = figure(figures["median"], unit)
    speedup = figures.get("speedup")
    if speedup is not None:
        text += (
            f" (Caxton {speedup:,.1f}× faster)"
            if speedup >= 1
            else f" (Caxton {1 / speedup:,.1f}× slower)"
        )
    return text


def missed_by(row: Result) -> str:
    """How far a missed target is: the factor by which ours must improve."""
    target, better_high = row["target"], row.get("higher_is_better")
    if isinstance(target, (int, float)):
        factor = target / row["median"] if better_high else row["median"] / target
        return f"{factor:,.1f}× short"
    if isinstance(target, str):
        return "see the module's note"
    parts = []
    for key, value in (target or {}).items():
        if key == "share_of_floor" and row.get("ratio_to_floor"):
            share = 1 / row["ratio_to_floor"]
            if share < value:
                parts.append(f"{share:.0%} of the floor, {value / share:,.1f}× short")
        elif key in ("p50", "p99") or key.startswith("median"):
            ours = row["p99"] if key == "p99" else row["median"]
            if ours is not None and not isinstance(value, bool) and ours > value:
                parts.append(f"{key.split('_')[0]} {ours / value:,.1f}× over")
        elif key.endswith("_speedup"):
            peer = row["peers"].get(key.removesuffix("_speedup"), {})
            if "speedup" in peer and peer["speedup"] < value:
                parts.append(f"{value / peer['speedup']:,.1f}× short against {key[:-8]}")
    return ", ".join(parts) or "see the module's note"


def _instructions(counted: dict[str, Any] | None) -> str:
    if not counted:
        return ""
    if "error" in counted:
        return "not counted"
    return f"{counted['per_op']:,.0f}"


def where_the_instructions_go(row: Result) -> list[str]:
    """A row's callgrind profile: by library, the top functions outside the interpreter's
    call machinery by inclusive cost, and by self cost; then what the target leaves for
    the interpreted part, since the native work is what must happen anyway."""
    where = row["where"]
    objects = where["by_object"]
    interpreted = sum(o["per_op"] for o in objects if _interpreter(o["object"]))
    native = where["instructions"] / where["ops"] - interpreted
    lines = [
        f"## Where the instructions go: {row['scenario']}",
        "",
        f"{where['instructions']:,} instructions on the loop thread for {where['ops']:,} "
        f"operations (callgrind). Python interpretation (the interpreter's own code): "
        f"{interpreted:,.0f} per operation; everything else (SQLite, libc, codecs, "
        f"asyncio's C parts, wasmtime): {native:,.0f}.",
    ]
    target = row.get("target")
    if isinstance(target, (int, float)) and row.get("met") is False:
        room = target - native
        lines.append("")
        lines.append(
            f"To reach {target:,.0f} the interpreted part must fall to {room:,.0f} per "
            f"operation, {interpreted / room:,.1f}× less than now, with the native work as it is."
            if room > 0
            else f"The native work alone exceeds {target:,.0f}: it must shrink too."
        )
    lines += ["", "| library | instructions/op | share |", "|---|---|---|"]
    lines += [f"| {o['object']} | {o['per_op']:,.0f} | {o['share']:.1%} |" for o in objects]
    for key, title in (
        (
            "inclusive",
            "Top functions by inclusive instructions (outside the interpreter's "
            "call machinery, whose inclusive cost is everything)",
        ),
        ("self", "Top functions by their own instructions"),
    ):
        lines += ["", f"{title}:", "", "| function | library | instructions/op | share |"]
        lines.append("|---|---|---|---|")
        lines += [
            f"| `{f['function']}` | {f['object']} | {f['per_op']:,.0f} | {f['share']:.1%} |"
            for f in where[key]
        ]
    return lines + python_calls(where.get("python_calls"))


def python_calls(calls: dict[str, Any] | None) -> list[str]:
    """The Python-level view of the same window: cProfile in a native run."""
    if not calls:
        return []
    if "error" in calls:
        return ["", f"Python calls not counted: {calls['error']}"]
    lines = [
        "",
        f"Python-level view (cProfile, the same window run natively): {calls['per_op']:,.0f} "
        f"Python calls per operation, {calls['caxton_per_op']:,.0f} of them into Caxton's "
        "functions. Calls are exact (a coroutine's count its resumptions); time shares are "
        "indicative only (the profiler inflates call-heavy code). Caxton's functions by "
        "share of the window's time, inclusive:",
        "",
        "| function | calls/op | time, inclusive | time, own |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| `{f['function']}` | {f['calls_per_op']:,.2f} | {f['time_share']:.1%} "
        f"| {f['own_time_share']:.1%} |"
        for f in calls["top"]
    ]
    return lines


def _interpreter(library: str) -> bool:
    return library.startswith(("libpython", "python"))


def markdown(document: dict[str, Any]) -> str:
    rows: list[Result] = document["scenarios"]
    peer_names = sorted({p for r in rows for p in r.get("peers", {})})
    machine = document["machine"]
    lines = [
        f"# Caxton benchmarks, {document['date']}",
        "",
        f"Machine: {machine['cpu']}, {machine['cores']} cores, {machine['memory_gib']} GiB, "
        f"{machine['os']}, CPython {machine['python']}, wasmtime {machine['wasmtime']}, "
        f"SQLite {machine['sqlite']}. Load average at start / end: "
        f"{document['load']['start']} / {document['load']['end']} "
        f"({'quick run' if document['quick'] else 'full run'}, medians over repeated runs; "
        "floors and peers measured in the same run).",
        "",
        "| scenario | median | p99 | instructions/op (callgrind) | floor (same run) | "
        + " | ".join(peer_names)
        + (" | " if peer_names else "")
        + "target | |",
        "|---" * (7 + len(peer_names)) + "|",
    ]
    for row in rows:
        unit = row["unit"]
        floor = row.get("floor")
        floor_text = (
            f"{floor['name']}: {figure(floor['median'], unit)} {_ratio(row['ratio_to_floor'])}"
            if floor
            else ""
        )
        cells = [
            row["scenario"],
            figure(row["median"], unit),
            figure(row.get("p99"), unit),
            _instructions(row.get("instructions")),
            floor_text,
            *(_peer(row.get("peers", {}).get(p), unit) for p in peer_names),
            _target(row["target"], unit),
            ("not measured" if row["median"] is None else "no target")
            if row["met"] is None
            else "met"
            if row["met"]
            else f"**missed** ({missed_by(row)})",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    notes = [f"- {r['scenario']}: {r['note']}" for r in rows if r.get("note")]
    if notes:
        lines += ["", "What each scenario measures:", "", *notes]
    if any(r.get("instructions") for r in rows):
        lines += [
            "",
            "instructions/op: instructions on the event loop's thread per operation "
            "(valgrind --tool=callgrind, collected for the measured loop only, after a "
            "warm-up; one run under valgrind with fewer operations than the wall-clock "
            "runs). The load of the machine does not change them.",
        ]
    uncounted = [
        f"- {r['scenario']}: {r['instructions']['error']}"
        for r in rows
        if "error" in (r.get("instructions") or {})
    ]
    if uncounted:
        lines += ["", "Instructions not counted:", "", *uncounted]
    for row in rows:
        if row.get("where"):
            lines += ["", *where_the_instructions_go(row)]
    if document.get("skipped"):
        lines += ["", "Not run:", "", *(f"- {s}" for s in document["skipped"])]
    return "\n".join(lines) + "\n"


def plot(series: dict[str, dict[str, list[float]]], units: dict[str, str], path: Path) -> str:
    """One panel per scenario: the cumulative distribution of each series' latencies."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "no plot: matplotlib is not installed (pip install -e '.[bench]')"
    if not series:
        return "no plot: no scenario recorded latency samples"
    figure_, axes = plt.subplots(len(series), 1, figsize=(9, 3.6 * len(series)), squeeze=False)
    for axis, (scenario, by_name) in zip(axes[:, 0], series.items(), strict=True):
        for name, samples in by_name.items():
            ordered = sorted(samples)
            n = len(ordered)
            axis.plot(ordered, [(i + 1) / n for i in range(n)], label=f"{name} ({n})")
        axis.set_xscale("log")
        axis.set_xlabel(f"latency ({units[scenario]}, log scale)")
        axis.set_ylabel("fraction ≤ x")
        axis.set_title(scenario)
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(fontsize="small", loc="lower right")
    figure_.tight_layout()
    figure_.savefig(path, dpi=110)
    plt.close(figure_)
    return ""
