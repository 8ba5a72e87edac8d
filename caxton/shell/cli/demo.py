"""`caxton demo`: build the examples, start a server, run two conversations, show traces."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import socket
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import click

from caxton.domain.units import format_size
from caxton.replay.trace import TraceView, format_line
from caxton.shell.cli.common import Failure, out, run
from caxton.shell.cli.progress import Stages
from caxton.shell.client import CaxtonClient
from caxton.shell.datadir import DataDir, DataDirBusy, DataDirUnusable

if TYPE_CHECKING:
    from caxton.shell.wasm import WasmHost

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
SOURCES = {
    "manager": EXAMPLES / "contract-net" / "manager.py",
    "bidder": EXAMPLES / "contract-net" / "bidder.py",
    "order-processor": EXAMPLES / "order-processing" / "order_processor.py",
}
BIDDERS = {"bidder-a": 12, "bidder-b": 9, "bidder-c": 15}
REPLY_WAIT_S = 30.0
"""How long the demo waits for an agent's reply: generous, for a busy machine."""
STOP_WAIT_S = 20.0


@click.command()
@click.option(
    "--data-dir", type=click.Path(path_type=Path), default=Path(".caxton/demo"), show_default=True
)
@click.option("--keep-running", is_flag=True, help="Leave the server running after the demo.")
@run
async def demo(data_dir: Path, keep_running: bool) -> None:
    """Run the end-to-end demo on an embedded SQLite log."""
    if not EXAMPLES.is_dir():
        raise Failure(f"examples not found at {EXAMPLES} (run the demo from a clone of Caxton)")
    section("Building the example agents and compiling them for the server (both cached)")
    with Stages(out) as stages:
        components = await asyncio.to_thread(
            _prepare_examples, stages, data_dir.parent / "build", data_dir
        )
    _fresh_log(data_dir)
    port = _free_port()
    address = f"127.0.0.1:{port}"
    section(f"Starting a server on {address} (log: {data_dir / 'events.db'})")
    process = await _start_server(data_dir, address)
    try:
        async with CaxtonClient(address) as client:
            section("Deploying agents")
            with Stages(out) as stages:
                await _deploy(client, components, stages)
            await _contract_net(client)
            await _order(client)
            section("Conversations")
            found = await client.conversations()
            for c in found:
                out.print(
                    f"  {c.id}  {c.protocol or '-':<18} {c.state:<8} "
                    f"{c.message_count:>2} messages  "
                    f"{', '.join(c.participants)}",
                    markup=False,
                )
            cnet = next((c.id for c in found if c.protocol == "fipa-contract-net"), "")
            if cnet:
                out.print("\n  step through the contract net, after the fact:", markup=False)
                out.print(f"  $ caxton replay --log {data_dir} --conversation {cnet}", markup=False)
    finally:
        if not keep_running:
            await _stop_server(process)
    if keep_running:
        out.print(
            f"\nserver still running (pid {process.pid}); try: caxton agent list --server {address}"
        )
    else:
        out.print("\n✓ demo finished")


def section(title: str) -> None:
    out.print(f"\n[bold]== {title}[/bold]")


def _prepare_examples(stages: Stages, build_dir: Path, data_dir: Path) -> dict[str, Path]:
    """Builds each example (componentize-py) and compiles it (wasmtime) into the component
    cache of the server to start, as many steps at once as there are cores (each uses about
    one). Both steps are cached (by the build's inputs, by the component's digest), so a
    second demo does neither."""
    from caxton.shell.wasm import WasmHost  # wasmtime: imported when needed

    workers = min(len(SOURCES), os.cpu_count() or 1)
    try:  # under the data directory's lock: its component cache has one writer at a time
        with (
            DataDir(data_dir) as locked,
            WasmHost(locked.components, workers=1) as host,
            ThreadPoolExecutor(workers, thread_name_prefix="caxton-demo") as pool,
        ):
            builds = {
                name: pool.submit(_build, stages, name, source, build_dir)
                for name, source in SOURCES.items()
            }
            # queued after every build (first in, first out), a compile waits only for a
            # build that is already running: the last build overlaps the first compile
            compiles = {
                name: pool.submit(_compile, stages, name, build, host)
                for name, build in builds.items()
            }
    except (DataDirBusy, DataDirUnusable) as exc:
        raise Failure(str(exc)) from None
    return {name: future.result() for name, future in compiles.items()}


def _build(stages: Stages, name: str, source: Path, build_dir: Path) -> Path:
    from caxton.shell.agents import AgentToolError, cached_build

    with stages.stage(name, "building with componentize-py") as stage:
        try:
            built = cached_build(source, build_dir)
        except AgentToolError as exc:
            raise Failure(f"building {source}: {exc}") from None
        size = format_size(built.size)
        stage.done(
            f"built earlier ({built.output.name}, {size})"
            if built.cached
            else f"built in {built.seconds:.1f} s ({size})"
        )
    return built.output


