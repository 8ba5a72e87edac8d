"""`caxton replay` and `caxton events` against a real server and real WAT bidders:
print, re-execute, export, bundle, import."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
)

from caxton.domain.events import MessageSent
from caxton.domain.world import fold
from caxton.shell.archive.sources import LogSource, recording
from caxton.shell.client import CaxtonClient
from tests.e2e.conftest import ServerProcess, caxton
from tests.support import wat

pytestmark = pytest.mark.slow


def bidder_build(directory: Path, name: str, price: int | None = 7) -> Path:
    """bidder.wat as is (price 7), with another price, or (price None) one that traps."""
    if price is None:
        wasm = wat("trap")
    else:
        source = (Path(__file__).parents[1] / "wasm" / "components" / "bidder.wat").read_text()
        wasm = bytes(__import__("wasmtime").wat2wasm(source.replace(":7}", f":{price}}}")))
    path = directory / f"{name}.wasm"
    path.write_bytes(wasm)
    return path


async def contract_net(address: str) -> str:
    """The client calls for proposals from every bidder and accepts bidder-b's."""
    async with CaxtonClient(address) as client:
        cfp = await client.send(
            "capability:bidding",
            "cfp",
            {"task": "paint", "rooms": 3},
            protocol="fipa-contract-net",
            wait_ms=5_000,
            sender="client:buyer",
        )
        cid = cfp.conversation_id
        proposals = 0
        async for recorded in client.events(conversation_id=cid, follow=True):
            event = recorded.event
            if isinstance(event, MessageSent) and event.message.performative.value == "propose":
                proposals += 1
                if proposals == 2:  # both bids are in: no late one can answer the accept
                    break
        accepted = await client.send(
            "bidder-b",
            "accept-proposal",
            {"price": 7},
            conversation_id=cid,
            protocol="fipa-contract-net",
            wait_ms=5_000,
            sender="client:buyer",
        )
        assert accepted.reply is not None and accepted.reply.performative.value == "inform"
        return cid


@pytest.fixture
def recorded(server: ServerProcess, tmp_path: Path) -> tuple[ServerProcess, str]:
    original = bidder_build(tmp_path, "bidder")
    for name in ("bidder-a", "bidder-b"):
        caxton(
            "agent",
            "deploy",
            str(original),
            "--name",
            name,
            "--capability",
            "bidding",
            "--server",
            server.address,
        )
    return server, asyncio.run(contract_net(server.address))


def test_print_tells_the_story_from_a_server_and_from_the_data_dir(
    recorded: tuple[ServerProcess, str],
) -> None:
    server, cid = recorded
    live = caxton("replay", "--conversation", cid, "--print", "--server", server.address)
    offline = caxton("replay", "--conversation", cid, "--print", "--log", str(server.data_dir))
    assert live.stdout == offline.stdout
    assert "propose" in live.stdout and "accept-proposal" in live.stdout
    assert "bidder-a" in live.stdout and "bidder-b" in live.stdout
    # the buyer rejected no one explicitly, so bidder-a's exchange is still open
    assert "Violations\n  none" in live.stdout
    missing = caxton(
        "replay", "--conversation", "nope", "--print", "--log", str(server.data_dir), check=False
    )
    assert missing.returncode == 1 and "✗ no conversation 'nope'" in missing.stderr


def test_the_same_build_reproduces_the_conversation(
    recorded: tuple[ServerProcess, str], tmp_path: Path
) -> None:
    server, cid = recorded
    same = bidder_build(tmp_path, "same")
    result = caxton(
        "replay", "--conversation", cid, "--with", f"bidder-b={same}", "--server", server.address
    )
    assert "✓ identical" in result.stdout
    assert "✓ same" in result.stdout and "✗" not in result.stdout


