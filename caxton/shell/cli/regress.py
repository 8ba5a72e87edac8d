"""`caxton replay --agent A --with A=FILE [--since 1d]`: a new build of one agent on every
conversation it took part in, one row each, and an exit status a CI can gate on."""

from __future__ import annotations

from pathlib import Path

from caxton.domain.errors import quoted
from caxton.replay.regression import EXIT_BAD_INPUT, cases, exit_status, memory_case, table
from caxton.shell.archive import Source, SourceError
from caxton.shell.cli.common import Failure, err, out
from caxton.shell.cli.events import parse_since
from caxton.shell.cli.progress import Tally
from caxton.shell.client import CaxtonError
from caxton.shell.reexec import ReexecFailed, Rerun
from caxton.shell.regression import find, regress, stories, workers_for


def bad_input(message: str) -> Failure:
    return Failure(message, code=EXIT_BAD_INPUT)


async def regress_command(source: Source, agent: str, builds: dict[str, Path], since: str) -> None:
    """Prints the summary table; exit 0 when all are identical, 1 when any diverged or
    trapped, 3 when the rest need host answers the record lacks, 2 for bad input."""
    path = _build_for(agent, builds)
    try:
        since_ms = parse_since(since)
    except Failure as exc:
        raise bad_input(str(exc)) from None
    try:
        wasm = path.read_bytes()
    except OSError as exc:
        raise bad_input(f"{path}: cannot read ({exc.strerror})") from None
    try:
        found = await find(source, agent, since_ms)
    except (SourceError, CaxtonError) as exc:  # not a regression: the log cannot be read
        raise bad_input(f"cannot read {source.where}: {exc}") from None
    if not found.deployed:
        raise bad_input(f"no agent {quoted(agent)} in {source.where}")
    try:
        memories = await source.memory_plans(agent)
    except SourceError as exc:
        raise Failure(str(exc)) from None
    if memories:  # every handling since its memory began depends on the ones before it
        if since:
            err.print(f"{agent} keeps memory: every handling since it began is re-executed")
        chosen = [memory_case(plan) for plan in memories]
    elif not found.conversations:
        window = f" since {since}" if since else ""
        raise bad_input(f"{agent} took part in no conversation{window} in {source.where}")
    else:
        try:
            chosen = list(cases(agent, await stories(source, found.conversations)))
        except SourceError as exc:
            raise Failure(str(exc)) from None
    at_once = workers_for(len(chosen))
    try:
        with Rerun.open(wasm, str(path), workers=at_once) as rerun:
            doing = f"re-executing {agent} with {path.name}"
            unit = "memories" if memories else "conversations"
            with Tally(err, doing, len(chosen), unit=unit) as tally:
                verdicts = await regress(chosen, rerun, at_once=at_once, done=tally.advance)
    except ReexecFailed as exc:  # not a component: nothing could run
        raise bad_input(str(exc)) from None
    out.print(table(agent, str(path), verdicts), markup=False, highlight=False)
    status = exit_status(verdicts)
    if status:
        raise Failure(f"{agent}: the new build is not identical on every conversation", status)


def _build_for(agent: str, builds: dict[str, Path]) -> Path:
    if not builds:
        raise bad_input(f"--agent {agent} needs the new build: --with {agent}=FILE.wasm")
    others = sorted(set(builds) - {agent})
    if others or agent not in builds:
        raise bad_input(
            f"--agent {agent} re-executes one agent: pass --with {agent}=FILE "
            f"(not {', '.join(others or sorted(builds))})"
        )
    return builds[agent]
