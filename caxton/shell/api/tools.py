"""The gRPC ToolService (proto/caxton/v1/tools.proto): `caxton tools list` and `tools call`."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING

from grpclib import GRPCError
from grpclib.const import Status

from caxton.domain.tools import (
    call_fault,
    call_policy,
    parse_arguments,
    tool_call_id,
    unknown_server,
)
from caxton.shell.api.generated.caxton import v1
from caxton.shell.runtime.clock import fresh_id
from caxton.shell.runtime.node import Node
from caxton.shell.tools.calls import ToolCall, failure_text, recorded_call
from caxton.shell.tools.settings import ToolServerConfig

if TYPE_CHECKING:  # the bridge pulls in the MCP SDK, which only a server with tools loads
    from caxton.shell.tools.bridge import ServerView, ToolBridge

NO_TOOLS = "no tool servers are configured (add [tools.NAME] tables to the server's caxton.toml)"


class ToolService(v1.ToolServiceBase):
    def __init__(self, node: Node, bridge: ToolBridge | None) -> None:
        self.node = node
        self.bridge = bridge

    async def list_tools(self, message: v1.ListToolsRequest) -> v1.ListToolsReply:
        if self.bridge is None:
            return v1.ListToolsReply()
        views = await self.bridge.describe(refresh=message.refresh)
        configs = self.bridge.servers
        return v1.ListToolsReply(servers=[_server_info(v, configs[v.name]) for v in views])

    async def call_tool(self, message: v1.CallToolRequest) -> v1.CallToolReply:
        bridge = self.bridge
        if bridge is None:
            raise GRPCError(Status.NOT_FOUND, NO_TOOLS)
        config = bridge.servers.get(message.server)
        if config is None:
            raise GRPCError(Status.NOT_FOUND, unknown_server(message.server, bridge.servers))
        if fault := call_fault(message.server, message.tool):
            raise GRPCError(Status.INVALID_ARGUMENT, f"tool: {fault}")
        arguments = parse_arguments(message.arguments_json)
        if isinstance(arguments, str):
            raise GRPCError(Status.INVALID_ARGUMENT, f"arguments: {arguments}")
        policy = call_policy(
            timeout_ms=config.timeout_ms,
            breaker_threshold=config.breaker_threshold,
            breaker_reset_ms=config.breaker_reset_ms,
        )
        call = ToolCall(
            server=message.server, tool=message.tool, arguments=arguments, policy=policy
        )
        called_us = time.time_ns() // 1000
        answer = await bridge.call(call)
        await self.node.commit(
            recorded_call(
                call_id=tool_call_id(f"shell/{fresh_id()}", 0),
                server=message.server,
                tool=message.tool,
                args_json=message.arguments_json or "{}",
                answer=answer,
                called_us=called_us,
                answered_us=time.time_ns() // 1000,
            )
        )
        return v1.CallToolReply(
            result_json=answer.result or "",
            error_kind=answer.kind,
            error=failure_text(answer) if answer.result is None else "",
            duration_us=answer.duration_us,
            truncated=answer.truncated,
        )


def _server_info(view: ServerView, config: ToolServerConfig) -> v1.ToolServerInfo:
    return v1.ToolServerInfo(
        name=view.name,
        transport=view.transport,
        where=view.where,
        state=view.state,
        detail=view.detail,
        breakers=[
            v1.BreakerInfo(
                agent=agent,
                state=breaker.state,
                failures=breaker.failures,
                last_reason=breaker.last_reason,
            )
            for agent, breaker in view.breakers
        ],
        tools=[
            v1.ToolInfo(
                name=tool.name,
                description=tool.description or "",
                input_schema_json=json.dumps(tool.input_schema, sort_keys=True),
            )
            for tool in view.tools
        ],
        timeout_ms=config.timeout_ms,
        max_concurrency=config.max_concurrency,
        breaker_threshold=config.breaker_threshold,
        breaker_reset_ms=config.breaker_reset_ms,
        max_result_bytes=config.max_result_bytes,
    )
