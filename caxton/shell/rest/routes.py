"""The REST gateway's operations under /api/v1, each an adapter from HTTP to one call of
the gRPC services (the same objects the gRPC server serves): the table that Starlette's
routes and the OpenAPI document are both made from."""

from __future__ import annotations

import orjson
from starlette.responses import Response

from caxton.shell.api.generated.caxton import v1
from caxton.shell.rest.agents import (
    agent_memory,
    component,
    debug_agent,
    deploy,
    get_agent,
    get_config,
    list_agents,
    remove_agent,
    set_config,
    stop_agent,
    top,
)
from caxton.shell.rest.calls import (
    API,
    JSON,
    NDJSON,
    WASM,
    Answer,
    Body,
    Call,
    Operation,
    json_answer,
    message_answer,
)
from caxton.shell.rest.events import (
    FOLLOW_QUERY,
    FOLLOWED,
    TRACE,
    events,
    follow,
    get_conversation,
    list_conversations,
    log_info,
    trace,
)
from caxton.shell.rest.messages import IDEMPOTENCY_KEY, INVOKE_QUERY, invoke, send
from caxton.shell.rest.problems import Problem
from caxton.shell.rest.reading import message_params
from caxton.shell.rest.schemas import Schema, ref


async def list_tools(call: Call) -> Response:
    request = call.query_message(v1.ListToolsRequest)
    return json_answer(await call.services.tools.list_tools(request))


async def call_tool(call: Call) -> Response:
    """One tool call; the body is the tool's arguments (a JSON object)."""
    arguments = await call.json(call.services.messages.node.max_content_bytes)
    if not isinstance(arguments, dict):
        raise Problem.invalid("body", "the tool's arguments must be a JSON object")
    request = v1.CallToolRequest(
        server=call.path("server"),
        tool=call.path("tool"),
        arguments_json=orjson.dumps(arguments).decode(),
    )
    return json_answer(await call.services.tools.call_tool(request))


async def members(call: Call) -> Response:
    return json_answer(await call.services.cluster.list_members(v1.ListMembersRequest()))


HEALTH: Schema = {
    "type": "object",
    "properties": {
        "status": {"type": "string", "enum": ["SERVING", "NOT_SERVING"]},
        "reason": {"type": "string"},
    },
    "required": ["status"],
    "additionalProperties": False,
}


async def health(call: Call) -> Response:
    """SERVING while the server serves and its log takes appends, as the gRPC health
    check answers; 503 and why not otherwise."""
    refusal = call.services.refusal()
    body: dict[str, str] = {"status": "NOT_SERVING" if refusal else "SERVING"}
    if refusal:
        body["reason"] = refusal
    return Response(orjson.dumps(body), 503 if refusal else 200, media_type=JSON)


ANY_JSON: Schema = {"description": "Any JSON value."}
NAME = "{name}"

