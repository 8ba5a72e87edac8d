"""Instructions per operation: a scenario's measured loop counted by callgrind on its own thread.

`count(module, scenario, ops)` runs `python -m bench.callgrind --child …` under
`valgrind --tool=callgrind` with instrumentation and collection off at start. The child calls
`<module>.counted(scenario, ops, window)`; the scenario warms up, then opens the window
(bench/cgshim.c through ctypes) around exactly its measured loop, on the thread that runs
it. The window's dump, divided by the operations done, is the figure: the machine's load
does not change it. Outside valgrind the window costs a ctypes call and counts nothing.
"""

from __future__ import annotations

import argparse
import cProfile
import ctypes
import hashlib
import importlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from types import CodeType
from typing import Any, Protocol

from bench.scenario import Window

SOURCE = Path(__file__).with_name("cgshim.c")
VALGRIND = (
    "valgrind",
    "--tool=callgrind",
    "--instr-atstart=no",
    "--collect-atstart=no",
    "--separate-threads=yes",
)
TIMEOUT_S = 3600
TOP = 15


class Unavailable(Exception):
    """Why instructions cannot be counted on this machine (said in the report, not raised)."""


class Counted(Protocol):
    """A benchmark module whose scenarios can be counted: it runs `scenario` for `ops`
    operations after its own warm-up, with `window` around the measured part only, and
    returns how many operations that part did."""

    def counted(self, scenario: str, ops: int, window: Window) -> int: ...


# --- the shim --------------------------------------------------------------


def shim() -> Path:
    """libcg.so built from cgshim.c, kept in the temp directory under its source's digest."""
    if shutil.which("valgrind") is None:
        raise Unavailable("valgrind is not installed (apt-get install valgrind)")
    if shutil.which("gcc") is None:
        raise Unavailable("gcc is not installed: the callgrind shim is built at bench time")
    digest = hashlib.sha256(SOURCE.read_bytes()).hexdigest()[:16]
    library = Path(tempfile.gettempdir()) / "caxton-bench" / f"libcg-{digest}.so"
    if library.exists():
        return library
    library.parent.mkdir(parents=True, exist_ok=True)
    partial = library.with_name(f"{library.name}.{os.getpid()}.partial")
    built = subprocess.run(
        ["gcc", "-O2", "-shared", "-fPIC", "-o", str(partial), str(SOURCE)],
        capture_output=True,
        text=True,
        check=False,
    )
    if built.returncode != 0:
        first = (built.stderr.strip().splitlines() or ["(no output)"])[0]
        raise Unavailable(f"gcc could not build {SOURCE.name}: {first}")
    partial.replace(library)  # atomic: a concurrent build never loads half a file
    return library


class Collector:
    """The window of a counted run: collection on for the calling thread between begin()
    and end(), and one dump named after the scenario at each end()."""

    def __init__(self, library: Path, name: str) -> None:
        self._cg = ctypes.CDLL(str(library))
        self._cg.cg_end.argtypes = [ctypes.c_char_p]
        self._cg.cg_end.restype = None
        self._cg.cg_begin.restype = None
        self._name = name.encode()
        self.running = bool(self._cg.cg_running())

    def begin(self) -> None:
        self._cg.cg_begin()

    def end(self) -> None:
        self._cg.cg_end(self._name)


class CallCounter:
    """The window of a native run that profiles Python calls. cProfile's call counts are
    exact (the load does not change them); its times are indicative only (the profiler
    inflates call-heavy code, and the load moves them)."""

    def __init__(self) -> None:
        self._profiler = cProfile.Profile()

    def begin(self) -> None:
        self._profiler.enable()

    def end(self) -> None:
        self._profiler.disable()

    def calls(self, ops: int, top: int = TOP) -> dict[str, Any]:
        """Calls per operation, in all and of Caxton's own functions; and Caxton's functions
        with the largest share of the window's time, inclusive, with their calls."""
        calls: dict[str, int] = defaultdict(int)
        inclusive: dict[str, float] = defaultdict(float)
        own: dict[str, float] = defaultdict(float)
        whole = 0.0
        for entry in self._profiler.getstats():
            name = _function(entry.code)
            calls[name] += entry.callcount
            inclusive[name] += entry.totaltime
            own[name] += entry.inlinetime
            whole += entry.inlinetime
        ours = [name for name in calls if name.startswith(PROJECT)]
        ours.sort(key=lambda name: -inclusive[name])
        whole = whole or 1.0
        return {
            "per_op": sum(calls.values()) / ops,
            "caxton_per_op": sum(calls[name] for name in ours) / ops,
            "top": [
                {
                    "function": name,
                    "calls_per_op": calls[name] / ops,
                    "time_share": inclusive[name] / whole,
                    "own_time_share": own[name] / whole,
                }
                for name in ours[:top]
            ],
        }


ROOT = Path(__file__).parents[1]
PROJECT = "caxton/"


