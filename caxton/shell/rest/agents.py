"""The REST operations on agents: deploy by upload, list, status, stop, remove, config,
debug, top, and their components."""

from __future__ import annotations

from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.responses import Response

from caxton.shell.api.generated.caxton import v1
from caxton.shell.api.limits import MAX_COMPONENT_BYTES, MAX_REQUEST_BYTES
from caxton.shell.rest import reading
from caxton.shell.rest.calls import API, JSON, WASM, Call, from_path, json_answer
from caxton.shell.rest.problems import Problem


async def deploy(call: Call) -> Response:
    request = await deploy_request(call)
    info = await call.services.agents.deploy(request)
    return json_answer(info, 201, {"Location": f"{API}/agents/{info.name}"})


async def deploy_request(call: Call) -> v1.DeployRequest:
    """From a DeployRequest in JSON (the component in base64); a multipart form with a
    `component` file and a `metadata` part (the DeployRequest's other fields, JSON); or
    the component as the body and the other fields as query parameters."""
    limit = MAX_COMPONENT_BYTES + MAX_REQUEST_BYTES
    kind = reading.media_type(call.request.headers)
    if kind == JSON:
        _settings_in("the JSON body", call)
        return await call.body_message(v1.DeployRequest, limit * 4 // 3 + MAX_REQUEST_BYTES)
    data = await reading.body(call.request, limit + MAX_REQUEST_BYTES)
    if kind != "multipart/form-data":
        return _with_component(call.query_message(v1.DeployRequest), data)
    _settings_in("the metadata part", call)
    try:
        form = await MultiPartParser(
            call.request.headers, reading.once(data), max_files=1, max_fields=1
        ).parse()
    except MultiPartException as exc:
        raise Problem.invalid("body", exc.message) from None
    component = form.get("component")
    if not isinstance(component, UploadFile):
        raise Problem.invalid("component", "a multipart deploy needs a 'component' file part")
    text = form.get("metadata", "{}")
    if not isinstance(text, str):
        raise Problem.invalid("metadata", "must be a JSON object, not a file")
    metadata = reading.json_of(text.encode(), "metadata")
    if not isinstance(metadata, dict) or "component" in metadata:
        raise Problem.invalid(
            "metadata", "must be a JSON object of DeployRequest's fields other than component"
        )
    request = call.reader.message(v1.DeployRequest, metadata, "metadata")
    return _with_component(request, await component.read())


def _settings_in(where: str, call: Call) -> None:
    """Refuses settings as query parameters when the body holds them: one place for each."""
    for name in call.request.query_params:
        raise Problem.invalid(name, f"give the deploy's settings in {where}, not the query")


def _with_component(request: v1.DeployRequest, component: bytes) -> v1.DeployRequest:
    request.component = component
    return request


async def list_agents(call: Call) -> Response:
    return json_answer(await call.services.agents.list_agents(v1.ListAgentsRequest()))


async def get_agent(call: Call) -> Response:
    request = v1.GetAgentRequest(name=call.path("name"))
    return json_answer(await call.services.agents.get_agent(request))


async def stop_agent(call: Call) -> Response:
    request = v1.StopAgentRequest(name=call.path("name"))
    return json_answer(await call.services.agents.stop_agent(request))


async def remove_agent(call: Call) -> Response:
    await call.services.agents.remove_agent(v1.RemoveAgentRequest(name=call.path("name")))
    return Response(status_code=204)


async def agent_memory(call: Call) -> Response:
    request = call.query_message(v1.GetAgentMemoryRequest, name=call.path("name"))
    return json_answer(await call.services.agents.get_agent_memory(request))


async def component(call: Call) -> Response:
    request = v1.GetComponentRequest(digest=call.path("digest"))
    found = await call.services.agents.get_component(request)
    # content-addressed: its digest is as good an entity tag as there is
    return Response(found.component, media_type=WASM, headers={"ETag": f'"{found.digest}"'})


async def get_config(call: Call) -> Response:
    request = v1.GetConfigRequest(agent=call.path("name"))
    return json_answer(await call.services.ops.get_config(request))


async def set_config(call: Call) -> Response:
    data = await call.json()
    if isinstance(data, dict) and "tools" in data and "setTools" not in data:
        data["setTools"] = True  # tools given are the new grant, as `config set --tools`
    if isinstance(data, dict):
        from_path(data, agent=call.path("name"))
    request = call.reader.message(v1.SetConfigRequest, data)
    return json_answer(await call.services.ops.set_config(request))


async def debug_agent(call: Call) -> Response:
    request = call.query_message(v1.DebugAgentRequest, agent=call.path("name"))
    return json_answer(await call.services.ops.debug_agent(request))


async def top(call: Call) -> Response:
    return json_answer(await call.services.ops.top(v1.TopRequest()))