OPERATIONS: tuple[Operation, ...] = (
    Operation(
        method="POST",
        path=f"{API}/agents",
        handler=deploy,
        rpc="AgentService.Deploy",
        summary="Deploy an agent: upload its component and start its instances",
        query=tuple(message_params(v1.DeployRequest, omit=("component",))),
        body=Body(
            {
                WASM: {"type": "string", "contentMediaType": WASM},
                "application/octet-stream": {"type": "string", "contentMediaType": WASM},
                "multipart/form-data": {
                    "type": "object",
                    "properties": {
                        "component": {"type": "string", "contentMediaType": WASM},
                        "metadata": ref(v1.DeployRequest),
                    },
                    "required": ["component"],
                },
                JSON: ref(v1.DeployRequest),
            },
            "The component as the body (its settings as query parameters), or a form with a "
            "`component` file and a `metadata` part, or a DeployRequest in JSON.",
        ),
        answers=(message_answer(v1.AgentInfo, 201, "The agent, its instances started"),),
    ),
    Operation(
        method="GET",
        path=f"{API}/agents",
        handler=list_agents,
        rpc="AgentService.ListAgents",
        summary="List the agents",
        answers=(message_answer(v1.ListAgentsReply),),
    ),
    Operation(
        method="GET",
        path=f"{API}/agents/{NAME}",
        handler=get_agent,
        rpc="AgentService.GetAgent",
        summary="An agent's status and instances",
        answers=(message_answer(v1.AgentInfo),),
    ),
    Operation(
        method="DELETE",
        path=f"{API}/agents/{NAME}",
        handler=remove_agent,
        rpc="AgentService.RemoveAgent",
        summary="Stop an agent and forget it (its history stays in the log)",
        answers=(Answer(204, "Removed"),),
    ),
    Operation(
        method="POST",
        path=f"{API}/agents/{NAME}/stop",
        handler=stop_agent,
        rpc="AgentService.StopAgent",
        summary="Stop an agent's instances",
        answers=(message_answer(v1.AgentInfo),),
    ),
    Operation(
        method="GET",
        path=f"{API}/agents/{NAME}/memory",
        handler=agent_memory,
        rpc="AgentService.GetAgentMemory",
        summary="An instance's memory, now or as of a position of the log",
        query=tuple(message_params(v1.GetAgentMemoryRequest, omit=("name",))),
        answers=(message_answer(v1.AgentMemory),),
    ),
    Operation(
        method="GET",
        path=f"{API}/agents/{NAME}/config",
        handler=get_config,
        rpc="OpsService.GetConfig",
        summary="An agent's settings and where each came from",
        answers=(message_answer(v1.AgentConfig),),
    ),
    Operation(
        method="PATCH",
        path=f"{API}/agents/{NAME}/config",
        handler=set_config,
        rpc="OpsService.SetConfig",
        summary="Change a running agent's settings (`tools` given: the new grant)",
        body=Body({JSON: ref(v1.SetConfigRequest)}),
        answers=(message_answer(v1.AgentConfig),),
    ),
    Operation(
        method="GET",
        path=f"{API}/agents/{NAME}/debug",
        handler=debug_agent,
        rpc="OpsService.DebugAgent",
        summary="An agent's live figures, recent traps, restarts and conversations",
        query=tuple(message_params(v1.DebugAgentRequest, omit=("agent",))),
        answers=(message_answer(v1.AgentDebug),),
    ),
    Operation(
        method="POST",
        path=f"{API}/agents/{NAME}/invoke",
        handler=invoke,
        summary="Send a request to an agent and wait for its reply (the body is the content)",
        query=INVOKE_QUERY,
        body=Body({JSON: ANY_JSON}, "The request's content."),
        answers=(message_answer(v1.SendReply, 200, "Accepted, and the agent's reply"),),
        headers=(IDEMPOTENCY_KEY,),
    ),
    Operation(
        method="GET",
        path=f"{API}/components/{{digest}}",
        handler=component,
        rpc="AgentService.GetComponent",
        summary="A component the server holds, by digest (sha256:HEX or HEX)",
        answers=(Answer(200, "The component", {WASM: {"type": "string"}}),),
    ),
    Operation(
        method="GET",
        path=f"{API}/top",
        handler=top,
        rpc="OpsService.Top",
        summary="Live figures of every agent, and the open, stalled and violated conversations",
        answers=(message_answer(v1.TopReply),),
    ),
    Operation(
        method="POST",
        path=f"{API}/messages",
        handler=send,
        rpc="MessageService.Send",
        summary="Send one ACL message (with waitMs, also wait for the reply)",
        body=Body({JSON: ref(v1.SendRequest)}),
        answers=(message_answer(v1.SendReply),),
        headers=(IDEMPOTENCY_KEY,),
    ),
    Operation(
        method="GET",
        path=f"{API}/conversations",
        handler=list_conversations,
        rpc="ConversationService.ListConversations",
        summary="Conversations active since a time",
        query=tuple(message_params(v1.ListConversationsRequest)),
        answers=(message_answer(v1.ListConversationsReply),),
    ),
    Operation(
        method="GET",
        path=f"{API}/conversations/{{id}}",
        handler=get_conversation,
        rpc="ConversationService.GetConversation",
        summary="One conversation, folded from the log",
        answers=(message_answer(v1.ConversationInfo),),
    ),
    Operation(
        method="GET",
        path=f"{API}/conversations/{{id}}/trace",
        handler=trace,
        summary="A conversation's steps, as `caxton trace --json`",
        answers=(Answer(200, "The steps in log order", {JSON: TRACE}),),
    ),
    Operation(
        method="GET",
        path=f"{API}/events",
        handler=events,
        rpc="EventService.StreamEvents",
        summary="Recorded events, one EventRecord per line (JSON lines)",
        query=tuple(message_params(v1.StreamEventsRequest, omit=("follow",))),
        answers=(Answer(200, "One EventRecord per line", {NDJSON: ref(v1.EventRecord)}),),
    ),
    Operation(
        method="GET",
        path=f"{API}/events/follow",
        handler=follow,
        rpc="EventService.StreamEvents",
        summary="Recorded events, then each new one as it commits (Server-Sent Events)",
        query=FOLLOW_QUERY,
        answers=(
            Answer(
                200,
                "`event: event`, `id:` its position, `data:` an EventRecord",
                {"text/event-stream": FOLLOWED},
            ),
        ),
        headers=(("Last-Event-ID", "Go on after this position (fromPosition ignored)."),),
    ),
    Operation(
        method="GET",
        path=f"{API}/log",
        handler=log_info,
        rpc="EventService.GetLogInfo",
        summary="The log's last position, where it is kept, and the node that answers",
        answers=(message_answer(v1.LogInfo),),
    ),
    Operation(
        method="GET",
        path=f"{API}/tools",
        handler=list_tools,
        rpc="ToolService.ListTools",
        summary="The MCP tool servers, their state, bounds and tools",
        query=tuple(message_params(v1.ListToolsRequest)),
        answers=(message_answer(v1.ListToolsReply),),
    ),
    Operation(
        method="POST",
        path=f"{API}/tools/{{server}}/{{tool}}",
        handler=call_tool,
        rpc="ToolService.CallTool",
        summary="Call one tool (the body is its arguments), as `caxton tools call`",
        body=Body({JSON: {"type": "object"}}, "The tool's arguments."),
        answers=(message_answer(v1.CallToolReply),),
    ),
    Operation(
        method="GET",
        path=f"{API}/cluster/members",
        handler=members,
        rpc="ClusterService.ListMembers",
        summary="The cluster's nodes as the log says",
        answers=(message_answer(v1.ListMembersReply),),
    ),
    Operation(
        method="GET",
        path=f"{API}/health",
        handler=health,
        summary="Whether the server serves (no token needed)",
        answers=(
            Answer(200, "Serving", {JSON: HEALTH}),
            Answer(503, "Not serving, and why", {JSON: HEALTH}),
        ),
        open=True,
    ),
)

NOT_EXPOSED = {
    "MessageService.SendStream": "a client stream of batches; over HTTP, POST each message "
    "(with keep-alive, as fast), or use gRPC",
}
"""RPCs the gateway deliberately leaves to gRPC, and why."""
