"""A recorded conversation with tool calls, built as the runtime records one: a client asks
a clerk for the time; the clerk logs, asks the host for now and random, calls
`time.get_current_time` (answered), then `time.convert_time` (timed out, which opens the
breaker), and informs the client.

Deterministic (fixed ids and times), so the TUI's snapshot never changes between runs.
"""

from __future__ import annotations

import json

from caxton.domain.acl import AclMessage, Performative
from caxton.domain.events import (
    AgentDeployed,
    AgentStarted,
    BreakerOpened,
    HostCall,
    MessageHandled,
    MessageSent,
    Recorded,
    ToolCalled,
    ToolFailed,
    ToolReturned,
)
from caxton.domain.ids import sent_message_id
from caxton.domain.tools import journal_value
from tests.domain.domain_histories import Log

CONVERSATION = "5e1f0c2a9b8d4c3e8f7a6b5c4d3e2f1a-time"
START_MS = 1_764_000_000_000  # 2025-11-24T16:00:00Z
NOW = {"timezone": "UTC", "datetime": "2025-11-24T16:00:00+00:00", "is_dst": False}
RESULT = json.dumps(
    {
        "content": [{"type": "text", "text": json.dumps(NOW, indent=2)}],
        "structuredContent": NOW,
        "isError": False,
    }
)
ASK_ARGS = json.dumps({"timezone": "UTC"})
CONVERT_ARGS = json.dumps(
    {"source_timezone": "UTC", "time": "16:00", "target_timezone": "Asia/Tokyo"}
)
TIMEOUT = "timeout: time.convert_time did not answer within 5000ms"


def time_asked() -> list[Recorded]:
    log = Log(at=START_MS - 5_000)
    log.add(
        AgentDeployed(
            agent="clerk",
            component="sha256:clerk",
            component_size=1_617,
            replicas=1,
            tools=("time.*",),
        )
    )
    log.add(AgentStarted(agent="clerk", replica=0, incarnation=1))
    log.at = START_MS
    ask = AclMessage(
        id="0a1b2c3d4e5f60718293a4b5c6",
        performative=Performative.REQUEST,
        sender="client:cli",
        receivers=("clerk",),
        content=json.dumps({"what": "time", "in": "Asia/Tokyo"}),
        conversation_id=CONVERSATION,
        reply_with="r1",
    )
    log.add(MessageSent(message=ask, deliveries=("clerk#0",)))
    who = {"agent": "clerk", "conversation_id": CONVERSATION}
    log.at += 1
    log.add(
        ToolCalled(
            call_id="tool-1",
            server="time",
            tool="get_current_time",
            arguments=ASK_ARGS,
            message_id=ask.id,
            **who,
        )
    )
    log.add(
        ToolReturned(
            call_id="tool-1",
            server="time",
            tool="get_current_time",
            result=RESULT,
            duration_us=3_200,
            **who,
        )
    )
    log.add(
        ToolCalled(
            call_id="tool-2",
            server="time",
            tool="convert_time",
            arguments=CONVERT_ARGS,
            message_id=ask.id,
            **who,
        )
    )
    log.add(
        ToolFailed(
            call_id="tool-2",
            server="time",
            tool="convert_time",
            kind="timeout",
            reason=TIMEOUT,
            duration_us=5_000_000,
            **who,
        )
    )
    log.add(BreakerOpened(server="time", failures=1, reset_ms=30_000, reason=TIMEOUT, **who))
    log.add(
        MessageHandled(
            message_id=ask.id,
            conversation_id=CONVERSATION,
            agent="clerk",
            replica=0,
            duration_us=5_004_100,
            journal=(
                HostCall(kind="log", value="info asking the time"),
                HostCall(kind="now", value=str(START_MS)),
                HostCall(kind="random", value="12297829382473034410"),
                HostCall(
                    kind="call-tool",
                    value=journal_value("time", "get_current_time", ASK_ARGS, ok=RESULT),
                ),
                HostCall(
                    kind="call-tool",
                    value=journal_value("time", "convert_time", CONVERT_ARGS, error=TIMEOUT),
                ),
                HostCall(kind="log", value="warn convert_time timed out: answering in UTC"),
                HostCall(kind="log-dropped", value="3"),
            ),
        )
    )
    answer = AclMessage(
        id=sent_message_id(ask.id, "clerk", 0),
        performative=Performative.INFORM,
        sender="clerk",
        receivers=("client:cli",),
        content=json.dumps({"datetime": NOW["datetime"]}),
        conversation_id=CONVERSATION,
        in_reply_to="r1",
    )
    log.add(MessageSent(message=answer, deliveries=("client:cli",), cause=ask.id))
    return log.recorded
