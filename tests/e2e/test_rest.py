"""The REST gateway of a real `caxton server start`, through a real HTTP client (httpx2):
every route, the follow stream, idempotent retries, problem responses and the token."""

from __future__ import annotations

import base64
import json
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from tests.certificates import make_pki
from tests.e2e.conftest import ServerProcess, caxton, free_port
from tests.support import wat

pytestmark = pytest.mark.slow

TOKEN = "s3cret-token"
DEADLINE_S = 60.0  # a guard against a hang, never a measure


@dataclass
class Gateway:
    server: ServerProcess
    url: str
    http: httpx.Client

    def ok(self, response: httpx.Response, status: int = 200) -> Any:
        assert response.status_code == status, response.text
        return response.json() if response.content else None


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[Gateway]:
    rest = f"127.0.0.1:{free_port()}"
    server = ServerProcess(tmp_path / "data", f"127.0.0.1:{free_port()}")
    server.start("--rest", rest, "--token", TOKEN)
    url = f"http://{rest}"
    headers = {"Authorization": f"Bearer {TOKEN}"}
    try:
        with httpx.Client(base_url=url, headers=headers, timeout=DEADLINE_S) as http:
            yield Gateway(server, url, http)
    finally:
        if server.process is not None and server.process.poll() is None:
            assert server.stop() == 0, "".join(server.lines)


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["title"] and body["detail"]
    return body


def deploy_raw(gw: Gateway, name: str, component: str = "reply", **query: Any) -> Any:
    response = gw.http.post(
        "/api/v1/agents",
        params={"name": name, **query},
        content=wat(component),
        headers={"Content-Type": "application/wasm"},
    )
    return gw.ok(response, 201)


def test_the_token_is_asked_for_everything_but_health_and_the_description(
    gateway: Gateway,
) -> None:
    with httpx.Client(base_url=gateway.url, timeout=DEADLINE_S) as anonymous:
        refused = problem(anonymous.get("/api/v1/agents"), 401)
        assert refused["code"] == "UNAUTHENTICATED" and "Bearer" in refused["detail"]
        wrong = anonymous.get("/api/v1/agents", headers={"Authorization": "Bearer nope"})
        assert wrong.headers["www-authenticate"] == "Bearer"
        problem(wrong, 401)
        problem(anonymous.get("/api/v1/no-such-route"), 401)  # no route is told apart
        assert anonymous.get("/api/v1/health").json() == {"status": "SERVING"}
        assert anonymous.get("/openapi.json").json()["openapi"] == "3.1.0"
        assert "/openapi.json" in anonymous.get("/docs").text
    assert gateway.ok(gateway.http.get("/api/v1/agents")) == {"agents": []}


def test_an_agent_is_deployed_by_upload_in_each_form_then_run_stopped_and_removed(
    gateway: Gateway,
) -> None:
    gw = gateway
    raw = deploy_raw(
        gw, "echo", replicas=2, capabilities=["echoing", "x"], **{"limits.mailbox": 64}
    )
    assert (
        raw["name"] == "echo" and raw["replicas"] == 2 and raw["capabilities"] == ["echoing", "x"]
    )
    assert raw["limits"]["mailbox"] == "64"  # int64, as the JSON mapping writes it
    assert raw["statusLine"] == "✓ Running (2/2 instances healthy)"
    form = gw.http.post(
        "/api/v1/agents",
        files={
            "component": ("silent.wasm", wat("silent"), "application/wasm"),
            "metadata": (None, json.dumps({"name": "quiet", "config": "{}"}), "application/json"),
        },
    )
    assert gw.ok(form, 201)["name"] == "quiet"
    assert form.headers["location"] == "/api/v1/agents/quiet"
    as_json = {"name": "third", "component": base64.b64encode(wat("reply")).decode()}
    assert gw.ok(gw.http.post("/api/v1/agents", json=as_json), 201)["name"] == "third"

    listed = gw.ok(gw.http.get("/api/v1/agents"))
    assert [a["name"] for a in listed["agents"]] == ["echo", "quiet", "third"]
    echo = gw.ok(gw.http.get("/api/v1/agents/echo"))
    assert [i["replica"] for i in echo["instances"]] == [0, 1]
    digest = echo["componentDigest"]
    fetched = gw.http.get(f"/api/v1/components/{digest}")
    assert fetched.status_code == 200 and fetched.content == wat("reply")
    assert fetched.headers["etag"] == f'"{digest}"'

    config = gw.ok(gw.http.get("/api/v1/agents/echo/config"))
    assert {s["name"]: s["source"] for s in config["settings"]}["mailbox"] == "deploy"
    changed = gw.ok(gw.http.patch("/api/v1/agents/echo/config", json={"mailbox": "128"}))
    assert {s["name"]: (s["value"], s["source"]) for s in changed["settings"]}["mailbox"] == (
        "128",
        "config set",
    )
    debug = gw.ok(gw.http.get("/api/v1/agents/echo/debug", params={"recent": 3}))
    assert debug["agent"]["name"] == "echo"
    no_memory = problem(gw.http.get("/api/v1/agents/echo/memory", params={"replica": 1}), 400)
    assert no_memory["code"] == "FAILED_PRECONDITION"  # the reply agent keeps none
    assert problem(gw.http.get("/api/v1/agents/nobody/memory"), 404)["code"] == "NOT_FOUND"
    top = gw.ok(gw.http.get("/api/v1/top"))
    assert [a["name"] for a in top["agents"]] == ["echo", "quiet", "third"]

    reply = gw.ok(gw.http.post("/api/v1/agents/echo/invoke", json={"order": 17}))
    assert reply["reply"]["performative"] == "inform" and reply["reply"]["sender"] == "echo"
    silent = gw.http.post("/api/v1/agents/quiet/invoke", params={"waitMs": 300}, json={})
    assert problem(silent, 504)["code"] == "DEADLINE_EXCEEDED"

    stopped = gw.ok(gw.http.post("/api/v1/agents/quiet/stop"))
    assert stopped["status"] == "stopped"
    removed = gw.http.delete("/api/v1/agents/quiet")
    assert removed.status_code == 204 and not removed.content
    gone = problem(gw.http.get("/api/v1/agents/quiet"), 404)
    assert gone["code"] == "NOT_FOUND" and "quiet" in gone["detail"]


