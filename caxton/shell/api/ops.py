"""The live-operations service: `caxton config set|get`, `caxton top`, `caxton debug agent`."""

from __future__ import annotations

from caxton.domain.agents import AgentState, health
from caxton.domain.conversations import ConversationState
from caxton.domain.events import AgentReconfigured
from caxton.domain.roster import Placement
from caxton.domain.settings import effective_settings
from caxton.shell.api.cluster import placement_of
from caxton.shell.api.errors import translated
from caxton.shell.api.generated.caxton import v1
from caxton.shell.runtime.errors import AgentNotFound
from caxton.shell.runtime.node import Node
from caxton.shell.telemetry.live import LiveStats, conversation_state

TOP_CONVERSATIONS = 200
DEFAULT_RECENT = 10


class OpsService(v1.OpsServiceBase):
    def __init__(self, node: Node, stats: LiveStats) -> None:
        self.node = node
        self.stats = stats

    async def set_config(self, message: v1.SetConfigRequest) -> v1.AgentConfig:
        async with translated():
            change = AgentReconfigured(
                agent=message.agent,
                memory_bytes=message.memory_bytes,
                timeout_ms=message.timeout_ms,
                mailbox=message.mailbox,
                max_restarts=message.max_restarts,
                restart_window_ms=message.restart_window_ms,
                breaker_timeout_ms=message.breaker_timeout_ms,
                breaker_threshold=message.breaker_threshold,
                tools=tuple(message.tools) if message.set_tools else None,
            )
            agent = await self.node.reconfigure(change)
            return self._config(agent)

    async def get_config(self, message: v1.GetConfigRequest) -> v1.AgentConfig:
        async with translated():
            return self._config(self._agent(message.agent))

    async def top(self, message: v1.TopRequest) -> v1.TopReply:
        now = self.node.clock.now_ms()
        world = self.node.world
        where = placement_of(self.node)
        agents = [
            self._row(a, now, where) for a in sorted(world.agents.values(), key=lambda a: a.name)
        ]
        rows = [
            row
            for c in world.conversations.values()
            if (row := self._conversation(c, now)).state in ("open", "stalled", "violated")
        ]
        rows.sort(key=lambda r: (r.state != "stalled", r.state != "violated", -r.last_at_ms))
        return v1.TopReply(
            at_ms=now,
            position=world.position,
            agents=agents,
            conversations=rows[:TOP_CONVERSATIONS],
        )

    async def debug_agent(self, message: v1.DebugAgentRequest) -> v1.AgentDebug:
        async with translated():
            agent = self._agent(message.agent)
            recent = message.recent or DEFAULT_RECENT
            now = self.node.clock.now_ms()
            conversations = self.node.world.conversations
            return v1.AgentDebug(
                agent=self._row(agent, now, placement_of(self.node)),
                traps=[
                    v1.TrapRow(
                        at_ms=t.at_ms,
                        replica=t.replica,
                        kind=t.kind,
                        reason=t.reason,
                        message_id=t.message_id,
                        conversation_id=t.conversation_id,
                    )
                    for t in self.stats.traps(agent.name)[-recent:]
                ],
                restarts=[
                    v1.RestartRow(
                        at_ms=r.at_ms, replica=r.replica, attempt=r.attempt, delay_ms=r.delay_ms
                    )
                    for r in self.stats.restarts(agent.name)[-recent:]
                ],
                conversations=[
                    self._conversation(c, now)
                    for cid in self.stats.conversations(agent.name)[:recent]
                    if (c := conversations.get(cid)) is not None
                ],
                settings=_settings(agent),
            )

    # --- views ------------------------------------------------------------

    def _agent(self, name: str) -> AgentState:
        agent = self.node.world.agents.get(name)
        if agent is None:
            raise AgentNotFound(name)
        return agent

    def _config(self, agent: AgentState) -> v1.AgentConfig:
        return v1.AgentConfig(
            agent=agent.name, settings=_settings(agent), position=self.node.world.position
        )

    def _row(self, agent: AgentState, now: int, where: Placement) -> v1.AgentRow:
        rates = self.stats.rates(agent.name, now)
        actors = [a for a in self.node.actors.values() if a.agent == agent.name]
        h = health(agent)
        return v1.AgentRow(
            name=agent.name,
            running=h.running,
            replicas=h.total,
            state=_state(agent),
            messages_per_second=rates.messages_per_second,
            p99_handling_ms=rates.p99_handling_ms,
            mailbox_depth=sum(a.mailbox.qsize() for a in actors),
            mailbox_size=sum(a.mailbox.maxsize for a in actors) or agent.limits.mailbox,
            memory_limit_bytes=agent.limits.memory_bytes,
            cpu_ms_per_second=rates.cpu_ms_per_second,
            restarts=sum(len(i.restarts) for i in agent.instances),
            traps=sum(i.traps for i in agent.instances),
            handled=sum(i.handled for i in agent.instances),
            tool_calls_per_second=rates.tool_calls_per_second,
            tool_p99_ms=rates.tool_p99_ms,
            node=where.node_of(agent.name),
            p99_queue_wait_ms=rates.p99_queue_wait_ms,
        )

    def _conversation(self, conversation: ConversationState, now: int) -> v1.ConversationRow:
        state, detail = conversation_state(conversation, self.stats, now)
        deadline = self.stats.deadlines.get(conversation.id)
        return v1.ConversationRow(
            id=conversation.id,
            protocol=conversation.protocol,
            state=state,
            messages=conversation.message_count,
            participants=sorted(conversation.participants),
            reply_by_ms=deadline.reply_by if deadline is not None else 0,
            last_at_ms=conversation.last_at,
            detail=detail,
        )


def _settings(agent: AgentState) -> list[v1.Setting]:
    return [
        v1.Setting(name=s.name, value=s.value, source=s.source) for s in effective_settings(agent)
    ]


def _state(agent: AgentState) -> str:
    if agent.status != "running":
        return agent.status
    lifecycles = {i.lifecycle for i in agent.instances}
    if lifecycles == {"running"}:
        return "running"
    if lifecycles == {"failed"}:
        return "failed"
    if lifecycles <= {"deployed", "starting", "restarting", "running"} and "running" not in (
        lifecycles
    ):
        return "starting"
    return "degraded"
