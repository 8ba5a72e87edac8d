"""`caxton replay --conversation ID --fork-at STEP --edit FIELD=VALUE`: the conversation
run again from one edited message, in the sandbox."""

from __future__ import annotations

from collections.abc import Sequence

from caxton.domain.events import Recorded
from caxton.replay.edits import BadEdit, parse_edit
from caxton.replay.fork import Fork
from caxton.replay.recording import Recording
from caxton.replay.regression import EXIT_BAD_INPUT
from caxton.shell.archive import Source
from caxton.shell.cli.common import Failure
from caxton.shell.fork import forked


def edits_of(values: Sequence[str]) -> list[tuple[str, str]]:
    """Every `--edit FIELD=VALUE`, checked before anything is read."""
    try:
        return [parse_edit(v) for v in values]
    except BadEdit as exc:
        raise Failure(str(exc), code=EXIT_BAD_INPUT) from None


async def fork_command(
    source: Source,
    recording: Recording,
    history: Sequence[Recorded],
    step: int,
    edits: Sequence[tuple[str, str]],
) -> Fork:
    try:
        return await forked(source, recording, history, step, edits)
    except BadEdit as exc:
        raise Failure(str(exc), code=EXIT_BAD_INPUT) from None