def _function(code: CodeType | str) -> str:
    if isinstance(code, str):  # a builtin: "<method 'append' of 'list' objects>"
        return code
    where = Path(code.co_filename)
    shown = where.relative_to(ROOT) if where.is_relative_to(ROOT) else Path(where.name)
    return f"{shown}:{code.co_qualname}"


# --- reading callgrind's output ----------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Dump:
    """One thread's part of one dump: its file, and its instruction total (Ir)."""

    path: Path
    thread: int
    trigger: str
    instructions: int


def dumps(directory: Path) -> list[Dump]:
    """Every dump file callgrind wrote in `directory`, read from its header."""
    out = []
    for path in sorted(directory.glob("callgrind.out*")):
        thread, trigger, instructions = 0, "", None
        with path.open(encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("thread:"):
                    thread = int(line.split(":", 1)[1])
                elif line.startswith("desc: Trigger:"):
                    trigger = line.split(":", 2)[2].strip()
                elif line.startswith(("summary:", "totals:")):
                    instructions = int(line.split()[1])
                    break
        if instructions is not None:
            out.append(Dump(path=path, thread=thread, trigger=trigger, instructions=instructions))
    return out


_COST = re.compile(r"^[0-9+\-*]")
_NAMED = re.compile(r"^(c?ob|c?fn|c?fi|c?fl|fe)=(?:\((\d+)\))?\s*(.*)$")


@dataclass(slots=True)
class Profile:
    """Where a dump's instructions went: per function (self and inclusive) and per object."""

    total: int = 0
    self_cost: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    inclusive: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    by_object: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    objects: dict[str, str] = field(default_factory=dict)
    """The object file each function is in (for its name in the report)."""


def profile(path: Path) -> Profile:
    """Parses one callgrind output file (its name compression and `calls=` lines).

    A function's inclusive cost is its own plus that of the calls it makes to other
    functions (calls to itself are left out, so direct recursion is not counted twice)."""
    names: dict[tuple[str, str], str] = {}
    seen = Profile()
    obj = fn = callee = ""
    in_call = False
    with path.open(encoding="utf-8", errors="replace") as f:
        for line in f:
            if in_call:  # the line after calls=: the call's inclusive cost
                in_call = False
                if callee != fn:
                    seen.inclusive[fn] += _ir(line)
                continue
            if _COST.match(line):
                cost = _ir(line)
                seen.total += cost
                seen.self_cost[fn] += cost
                seen.inclusive[fn] += cost
                seen.by_object[obj] += cost
                continue
            if line.startswith("calls="):
                in_call = True
                continue
            named = _NAMED.match(line)
            if named is None:
                continue
            kind, number, text = named.groups()
            space = kind.removeprefix("c")
            key = (space if space in ("ob", "fn") else "fl", number or "")
            if number and text:
                names[key] = text
            value = names.get(key, text) if number else text
            if kind == "ob":
                obj = value
            elif kind == "fn":
                fn = value
                seen.objects.setdefault(fn, obj)
            elif kind == "cfn":
                callee = value
            # cob, fi, fe, fl, cfi: they do not change whose cost a line is
    return seen


def _ir(line: str) -> int:
    parts = line.split()
    return int(parts[1]) if len(parts) > 1 else 0


# The interpreter's call machinery: every Python call runs through these, so their
# inclusive cost is nearly everything and says nothing about where it goes.
_MACHINERY = re.compile(
    r"^(0x[0-9a-f]+|_start|main|Py_RunMain|Py_BytesMain|pymain_.*|run_.*|_?PyEval_.*"
    r"|_?PyObject_(Vectorcall|Call).*|PyObject_Call.*|_?PyFunction_Vectorcall|method_vectorcall.*"
    r"|cfunction_.*|vectorcall_.*|slot_tp_call|context_run|PyIter_Send|PyGen_am_send"
    r"|gen_send_ex2?|task_step.*|task_wakeup|_PyVectorcall_Call|builtin_exec.*|exec_code_.*"
    r"|_PyObject_MakeTpCall|_PyObject_FastCallDictTstate|wrapperdescr_call"
    r"|_Py_call_.*|PyContext_Run|.*_vectorcall)$"
)
_RECURSION = re.compile(r"'\d+$")


def where(dump: Dump, ops: int, top: int = TOP) -> dict[str, Any]:
    """Where one dump's instructions went, per operation: by object file (self cost), the
    top functions by self cost, and the top by inclusive cost outside the interpreter's
    call machinery (whose inclusive cost is everything)."""
    seen = profile(dump.path)
    total = seen.total or 1
    own: dict[str, int] = defaultdict(int)
    for name, cost in seen.self_cost.items():
        own[_RECURSION.sub("", name)] += cost  # f'2 is f called from within f

    def row(name: str, cost: int) -> dict[str, Any]:
        return {
            "function": name,
            "object": Path(seen.objects.get(name, "")).name or "?",
            "per_op": cost / ops,
            "share": cost / total,
        }

    outer = [  # recursion levels are inside their outer call's inclusive cost already
        (name, cost)
        for name, cost in seen.inclusive.items()
        if not _RECURSION.search(name) and not _MACHINERY.match(name)
    ]
    return {
        "instructions": seen.total,
        "ops": ops,
        "by_object": [
            {"object": Path(name).name or "?", "per_op": cost / ops, "share": cost / total}
            for name, cost in sorted(seen.by_object.items(), key=lambda item: -item[1])
            if cost / total >= 0.001
        ],
        "self": [row(n, c) for n, c in sorted(own.items(), key=lambda i: -i[1])[:top]],
        "inclusive": [row(n, c) for n, c in sorted(outer, key=lambda i: -i[1])[:top]],
    }


# --- counting a scenario -------------------------------------------------------


def count(module: str, scenario: str, ops: int, *, detail: bool = False) -> dict[str, Any]:
    """Instructions per operation of `module`'s `scenario` (`{"error": why}` if they cannot
    be counted here). With `detail`, also where the instructions went (`where`)."""
    try:
        library = shim()
    except Unavailable as e:
        return {"error": str(e)}
    with tempfile.TemporaryDirectory(prefix="caxton-bench-cg-") as tmp:
        out = Path(tmp)
        done_file = out / "done.json"
        command = [
            *VALGRIND,
            f"--callgrind-out-file={out / 'callgrind.out'}",
            f"--log-file={out / 'valgrind.log'}",
            sys.executable,
            "-m",
            "bench.callgrind",
            "--child",
            module,
            scenario,
            str(ops),
            "--shim",
            str(library),
            "--done",
            str(done_file),
        ]
        try:
            ran = subprocess.run(
                command,
                cwd=ROOT,
                timeout=TIMEOUT_S,
                check=False,
                capture_output=True,
                text=True,
            )
        except subprocess.TimeoutExpired:
            return {"error": f"the run under callgrind did not finish within {TIMEOUT_S} s"}
        if ran.returncode != 0 or not done_file.exists():
            tail = " | ".join((ran.stderr or ran.stdout).strip().splitlines()[-3:])
            return {"error": f"the run under callgrind failed (exit {ran.returncode}): {tail}"}
        done = json.loads(done_file.read_text())
        window = [d for d in dumps(out) if d.trigger == f"Client Request: {scenario}"]
        if not window or not done["running"]:
            return {"error": "the run under callgrind wrote no dump for its window"}
        instructions = sum(d.instructions for d in window)
        ops_done = int(done["ops"])
        if ops_done < 1:
            return {"error": "the window under callgrind did no operation"}
        figures: dict[str, Any] = {
            "instructions": instructions,
            "ops": ops_done,
            "per_op": instructions / ops_done,
            "threads": len([d for d in window if d.instructions]),
        }
        if detail:
            figures["where"] = where(max(window, key=lambda d: d.instructions), ops_done)
            figures["where"]["python_calls"] = python_calls(module, scenario, ops)
        return figures


def python_calls(module: str, scenario: str, ops: int) -> dict[str, Any]:
    """The same window run natively (no valgrind) with its Python calls counted."""
    with tempfile.TemporaryDirectory(prefix="caxton-bench-calls-") as tmp:
        done_file = Path(tmp) / "done.json"
        command = [sys.executable, "-m", "bench.callgrind", "--child", module, scenario]
        ran = subprocess.run(
            [*command, str(ops), "--calls", "--done", str(done_file)],
            cwd=ROOT,
            timeout=TIMEOUT_S,
            check=False,
            capture_output=True,
            text=True,
        )
        if ran.returncode != 0 or not done_file.exists():
            tail = " | ".join((ran.stderr or ran.stdout).strip().splitlines()[-3:])
            return {"error": f"the run counting Python calls failed: {tail}"}
        calls: dict[str, Any] = json.loads(done_file.read_text())["calls"]
        return calls


def child(module: str, scenario: str, ops: int, library: Path | None, done_file: Path) -> None:
    """Runs the scenario with a callgrind window (`library`: the shim), or with its Python
    calls counted (no `library`), and writes what it did to `done_file`."""
    benchmarks: Counted = importlib.import_module(module)
    if library is None:
        counter = CallCounter()
        done = benchmarks.counted(scenario, ops, counter)
        outcome = {"ops": done, "calls": counter.calls(done)}
    else:
        collector = Collector(library, scenario)
        done = benchmarks.counted(scenario, ops, collector)
        outcome = {"ops": done, "running": collector.running}
    done_file.write_text(json.dumps(outcome))
    sys.stdout.flush()
    os._exit(0)  # a library thread left running must not keep the run under valgrind alive


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Runs one counted scenario (used by count()).")
    parser.add_argument("--child", nargs=3, metavar=("MODULE", "SCENARIO", "OPS"), required=True)
    how = parser.add_mutually_exclusive_group(required=True)
    how.add_argument("--shim", type=Path, help="count instructions (under valgrind)")
    how.add_argument("--calls", action="store_true", help="count Python calls (cProfile)")
    parser.add_argument("--done", type=Path, required=True)
    args = parser.parse_args()
    module_name, scenario_name, ops_text = args.child
    child(module_name, scenario_name, int(ops_text), args.shim, args.done)
