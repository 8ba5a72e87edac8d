"""`caxton events export` and `caxton events import`."""

from __future__ import annotations

import sys
import time
from collections.abc import AsyncIterator, Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import ParamSpec, TypeVar

import click

from caxton import __version__
from caxton.domain.errors import quoted
from caxton.domain.events import AgentDeployed, Recorded
from caxton.replay.export import jsonl_lines, mermaid
from caxton.replay.otlp import otlp_json
from caxton.replay.recording import Recording
from caxton.shell.archive import BundleError, Source, SourceError, import_bundle, write_bundle
from caxton.shell.archive.sources import open_source, recording
from caxton.shell.cli.common import DURATION, Failure, out, run, server_options
from caxton.shell.client import Connection
from caxton.shell.files import write_atomically

FORMATS = ("jsonl", "otlp-json", "mermaid", "bundle")
P = ParamSpec("P")
T = TypeVar("T")


def source_options(fn: Callable[P, T]) -> Callable[P, T]:
    """--server and its credentials (from the common options) and --log PATH."""
    fn = click.option(
        "--log",
        "log_path",
        type=click.Path(path_type=Path),
        default=None,
        help="Read a data directory, an event log file or a bundle instead of a server.",
    )(fn)
    return server_options(fn)


async def open_for(server: Connection, log_path: Path | None) -> Source:
    try:
        return await open_source(server=server, log=log_path)
    except SourceError as exc:
        raise Failure(str(exc)) from None


async def load(source: Source, conversation_id: str) -> tuple[Recording, list[Recorded]]:
    """The recording and the events of its story (what came before it included)."""
    try:
        found, history = await recording(source, conversation_id)
    except SourceError as exc:
        raise Failure(str(exc)) from None
    last = found.events[-1].position
    return found, [r for r in history if r.position <= last]


@click.group()
def events() -> None:
    """Export recorded events, and import bundles."""


@events.command("export")
@click.option("--conversation", "conversation_id", default="", help="Only this conversation.")
@click.option("--since", default="", help="Only events since a time: 1h (ago) or ISO 8601.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), required=True, help="What to write.")
@click.option(
    "-o", "--output", type=click.Path(path_type=Path), required=True, help="File, or - (stdout)."
)
@source_options
@run
async def export(
    conversation_id: str,
    since: str,
    fmt: str,
    output: Path,
    log_path: Path | None,
    server: Connection,
) -> None:
    """Write a conversation (or the whole log) as JSON lines, OTLP JSON, Mermaid or a bundle."""
    since_ms = parse_since(since)
    if fmt in ("mermaid", "bundle") and not conversation_id:
        raise Failure(f"--format {fmt} exports one conversation: pass --conversation ID")
    if fmt == "bundle" and str(output) == "-":
        raise Failure("a bundle is a SQLite file: pass -o FILE")
    source = await open_for(server, log_path)
    try:
        if conversation_id:
            found, story = await load(source, conversation_id)
            chosen = [r for r in story if r.at >= since_ms]
        else:
            chosen = [r async for r in _since(source.everything(), since_ms)]
        if fmt == "bundle":
            await _bundle(source, found, chosen, output)
            out.print(
                f"✓ wrote {output}: {len(chosen)} events, conversation {conversation_id}",
                markup=False,
            )
            return
        if fmt == "jsonl":
            data = b"".join(jsonl_lines(chosen))
        elif fmt == "otlp-json":
            data = otlp_json(chosen)
        else:
            data = mermaid(found)
    finally:
        await source.close()
    _write(output, data)
    if str(output) != "-":
        out.print(f"✓ wrote {output}: {len(chosen)} events as {fmt}", markup=False)


@events.command("import")
@click.argument("bundle", type=click.Path(path_type=Path))
@click.option(
    "--data-dir", type=click.Path(path_type=Path), required=True, help="A new or empty directory."
)
@run
async def import_(bundle: Path, data_dir: Path) -> None:
    """Make a bundle a browsable log: `caxton replay --log DIR` reads it."""
    try:
        info = await import_bundle(bundle, data_dir)
    except BundleError as exc:
        raise Failure(str(exc)) from None
    conversation = info.get("conversation", "?")
    out.print(f"✓ imported conversation {conversation} into {data_dir}")
    out.print(f"  caxton replay --log {data_dir} --conversation {conversation}")


def parse_since(text: str) -> int:
    """`1h` (that long ago), or an ISO 8601 time; 0 when empty."""
    if not text:
        return 0
    try:
        return int(time.time() * 1000) - DURATION.convert(text, None, None)
    except click.BadParameter:
        pass
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise Failure(
            f"--since {quoted(text)} is neither a duration (5m, 1h) nor an ISO 8601 time"
        ) from None
    if moment.tzinfo is None:
        raise Failure(f"--since {quoted(text)} has no time zone; add Z or +00:00")
    return int(moment.timestamp() * 1000)


async def _since(records: AsyncIterator[Recorded], since_ms: int) -> AsyncIterator[Recorded]:
    async for recorded in records:
        if recorded.at >= since_ms:
            yield recorded


async def _bundle(
    source: Source, found: Recording, story: Iterable[Recorded], output: Path
) -> None:
    chosen = list(story)
    digests = {r.event.component for r in chosen if isinstance(r.event, AgentDeployed)}
    components: dict[str, bytes] = {}
    missing = []
    for digest in sorted(digests):
        wasm = await source.component(digest)
        if wasm is None:
            missing.append(digest)
        else:
            components[digest] = wasm
    info = {
        "conversation": found.conversation_id,
        "source": source.where,
        "exported_at": datetime.now().astimezone().isoformat(timespec="seconds"),
        "caxton": __version__,
    }
    if missing:
        info["missing_components"] = ",".join(missing)
    try:
        await write_bundle(output, chosen, components, info)
    except BundleError as exc:
        raise Failure(str(exc)) from None


def _write(output: Path, data: bytes) -> None:
    if str(output) == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    try:
        if output.exists() and not output.is_file():  # /dev/null, a pipe: write to it
            output.write_bytes(data)
        else:  # whole or not at all: never a truncated export, never the old file lost
            write_atomically(output, data)
    except OSError as exc:
        raise Failure(f"{output}: cannot write ({exc.strerror})") from None
