"""`caxton monitor --dashboard`: the live view in a real headless Chromium, against a real
server subprocess that requires mutual TLS and a token, both given to the dashboard.

There is no OCR here, so the check that the browser shows an agent's name reads what the
browser itself received and wrote into its terminal: the websocket frames Chromium reports
over the DevTools protocol, the same bytes xterm.js draws. The screenshot is taken from that
page once the name is there, and checked to be a picture rather than a blank page.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import zlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from caxton.shell.client import Connection
from tests.certificates import Pki, make_pki
from tests.e2e.conftest import ServerProcess, caxton, write_component
from tests.support import free_port
from tui.dashboard import session_command, session_environment

TOKEN = "dashboard-s3cret-token"
AGENT = "ledger-keeper"
QUIET = "quiet-one"
"""Handles a request and never answers: its conversation stays open."""
BROWSER_DEADLINE_S = 120
ESCAPES = re.compile(rb"\x1b\[[0-9;?<>=]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-_]")
"""CSI and OSC sequences and two-byte escapes: what is left is the text drawn."""


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's Chromium, installed with apt-get when absent and this runs as root; the
    test skips when it cannot be had (fails instead under CAXTON_REQUIRE_CHROMIUM=1, as
    in CI)."""
    found = shutil.which("chromium")
    if found:
        return found
    why = "chromium is not installed, and installing it needs root and apt-get"
    if os.geteuid() == 0 and shutil.which("apt-get"):
        apt = ["apt-get", "-q", "-o", "DPkg::Lock::Timeout=300"]
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for step in (["update"], ["install", "-y", "chromium"]):
            done = subprocess.run(
                [*apt, *step], capture_output=True, text=True, env=env, timeout=900, check=False
            )
            if done.returncode != 0:
                output = (done.stderr or done.stdout).strip()[-400:]
                why = f"apt-get {step[0]} chromium failed ({done.returncode}): {output}"
                break
        found = shutil.which("chromium")
        if found:
            return found
    if os.environ.get("CAXTON_REQUIRE_CHROMIUM") == "1":
        pytest.fail(why + " (and CAXTON_REQUIRE_CHROMIUM=1)")
    pytest.skip(why)


@pytest.fixture
def guarded_server(tmp_path: Path) -> Iterator[tuple[ServerProcess, Pki]]:
    """A server that takes only TLS clients with a certificate and the token."""
    pki = make_pki(tmp_path / "pki")
    running = ServerProcess(tmp_path / "data", f"127.0.0.1:{free_port()}").start(
        "--token",
        TOKEN,
        "--tls-cert",
        str(pki.server_cert),
        "--tls-key",
        str(pki.server_key),
        "--tls-client-ca",
        str(pki.ca),
    )
    try:
        yield running, pki
    finally:
        if running.process is not None and running.process.poll() is None:
            running.kill()


def start_dashboard(listen: str, *connection: str) -> subprocess.Popen[str]:
    """`caxton monitor --dashboard` with the server and credentials as flags, and none in
    its environment: what its sessions get, they get from it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAXTON_")}
    return subprocess.Popen(
        [sys.executable, "-m", "caxton", "monitor", "--dashboard", "--listen", listen, *connection],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**env, "PYTHONUNBUFFERED": "1", "NO_COLOR": "1"},
    )


def the_url(dashboard: subprocess.Popen[str]) -> str:
    assert dashboard.stdout is not None
    seen = []
    for line in dashboard.stdout:  # it says where to point a browser once it listens
        seen.append(line)
        if found := re.search(r"http://\S+", line):
            return found.group(0)
    raise AssertionError("the dashboard exited before it listened:\n" + "".join(seen))


def descendants(pid: int) -> list[int]:
    """Every process under `pid`, from /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rpartition(")")[2].split()[1])
    found, frontier = [], [pid]
    while frontier:
        children = [child for child, parent in parents.items() if parent in frontier]
        found += children
        frontier = children
    return found


@contextlib.asynccontextmanager
async def headless(chromium: str, profile: Path) -> AsyncIterator[Page]:
    """A headless Chromium with one blank page, driven over the DevTools protocol."""
    browser = await asyncio.create_subprocess_exec(
        chromium,
        "--headless",
        "--no-sandbox",  # as root, Chromium refuses to start with its sandbox
        "--enable-unsafe-swiftshader",  # software WebGL for xterm.js, on a machine with no GPU
        "--remote-debugging-port=0",
        f"--user-data-dir={profile}",
        "--window-size=1280,800",
        "about:blank",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert browser.stderr is not None
        while not (line := (await browser.stderr.readline()).decode()).startswith("DevTools"):
            assert line, "chromium exited before it listened for DevTools"
        port = int(re.search(r"ws://[^:]+:(\d+)/", line).group(1))  # type: ignore[union-attr]
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/json/list") as listed:
                target = next(t for t in await listed.json() if t["type"] == "page")
            async with http.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=0) as ws:
                page = Page(ws)
                await page.call("Network.enable")
                await page.call("Page.enable")
                yield page
    finally:
        browser.kill()
        await browser.wait()


