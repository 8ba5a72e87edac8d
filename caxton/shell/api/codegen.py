"""Regenerates the API's Python code from `proto/caxton/v1`; `--check` only compares.

    python -m caxton.shell.api.codegen          # rewrite caxton/shell/api/generated/
    python -m caxton.shell.api.codegen --check  # exit 1 if the committed code is stale

The code is made by betterproto2-compiler, run as a protoc plugin of grpcio-tools (both
dev dependencies). The plugin formats its output with the `ruff` it finds on PATH, reads
ruff's settings from its working directory, and skips `__init__.py` files that exist
there, so it always runs in an empty scratch directory holding a pinned `ruff.toml`:
the output then depends only on the .proto files and the pinned tool versions.
The same protoc run writes the files' descriptors beside the code (a FileDescriptorSet,
`caxton.protoset`): betterproto2 registers none, and the server's gRPC reflection
answers from them.

Errors: `CodegenFailed` (a tool is missing or protoc rejected the .proto files) is
reported on one line and exits with status 2.
"""

from __future__ import annotations

import argparse
import difflib
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
PROTO_ROOT = ROOT / "proto"
PROTO_PACKAGE = PROTO_ROOT / "caxton" / "v1"
GENERATED = ROOT / "caxton" / "shell" / "api" / "generated"
DESCRIPTORS = "caxton.protoset"  # in GENERATED
PLUGIN = "protoc-gen-python_betterproto2"
PLUGIN_OPTIONS = "client_generation=async,server_generation=async"
# What the plugin's ruff formats with; independent of any ruff configuration around.
RUFF_SETTINGS = 'line-length = 100\ntarget-version = "py311"\n'
DIFF_LINES_PER_FILE = 40
_INSTALL_DEV = "install the dev dependencies: pip install -e '.[dev]'"


class CodegenFailed(Exception):
    """The code could not be generated; the message says why and what to do."""


def _tool_dirs() -> list[Path]:
    # The venv's bin directory, even when the venv is not activated.
    return [Path(sys.executable).parent]


def _find_plugin() -> Path:
    for directory in _tool_dirs():
        candidate = directory / PLUGIN
        if candidate.is_file():
            return candidate
    found = shutil.which(PLUGIN)
    if found is None:
        raise CodegenFailed(f"{PLUGIN} not found ({_INSTALL_DEV})")
    return Path(found)


def proto_files() -> list[Path]:
    """The API's .proto files, relative to the import root `proto/`."""
    files = sorted(p.relative_to(PROTO_ROOT) for p in PROTO_PACKAGE.glob("*.proto"))
    if not files:
        raise CodegenFailed(f"no .proto files in {PROTO_PACKAGE.relative_to(ROOT)}")
    return files


def generate(out: Path) -> None:
    """Writes the generated package tree into `out` (an existing, empty directory)."""
    if importlib.util.find_spec("grpc_tools") is None:
        raise CodegenFailed(f"grpcio-tools is missing ({_INSTALL_DEV})")
    plugin = _find_plugin()
    path = os.pathsep.join([*map(str, _tool_dirs()), os.environ.get("PATH", "")])
    command = [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        f"--proto_path={PROTO_ROOT}",
        f"--plugin={PLUGIN}={plugin}",
        f"--python_betterproto2_out={out}",
        f"--python_betterproto2_opt={PLUGIN_OPTIONS}",
        f"--descriptor_set_out={out / DESCRIPTORS}",
        "--include_imports",
        *map(str, proto_files()),
    ]
    with tempfile.TemporaryDirectory(prefix="caxton-codegen-cwd-") as scratch:
        Path(scratch, "ruff.toml").write_text(RUFF_SETTINGS, encoding="utf-8")
        result = subprocess.run(
            command,
            cwd=scratch,
            env={**os.environ, "PATH": path},
            capture_output=True,
            text=True,
            check=False,
        )
    if result.returncode != 0:
        detail = result.stderr.strip() or result.stdout.strip()
        raise CodegenFailed(f"protoc failed:\n{detail}")


def _tree(root: Path) -> dict[str, bytes]:
    """Every generated file under `root` by its relative path; caches left out."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


def differences(committed: dict[str, bytes], fresh: dict[str, bytes]) -> list[str]:
    """A readable summary of how the committed tree differs from a fresh one."""
    lines: list[str] = []
    for name in sorted(committed.keys() | fresh.keys()):
        if name not in committed:
            lines.append(f"  missing: {name} (protoc would create it)")
        elif name not in fresh:
            lines.append(f"  extra:   {name} (protoc no longer creates it)")
        elif name.endswith(".protoset") and committed[name] != fresh[name]:
            lines.append(f"  changed: {name} (binary descriptors)")
        elif committed[name] != fresh[name]:
            lines.append(f"  changed: {name}")
            diff = list(
                difflib.unified_diff(
                    committed[name].decode("utf-8", "replace").splitlines(),
                    fresh[name].decode("utf-8", "replace").splitlines(),
                    fromfile=f"committed/{name}",
                    tofile=f"generated/{name}",
                    lineterm="",
                )
            )
            shown = diff[:DIFF_LINES_PER_FILE]
            lines.extend(f"    {line}" for line in shown)
            if len(diff) > len(shown):
                lines.append(f"    ... {len(diff) - len(shown)} more diff lines")
    return lines


def check() -> int:
    """0 if the committed code is what the .proto files generate, else 1 with a summary."""
    with tempfile.TemporaryDirectory(prefix="caxton-codegen-") as tmp:
        fresh_root = Path(tmp)
        generate(fresh_root)
        fresh = _tree(fresh_root)
    committed = _tree(GENERATED) if GENERATED.is_dir() else {}
    summary = differences(committed, fresh)
    where = GENERATED.relative_to(ROOT).as_posix()
    if not summary:
        print(f"✓ {where} matches proto/caxton/v1 ({len(fresh)} files)")
        return 0
    print(f"✗ {where} is out of date with proto/caxton/v1:")
    print("\n".join(summary))
    print("Run `python -m caxton.shell.api.codegen` and commit the result.")
    return 1


def regenerate() -> int:
    """Replaces the generated tree with a fresh one; the old tree stays if protoc fails."""
    with tempfile.TemporaryDirectory(prefix="caxton-codegen-") as tmp:
        # A fresh subdirectory: copytree keeps its mode, not the scratch dir's 0700.
        fresh_root = Path(tmp, "generated")
        fresh_root.mkdir()
        generate(fresh_root)
        if GENERATED.exists():
            shutil.rmtree(GENERATED)
        shutil.copytree(fresh_root, GENERATED)
    count = len(_tree(GENERATED))
    print(f"✓ wrote {count} files to {GENERATED.relative_to(ROOT).as_posix()}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m caxton.shell.api.codegen",
        description="Generate the gRPC API code from proto/caxton/v1.",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="compare a fresh generation with the committed code; exit 1 if they differ",
    )
    args = parser.parse_args(argv)
    try:
        return check() if args.check else regenerate()
    except CodegenFailed as exc:
        print(f"✗ {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
