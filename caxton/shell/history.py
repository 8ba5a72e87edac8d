"""What the log says about conversations the live world has let go.

A server's world holds the conversations going on and those that ended a little while
ago (`caxton.domain.conversations`); the log holds them all. A request for an older
conversation, or a listing reaching further back than the world, is answered here by
folding the conversations' own streams, whole.
"""

from __future__ import annotations

from caxton.domain.conversations import ConversationState, every_conversation
from caxton.domain.events import AgentTrapped, Recorded
from caxton.domain.ids import agent_stream, conversation_stream
from caxton.replay.recording import participants
from caxton.shell.store import EventLog

CONVERSATION_STREAMS = conversation_stream("")


async def conversation(log: EventLog, conversation_id: str) -> ConversationState | None:
    """One conversation as the log has it, or None if the log has none of its messages."""
    found = await conversations(log, [conversation_stream(conversation_id)])
    return found[0] if found else None


async def conversations_since(
    log: EventLog, since_ms: int, limit: int
) -> tuple[list[ConversationState], bool]:
    """The conversations active at or after `since_ms` (up to `limit`, the most recently
    active), and whether there were more."""
    start = await log.position_at(since_ms)
    streams = await log.active_streams(CONVERSATION_STREAMS, from_position=start, limit=limit + 1)
    return await conversations(log, streams[:limit]), len(streams) > limit


async def conversations(log: EventLog, streams: list[str]) -> list[ConversationState]:
    """Conversations folded from their streams, with the traps that failed them (those
    are in the trapped agents' streams)."""
    own = await log.read_streams(streams)
    if not own:
        return []
    names = participants(own)
    ids = {r.stream for r in own}
    traps = [
        r
        for r in await log.read_streams([agent_stream(n) for n in names])
        if isinstance(r.event, AgentTrapped) and conversation_stream(r.event.conversation_id) in ids
    ]
    folded = every_conversation(sorted([*own, *traps], key=_position))
    return list(folded.values())


def _position(recorded: Recorded) -> int:
    return recorded.position