def _compile(stages: Stages, name: str, build: Future[Path], host: WasmHost) -> Path:
    from caxton.shell.wasm import WasmError

    component = build.result()
    with stages.stage(name, "compiling with wasmtime (for the server)") as stage:
        wasm = component.read_bytes()
        earlier = host.cache.artifact_path(hashlib.sha256(wasm).hexdigest()).exists()
        try:
            host.load(wasm, component.name)
        except WasmError as exc:
            raise Failure(f"compiling {component}: {exc}") from None
        seconds = f"{stage.elapsed():.1f} s"
        stage.done(
            f"compiled earlier (loaded in {seconds})" if earlier else f"compiled in {seconds}"
        )
    return component


def _fresh_log(data_dir: Path) -> None:
    """Starts from an empty log but keeps the compiled-component cache."""
    data_dir.mkdir(parents=True, exist_ok=True)
    for path in data_dir.glob("events.db*"):
        path.unlink()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def _start_server(data_dir: Path, address: str) -> asyncio.subprocess.Process:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "caxton",
        "server",
        "start",
        "--data-dir",
        str(data_dir),
        "--listen",
        address,
        "--log-level",
        "WARNING",
        "--metrics",  # free ports: the defaults may be taken by another server
        f"127.0.0.1:{_free_port()}",
        "--health",
        f"127.0.0.1:{_free_port()}",
        "--rest",
        f"127.0.0.1:{_free_port()}",
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stdout is not None
    while True:
        line = await process.stdout.readline()
        if not line:
            code = await process.wait()
            raise Failure(f"the server exited with status {code} before it was ready")
        text = line.decode().rstrip()
        out.print(f"  {text}", markup=False)
        if "listening on" in text:
            return process


async def _stop_server(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.send_signal(signal.SIGINT)
        try:
            await asyncio.wait_for(process.wait(), timeout=STOP_WAIT_S)
        except TimeoutError:
            out.print(
                f"  the server (pid {process.pid}) was still stopping {STOP_WAIT_S:.0f} s "
                "after SIGINT: killed it",
                markup=False,
            )
            process.kill()
            await process.wait()


async def _deploy(client: CaxtonClient, components: dict[str, Path], stages: Stages) -> None:
    """Deploys one at a time; each deploy waits as long as the server takes (no deadline):
    a component the server has not compiled before takes it a minute or more."""
    deployments = [
        ("manager", components["manager"], (), 1, {"bidders": len(BIDDERS)}),
        *[
            (name, components["bidder"], ("bidding",), 1, {"price": price})
            for name, price in BIDDERS.items()
        ],
        ("order-processor", components["order-processor"], ("order-processing",), 3, {}),
    ]
    for name, path, capabilities, replicas, config in deployments:
        with stages.stage(name, f"deploying {path.name}") as stage:
            info = await client.deploy(
                path.read_bytes(),
                name,
                capabilities=capabilities,
                replicas=replicas,
                config=json.dumps(config),
                filename=path.name,
            )
            stage.done(info.status_line)


async def _contract_net(client: CaxtonClient) -> None:
    section(
        "Contract net: the manager calls for proposals from every agent with capability 'bidding'"
    )
    reply = await client.invoke(
        "manager", {"task": "ship 10 widgets"}, timeout=REPLY_WAIT_S, protocol="fipa-request"
    )
    result = json.loads(reply.content)
    out.print(f"  manager replied {reply.performative}: {json.dumps(result)}", markup=False)
    await _print_trace(client, reply.conversation_id, "the request to the manager")
    cnet = result.get("conversation_id")
    if cnet:
        await _print_trace(client, cnet, "the contract net")


async def _order(client: CaxtonClient) -> None:
    section("Request/reply: an order to capability:order-processing (3 replicas)")
    result = await client.send(
        ["capability:order-processing"],
        "request",
        json.dumps({"order": {"items": ["item-123", "item-456"], "address": "123 Main St"}}),
        protocol="fipa-request",
        wait_ms=int(REPLY_WAIT_S * 1000),
    )
    if result.reply is None:
        raise Failure(
            f"the order processor did not reply within {REPLY_WAIT_S:.0f} s "
            f"(conversation {result.conversation_id}; see 'caxton trace')"
        )
    out.print(
        f"  order-processor replied {result.reply.performative}: {result.reply.content}",
        markup=False,
    )
    await _print_trace(client, result.conversation_id, "the order")
    status = await client.agent("order-processor")
    out.print(f"\n  $ caxton agent status order-processor\n  {status.status_line}", markup=False)


async def _print_trace(client: CaxtonClient, conversation_id: str, what: str) -> None:
    out.print(f"\n  $ caxton trace --conversation-id {conversation_id}   # {what}", markup=False)
    view = TraceView()
    async for recorded in client.events(conversation_id=conversation_id):
        for line in view.lines(recorded):
            out.print("  " + format_line(line), markup=False)
    for line in view.flush():
        out.print("  " + format_line(line), markup=False)