class Page:
    """One page of the browser: what its terminal received, keys, screenshots."""

    def __init__(self, devtools: Any) -> None:
        self.devtools = devtools
        self.calls = 0
        self.drawn = bytearray()
        self.websockets: list[str] = []
        """The addresses of the websockets the page opened."""

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.calls += 1
        await self.devtools.send_json({"id": self.calls, "method": method, "params": params})
        async for message in self.devtools:
            reply = message.json()
            if reply.get("id") == self.calls:
                assert "error" not in reply, reply
                return dict(reply["result"])
            self._received(reply)
        raise AssertionError("the DevTools connection closed")

    def _received(self, event: dict[str, Any]) -> None:
        if event.get("method") == "Network.webSocketCreated":
            self.websockets.append(event["params"]["url"])
        if event.get("method") == "Network.webSocketFrameReceived":
            frame = event["params"]["response"]
            if frame["opcode"] == 2:  # binary: the app's screen updates
                self.drawn.extend(base64.b64decode(frame["payloadData"]))

    def shown(self, since: int = 0) -> str:
        """The text the page's terminal received (after `since` bytes), escapes left out."""
        return ESCAPES.sub(b"", bytes(self.drawn[since:])).decode("utf-8", "replace")

    async def wait_for(self, text: str, since: int = 0) -> None:
        async def received() -> None:
            async for message in self.devtools:
                if text in self.shown(since):
                    return
                self._received(message.json())
            raise AssertionError("the DevTools connection closed")

        if text not in self.shown(since):
            try:
                await asyncio.wait_for(received(), BROWSER_DEADLINE_S)
            except TimeoutError:
                raise AssertionError(f"{text!r} not shown; shown:\n{self.shown()}") from None

    async def type(self, key: str) -> int:
        """Types `key` into the terminal (`\r` is Enter); returns how much it had received
        before, for `wait_for(text, since=...)`."""
        before = len(self.drawn)
        await self.call("Runtime.evaluate", expression=FOCUS)
        if key == "\r":
            enter = {"key": "Enter", "code": "Enter", "windowsVirtualKeyCode": 13}
            await self.call("Input.dispatchKeyEvent", type="keyDown", text="\r", **enter)
            await self.call("Input.dispatchKeyEvent", type="keyUp", **enter)
        else:
            await self.call("Input.insertText", text=key)
        return before

    async def screenshot(self, path: Path) -> None:
        # two animation frames: xterm.js has drawn what it received
        await self.call("Runtime.evaluate", expression=TWO_FRAMES, awaitPromise=True)
        picture = await self.call("Page.captureScreenshot", format="png")
        path.write_bytes(base64.b64decode(picture["data"]))


FOCUS = "document.querySelector('.xterm-helper-textarea').focus()"
TWO_FRAMES = "new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))"


