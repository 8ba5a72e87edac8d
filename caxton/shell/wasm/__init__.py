"""The WebAssembly host: caxton:agent components in sandboxed, time- and memory-bounded stores."""

from caxton.shell.wasm.cache import ComponentCache, LoadedComponent
from caxton.shell.wasm.engine import TICK_MS, EpochTicker, deadline_ticks, make_engine
from caxton.shell.wasm.errors import (
    HostCallRefused,
    InstanceDead,
    InstantiationFailed,
    InvalidComponent,
    SendRefused,
    ToolFailed,
    UnknownComponent,
    WasmError,
)
from caxton.shell.wasm.host import WasmHost
from caxton.shell.wasm.instance import INLINE_TIMEOUT_MS, AgentInstance
from caxton.shell.wasm.outcome import (
    AgentError,
    Completed,
    Outcome,
    TrapKind,
    Trapped,
    format_bytes,
)
from caxton.shell.wasm.services import HostServices
from caxton.shell.wasm.validation import check_memory

__all__ = [
    "INLINE_TIMEOUT_MS",
    "TICK_MS",
    "AgentError",
    "AgentInstance",
    "Completed",
    "ComponentCache",
    "EpochTicker",
    "HostCallRefused",
    "HostServices",
    "InstanceDead",
    "InstantiationFailed",
    "InvalidComponent",
    "LoadedComponent",
    "Outcome",
    "SendRefused",
    "ToolFailed",
    "TrapKind",
    "Trapped",
    "UnknownComponent",
    "WasmError",
    "WasmHost",
    "check_memory",
    "deadline_ticks",
    "format_bytes",
    "make_engine",
]