def test_a_different_price_rule_diverges_at_the_proposal(
    recorded: tuple[ServerProcess, str], tmp_path: Path
) -> None:
    server, cid = recorded
    cheaper = bidder_build(tmp_path, "cheaper", price=5)
    result = caxton(
        "replay",
        "--conversation",
        cid,
        "--with",
        f"bidder-b={cheaper}",
        "--log",
        str(server.data_dir),
        check=False,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "✗ diverges at step" in result.stdout
    assert "✗ different" in result.stdout and "propose" in result.stdout
    assert '"price": 7' in result.stdout and '"price": 5' in result.stdout  # both contents
    assert "diverges from the recorded conversation" in result.stderr


def test_a_build_that_traps_is_reported(
    recorded: tuple[ServerProcess, str], tmp_path: Path
) -> None:
    server, cid = recorded
    broken = bidder_build(tmp_path, "broken", price=None)
    result = caxton(
        "replay",
        "--conversation",
        cid,
        "--with",
        f"bidder-a={broken}",
        "--server",
        server.address,
        check=False,
    )
    assert result.returncode == 1
    assert "✗ trap: trap" in result.stdout and "the new build traps" in result.stdout


def test_bad_re_execution_input_is_one_clear_line(
    recorded: tuple[ServerProcess, str], tmp_path: Path
) -> None:
    server, cid = recorded
    notwasm = tmp_path / "x.wasm"
    notwasm.write_text("hello")
    for args, words in [
        (["--with", "bidder-b"], "is not AGENT=FILE"),
        (["--with", f"nobody={notwasm}"], "handled no message"),
        (["--with", f"bidder-b={tmp_path / 'missing.wasm'}"], "cannot read"),
        (["--with", f"bidder-b={notwasm}"], "not a WebAssembly"),
    ]:
        result = caxton(
            "replay", "--conversation", cid, *args, "--server", server.address, check=False
        )
        assert result.returncode != 0
        assert words in result.stderr + result.stdout, (args, result.stderr)
        assert "Traceback" not in result.stderr


def test_a_bundle_imported_elsewhere_folds_to_the_same_state(
    recorded: tuple[ServerProcess, str], tmp_path: Path
) -> None:
    server, cid = recorded
    bundle = tmp_path / "conversation.db"
    caxton(
        "events",
        "export",
        "--server",
        server.address,
        "--conversation",
        cid,
        "--format",
        "bundle",
        "-o",
        str(bundle),
    )
    again = caxton(
        "events",
        "export",
        "--server",
        server.address,
        "--conversation",
        cid,
        "--format",
        "bundle",
        "-o",
        str(bundle),
        check=False,
    )
    assert again.returncode == 1 and "already exists" in again.stderr
    server.stop()  # the bundle must stand on its own

    imported = tmp_path / "elsewhere"
    caxton("events", "import", str(bundle), "--data-dir", str(imported))
    refused = caxton("events", "import", str(bundle), "--data-dir", str(imported), check=False)
    assert refused.returncode == 1 and "not empty" in refused.stderr
    served = caxton("server", "start", "--data-dir", str(imported), check=False)
    assert served.returncode == 1 and "imported from a bundle" in served.stderr

    async def states() -> list[object]:
        found = []
        for path in (server.data_dir, bundle, imported):
            source = await LogSource.open(path)
            try:
                rec, _ = await recording(source, cid)
                world = fold(rec.events, rec.prelude)
                found.append((world.conversations[cid], world.agents, rec.events))
                # the bundle carries the components, content-addressed
                digest = world.agents["bidder-b"].component
                assert await source.component(digest) is not None
            finally:
                await source.close()
        return found

    original, from_bundle, from_import = asyncio.run(states())
    assert original == from_bundle == from_import

    same = bidder_build(tmp_path, "same")
    result = caxton(
        "replay", "--conversation", cid, "--with", f"bidder-b={same}", "--log", str(imported)
    )
    assert "✓ identical" in result.stdout


def test_exports_are_deterministic_and_documented_formats(
    recorded: tuple[ServerProcess, str], tmp_path: Path
) -> None:
    server, cid = recorded
    outputs = {}
    for fmt in ("jsonl", "otlp-json", "mermaid"):
        first, second = tmp_path / f"1.{fmt}", tmp_path / f"2.{fmt}"
        for path in (first, second):
            caxton(
                "events",
                "export",
                "--server",
                server.address,
                "--conversation",
                cid,
                "--format",
                fmt,
                "-o",
                str(path),
            )
        assert first.read_bytes() == second.read_bytes(), fmt
        outputs[fmt] = first.read_text()
    lines = [json.loads(line) for line in outputs["jsonl"].splitlines()]
    assert {line["schema"] for line in lines} == {"caxton.events/1"}
    assert [line["position"] for line in lines] == sorted(line["position"] for line in lines)
    assert any(line["type"] == "MessageSent" for line in lines)
    assert "sequenceDiagram" in outputs["mermaid"] and "->>" in outputs["mermaid"]
    parsed = json_format.Parse(outputs["otlp-json"], ExportTraceServiceRequest())
    assert len(parsed.resource_spans[0].scope_spans[0].spans) >= 6  # 2 sends out, 4 in
    trace = json.loads(outputs["otlp-json"])
    spans = trace["resourceSpans"][0]["scopeSpans"][0]["spans"]
    # one trace per call from outside (the cfp, the accept), every span in one of them
    assert len({s["traceId"] for s in spans}) == 2
    ids = {s["spanId"] for s in spans}
    assert all(s.get("parentSpanId", "") in ids | {""} for s in spans)
    whole = caxton(
        "events", "export", "--log", str(server.data_dir), "--format", "jsonl", "-o", "-"
    )
    assert len(whole.stdout.splitlines()) > len(lines)
    for args, words in [
        (["--format", "mermaid"], "pass --conversation"),
        (["--format", "bundle", "--conversation", cid], "pass -o FILE"),
        (["--format", "jsonl", "--since", "yesterday"], "neither a duration"),
    ]:
        out = "-" if "pass -o FILE" in words else str(tmp_path / "x")
        result = caxton(
            "events", "export", "--server", server.address, *args, "-o", out, check=False
        )
        assert result.returncode != 0 and words in result.stderr, (args, result.stderr)