def colours(png: bytes) -> int:
    """How many different pixels an 8-bit RGB(A) PNG (as Chromium writes them) has."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    at, data, header = 8, b"", b""
    while at < len(png):
        (size,) = struct.unpack(">I", png[at : at + 4])
        kind, body = png[at + 4 : at + 8], png[at + 8 : at + 8 + size]
        header = body if kind == b"IHDR" else header
        data += body if kind == b"IDAT" else b""
        at += 12 + size
    width, height, depth, colour_type = struct.unpack(">IIBB", header[:10])
    assert depth == 8 and colour_type in (2, 6), (depth, colour_type)
    step = 3 if colour_type == 2 else 4
    stride = width * step
    raw, rows, previous = zlib.decompress(data), [], bytearray(stride)
    for y in range(height):
        kind, line = (
            raw[y * (stride + 1)],
            bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)]),
        )
        for x in range(stride):
            left = line[x - step] if x >= step else 0
            up, corner = previous[x], previous[x - step] if x >= step else 0
            if kind == 1:
                line[x] = (line[x] + left) & 0xFF
            elif kind == 2:
                line[x] = (line[x] + up) & 0xFF
            elif kind == 3:
                line[x] = (line[x] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                near = left if pa <= pb and pa <= pc else up if pb <= pc else corner
                line[x] = (line[x] + near) & 0xFF
        rows.append(bytes(line))
        previous = line
    return len({row[x : x + 3] for row in rows for x in range(0, stride, step)})


@pytest.mark.slow
async def test_the_dashboard_shows_the_agents_in_a_browser(
    chromium: str, guarded_server: tuple[ServerProcess, Pki], tmp_path: Path
) -> None:
    server, pki = guarded_server
    connection = (
        *("--server", f"https://{server.address}", "--token", TOKEN),
        *("--ca", str(pki.ca), "--cert", str(pki.client_cert), "--key", str(pki.client_key)),
    )
    caxton("agent", "deploy", str(write_component(tmp_path, "reply")), "--name", AGENT, *connection)
    caxton(
        "agent", "deploy", str(write_component(tmp_path, "silent")), "--name", QUIET, *connection
    )
    sent = caxton("send", "--to", QUIET, "--content", "{}", *connection).stdout
    conversation = re.search(r"conversation (\w+)", sent).group(1)  # type: ignore[union-attr]
    dashboard = start_dashboard(f"127.0.0.1:{free_port()}", *connection)
    sessions: list[int] = []
    try:
        url = the_url(dashboard)
        assert url.startswith("http://127.0.0.1:")
        # by another name, as through a tunnel or a proxy: the page's addresses follow it
        url = url.replace("127.0.0.1", "localhost")
        async with headless(chromium, tmp_path / "profile") as page:
            await page.call("Page.navigate", url=url)
            await page.wait_for(AGENT)
            await page.screenshot(tmp_path / "agents.png")
            assert "AGENT" in page.shown() and "Conversations" in page.shown()
            assert colours((tmp_path / "agents.png").read_bytes()) > 8  # text, not a blank page
            (websocket,) = page.websockets
            assert websocket.startswith(url.replace("http:", "ws:") + "/ws?")

            # the session reached the server with the token, which is not on its command line
            sessions += [p for p in descendants(dashboard.pid) if b"caxton" in _read(p, "cmdline")]
            assert sessions, "no caxton top process for the browser's session"
            for pid in sessions:
                assert TOKEN.encode() not in _read(pid, "cmdline")
                assert f"CAXTON_TOKEN={TOKEN}".encode() in _read(pid, "environ").split(b"\0")

            # the conversation that is still open, and Enter on it: its trace
            await page.wait_for(conversation, since=await page.type("c"))
            since = await page.type("\r")
            await page.wait_for(f"trace of conversation {conversation}", since)
            await page.wait_for(f'agent="{QUIET}" message="request" status="received"', since)
            await page.screenshot(tmp_path / "trace.png")

            # Ctrl-C with the page open: the dashboard and its session end
            dashboard.send_signal(signal.SIGINT)
            rest, _ = await asyncio.to_thread(dashboard.communicate, timeout=60)
            assert dashboard.returncode == 0, rest
            assert "Dashboard stopped." in rest
            assert all(not Path(f"/proc/{pid}").exists() for pid in sessions)
    finally:
        if dashboard.poll() is None:
            dashboard.kill()
            dashboard.communicate(timeout=60)


def _read(pid: int, what: str) -> bytes:
    try:
        return Path(f"/proc/{pid}/{what}").read_bytes()
    except OSError:
        return b""


def test_a_port_in_use_is_said_in_one_line() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = caxton(
            "monitor", "--dashboard", "--listen", f"127.0.0.1:{port}",
            server=f"127.0.0.1:{free_port()}", check=False,
        )  # fmt: skip
    assert result.returncode == 1
    assert f"--listen 127.0.0.1:{port}: the port is in use by another program" in result.stderr
    assert "Traceback" not in result.stderr and "http://" not in result.stdout


def test_each_session_reaches_the_server_with_no_secret_on_its_command_line(
    tmp_path: Path,
) -> None:
    connection = Connection(address="https://caxton.local", token=TOKEN, ca="ca.pem")
    assert TOKEN not in session_command() and session_command().endswith("-m caxton top")
    environment = session_environment(connection)
    assert environment["CAXTON_TOKEN"] == TOKEN
    assert environment["CAXTON_SERVER"] == "https://caxton.local"
    assert environment["CAXTON_CA"] == str(Path.cwd() / "ca.pem")
    assert environment["CAXTON_CERT"] == environment["CAXTON_KEY"] == ""