def test_conversations_their_trace_and_the_log_are_read_over_http(gateway: Gateway) -> None:
    gw = gateway
    deploy_raw(gw, "echo")
    sent = gw.ok(
        gw.http.post(
            "/api/v1/messages",
            json={
                "message": {
                    "performative": "request",
                    "receivers": ["echo"],
                    "content": '{"n": 1}',
                    "protocol": "fipa-request",
                },
                "waitMs": 10_000,
            },
        )
    )
    conversation = sent["conversationId"]
    assert sent["deliveries"] == ["echo#0"] and sent["reply"]["performative"] == "inform"

    listed = gw.ok(gw.http.get("/api/v1/conversations", params={"limit": 10}))
    assert conversation in [c["id"] for c in listed["conversations"]]
    one = gw.ok(gw.http.get(f"/api/v1/conversations/{conversation}"))
    assert one["protocol"] == "fipa-request" and one["state"] == "done"
    trace = gw.ok(gw.http.get(f"/api/v1/conversations/{conversation}/trace"))
    assert [(s["agent"], s["message"], s["status"]) for s in trace["steps"]][1:3] == [
        ("echo", "request", "received"),
        ("echo", "inform", "sent"),
    ]
    problem(gw.http.get("/api/v1/conversations/nothing-here/trace"), 404)

    lines = gw.http.get("/api/v1/events", params={"conversationId": conversation})
    assert lines.headers["content-type"] == "application/x-ndjson"
    records = [json.loads(line) for line in lines.text.splitlines()]
    assert {r["stream"] for r in records} == {f"conversation:{conversation}"}
    assert [r["type"] for r in records].count("MessageSent") == 2  # the request, the reply
    ranged = gw.http.get("/api/v1/events", params={"fromPosition": 2, "toPosition": 3})
    assert [json.loads(x)["position"] for x in ranged.text.splitlines()] == ["2", "3"]
    info = gw.ok(gw.http.get("/api/v1/log"))
    assert int(info["lastPosition"]) >= int(records[-1]["position"])

    assert gw.ok(gw.http.get("/api/v1/tools")) == {"servers": []}
    no_tools = problem(gw.http.post("/api/v1/tools/db/read_query", json={}), 404)
    assert no_tools["code"] == "NOT_FOUND" and "no tool servers" in no_tools["detail"]
    members = gw.ok(gw.http.get("/api/v1/cluster/members"))
    assert members["clustered"] is False


def test_the_follow_stream_sends_each_event_as_it_commits(gateway: Gateway) -> None:
    gw = gateway
    deploy_raw(gw, "echo")
    seen: list[dict[str, Any]] = []
    opened = threading.Event()
    arrived = threading.Event()
    failure: list[BaseException] = []

    def follow() -> None:
        try:
            with gw.http.sse("/api/v1/events/follow", params={"fromPosition": 1}) as events:
                for event in events:
                    assert event.event == "event"
                    record = event.json()
                    assert isinstance(record, dict) and event.id == record["position"]
                    seen.append(record)
                    if record["type"] == "AgentDeployed":
                        opened.set()  # the history came first
                    if record["type"] == "MessageSent" and "followed" in record["payloadJson"]:
                        arrived.set()
                        return
        except BaseException as exc:
            failure.append(exc)
            opened.set()
            arrived.set()

    reader = threading.Thread(target=follow, daemon=True)
    reader.start()
    assert opened.wait(DEADLINE_S) and not failure, failure
    assert not arrived.is_set()
    gw.ok(
        gw.http.post(
            "/api/v1/messages",
            json={
                "message": {
                    "performative": "inform",
                    "receivers": ["echo"],
                    "content": '"followed"',
                }
            },
        )
    )
    assert arrived.wait(DEADLINE_S) and not failure, failure
    reader.join(DEADLINE_S)
    positions = [int(r["position"]) for r in seen]
    assert positions == sorted(positions) and len(set(positions)) == len(positions)

    # a client that reconnects (to the same URL) with Last-Event-ID goes on after it
    last = positions[-1]
    with gw.http.sse(
        "/api/v1/events/follow",
        params={"fromPosition": 1},
        headers={"Last-Event-ID": str(last - 1)},
    ) as events:
        first = next(iter(events))
    assert first.id == str(last)


def test_a_stopping_server_ends_the_follow_streams_cleanly(gateway: Gateway) -> None:
    gw = gateway
    opened = threading.Event()
    ended: list[str] = []

    def follow() -> None:
        try:
            with gw.http.sse("/api/v1/events/follow") as events:
                for _ in events:
                    opened.set()
            ended.append("ended")
        except Exception as exc:
            ended.append(repr(exc))
        opened.set()

    reader = threading.Thread(target=follow, daemon=True)
    reader.start()
    deploy_raw(gw, "echo")  # an event for the stream to show
    assert opened.wait(DEADLINE_S)
    assert gw.server.stop() == 0, "".join(gw.server.lines)
    reader.join(DEADLINE_S)
    assert ended == ["ended"]
    assert "Traceback" not in "".join(gw.server.lines)


def test_a_send_retried_with_the_same_idempotency_key_is_accepted_once(gateway: Gateway) -> None:
    gw = gateway
    deploy_raw(gw, "echo")
    body = {"message": {"performative": "inform", "receivers": ["echo"], "content": "{}"}}
    key = {"Idempotency-Key": "order-17-attempt"}
    first = gw.ok(gw.http.post("/api/v1/messages", json=body, headers=key))
    again = gw.ok(gw.http.post("/api/v1/messages", json=body, headers=key))
    assert first["messageId"] == again["messageId"] == "order-17-attempt"
    assert first["conversationId"] == again["conversationId"]
    events = gw.http.get("/api/v1/events", params={"conversationId": first["conversationId"]})
    sent = [
        json.loads(r["payloadJson"])
        for r in map(json.loads, events.text.splitlines())
        if r["type"] == "MessageSent"
    ]
    assert [m["message"]["id"] for m in sent].count("order-17-attempt") == 1

    invoked = gw.http.post(
        "/api/v1/agents/echo/invoke", json={}, headers={"Idempotency-Key": "inv-1"}
    )
    assert gw.ok(invoked)["messageId"] == "inv-1"
    # a retry of an invoke cannot wait for the reply again: it says so, never a false 504
    retried = problem(
        gw.http.post("/api/v1/agents/echo/invoke", json={}, headers={"Idempotency-Key": "inv-1"}),
        409,
    )
    assert "accepted before" in retried["detail"] and retried["code"] == "ALREADY_EXISTS"
    resent = gw.ok(gw.http.post("/api/v1/messages", json=body, headers=key))
    assert resent["acceptedBefore"] is True and first["acceptedBefore"] is False
    clash = dict(body, message=dict(body["message"], id="other"))
    refused = problem(gw.http.post("/api/v1/messages", json=clash, headers=key), 400)
    assert refused["field"] == "message.id"


def test_bad_requests_are_problems_that_name_what_was_wrong(gateway: Gateway) -> None:
    gw = gateway
    deploy_raw(gw, "echo")
    post = gw.http.post

    not_json = problem(post("/api/v1/messages", content=b"{nope"), 400)
    assert not_json["field"] == "body" and "not valid JSON" in not_json["detail"]
    wrong_type = problem(post("/api/v1/messages", json={"message": {"receivers": "echo"}}), 400)
    assert wrong_type["field"] == "message.receivers" and wrong_type["code"] == "INVALID_ARGUMENT"
    unknown = problem(post("/api/v1/messages", json={"message": {}, "colour": 1}), 400)
    assert unknown["field"] == "colour" and "known: message, waitMs" in unknown["detail"]
    too_long = problem(post("/api/v1/messages", json={"waitMs": "99999999999999999999"}), 400)
    assert too_long["field"] == "waitMs"
    # refused by the service itself, in the gRPC API's words and status
    bad = problem(
        post(
            "/api/v1/messages", json={"message": {"performative": "shout", "receivers": ["echo"]}}
        ),
        400,
    )
    assert bad["code"] == "INVALID_ARGUMENT" and "performative" in bad["detail"]
    problem(gw.http.get("/api/v1/conversations", params={"limit": "many"}), 400)
    assert problem(gw.http.get("/api/v1/agents", params={"x": 1}), 400)["field"] == "x"

    twice = gw.http.post(
        "/api/v1/agents",
        params={"name": "echo"},
        content=wat("reply"),
        headers={"Content-Type": "application/wasm"},
    )
    assert problem(twice, 409)["code"] == "ALREADY_EXISTS"
    not_wasm = gw.http.post(
        "/api/v1/agents",
        params={"name": "junk"},
        content=b"not a component",
        headers={"Content-Type": "application/wasm"},
    )
    assert problem(not_wasm, 400)["code"] == "INVALID_ARGUMENT"

    both = gw.http.post("/api/v1/agents", params={"name": "x"}, json={"name": "x"})
    assert problem(both, 400)["field"] == "name"  # settings in one place, not two
    no_file = gw.http.post("/api/v1/agents", files={"metadata": (None, "{}")})
    assert problem(no_file, 400)["field"] == "component"
    huge = gw.http.patch("/api/v1/agents/echo/config", content=b" " * (1 << 20))
    assert "over the limit" in problem(huge, 413)["detail"]

    assert problem(gw.http.get("/api/v1/nothing"), 404)["detail"].startswith("no route")
    wrong_method = gw.http.put("/api/v1/agents")
    problem(wrong_method, 405)
    assert set(wrong_method.headers["allow"].split(", ")) >= {"GET", "POST"}


def test_a_rest_address_in_use_fails_the_start_with_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        refused = caxton(
            "server",
            "start",
            *("--data-dir", str(tmp_path / "data"), "--listen", f"127.0.0.1:{free_port()}"),
            *("--metrics", "off", "--health", "off", "--rest", f"127.0.0.1:{port}"),
            check=False,
        )
    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        f"✗ cannot serve the REST gateway on 127.0.0.1:{port} (address already in use); "
        "choose another address with --rest HOST:PORT, or --rest off"
    )


def test_the_gateway_serves_tls_and_asks_for_client_certificates_as_grpc_does(
    tmp_path: Path,
) -> None:
    pki = make_pki(tmp_path / "pki")
    rest = f"127.0.0.1:{free_port()}"
    server = ServerProcess(tmp_path / "data", f"127.0.0.1:{free_port()}").start(
        *("--rest", rest, "--tls-cert", str(pki.server_cert), "--tls-key", str(pki.server_key)),
        *("--tls-client-ca", str(pki.ca)),
    )
    try:
        assert f"rest: https://{rest}/api/v1" in "".join(server.lines)
        trusted = ssl.create_default_context(cafile=str(pki.ca))
        # no client certificate: refused in the handshake (TLS 1.3: just after it)
        with (
            httpx.Client(verify=trusted, timeout=DEADLINE_S) as anonymous,
            pytest.raises(httpx.TransportError),
        ):
            anonymous.get(f"https://{rest}/api/v1/health")
        trusted.load_cert_chain(str(pki.client_cert), str(pki.client_key))
        with httpx.Client(verify=trusted, timeout=DEADLINE_S) as client:
            assert client.get(f"https://{rest}/api/v1/agents").json() == {"agents": []}
        with pytest.raises(httpx.RemoteProtocolError):  # plain HTTP to a TLS port
            httpx.get(f"http://{rest}/api/v1/health", timeout=DEADLINE_S)
    finally:
        assert server.stop() == 0, "".join(server.lines)


def test_a_page_of_another_site_cannot_drive_the_gateway(gateway: Gateway) -> None:
    gw = gateway
    body = '{"message": {"performative": "inform", "receivers": ["echo"], "content": "{}"}}'
    # what a page elsewhere makes a browser send without asking first (a "simple" request)
    forged = {"Origin": "https://evil.example", "Content-Type": "text/plain"}
    refused = problem(gw.http.post("/api/v1/messages", content=body, headers=forged), 403)
    assert "evil.example" in refused["detail"] and refused["code"] == "PERMISSION_DENIED"
    cross = {"Sec-Fetch-Site": "cross-site"}
    problem(gw.http.post("/api/v1/agents/echo/stop", headers=cross), 403)
    rebound = problem(gw.http.get("/api/v1/agents", headers={"Host": "evil.example:8080"}), 403)
    assert "DNS rebinding" in rebound["detail"]
    # the gateway's own origin, and clients that are not browsers, are served
    own = {"Origin": str(gw.http.base_url).rstrip("/")}
    assert gw.http.get("/api/v1/agents", headers=own).status_code == 200
    assert gw.http.get("/api/v1/agents").status_code == 200
