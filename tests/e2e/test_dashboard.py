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
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import zlib
from collections.abc import Callable, Iterator
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
BROWSER_DEADLINE_S = 120
ESCAPES = re.compile(rb"\x1b\[[0-9;?<>=]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-_]")
"""CSI and OSC sequences and two-byte escapes: what is left is the text drawn."""


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's Chromium, installed with apt-get when absent and this runs as root."""
    found = shutil.which("chromium")
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        pytest.skip("no chromium, and apt-get install chromium needs root and apt-get")
    installed = subprocess.run(
        ["apt-get", "install", "-y", "-q", "chromium"],
        capture_output=True,
        text=True,
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        timeout=900,
        check=False,
    )
    found = shutil.which("chromium")
    if not found:
        pytest.skip(
            f"chromium is absent and apt-get install chromium failed ({installed.returncode}): "
            + (installed.stderr or installed.stdout)[-500:]
        )
    return found


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


async def browse(
    chromium: str,
    url: str,
    text: str,
    screenshot: Path,
    profile: Path,
    while_open: Callable[[], None],
) -> str:
    """Opens `url` in headless Chromium and waits until the terminal it shows has received
    `text`; then saves a screenshot of the page and calls `while_open`. Returns the text
    received."""
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
                page = next(t for t in await listed.json() if t["type"] == "page")
            async with http.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0) as devtools:
                shown = await asyncio.wait_for(
                    _watch(devtools, url, text, screenshot), BROWSER_DEADLINE_S
                )
                while_open()
                return shown
    finally:
        browser.kill()
        await browser.wait()


async def _watch(devtools: Any, url: str, text: str, screenshot: Path) -> str:
    calls = iter(range(1, 1_000_000))

    async def call(method: str, **params: Any) -> dict[str, Any]:
        ident = next(calls)
        await devtools.send_json({"id": ident, "method": method, "params": params})
        async for message in devtools:
            reply = message.json()
            if reply.get("id") == ident:
                assert "error" not in reply, reply
                return dict(reply["result"])
            received(reply)
        raise AssertionError("the DevTools connection closed")

    drawn = bytearray()

    def received(event: dict[str, Any]) -> None:
        if event.get("method") == "Network.webSocketFrameReceived":
            frame = event["params"]["response"]
            if frame["opcode"] == 2:  # binary: the app's screen updates
                drawn.extend(base64.b64decode(frame["payloadData"]))

    def shown() -> str:
        return ESCAPES.sub(b"", bytes(drawn)).decode("utf-8", "replace")

    await call("Network.enable")
    await call("Page.enable")
    await call("Page.navigate", url=url)
    async for message in devtools:
        received(message.json())
        if text in shown():
            break
    # two animation frames: xterm.js has drawn what it received
    await call(
        "Runtime.evaluate",
        expression="new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))",
        awaitPromise=True,
    )
    picture = await call("Page.captureScreenshot", format="png")
    screenshot.write_bytes(base64.b64decode(picture["data"]))
    return shown()


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
    component = write_component(tmp_path, "reply")
    caxton("agent", "deploy", str(component), "--name", AGENT, *connection)
    dashboard = start_dashboard(f"127.0.0.1:{free_port()}", *connection)
    try:
        url = the_url(dashboard)
        screenshot = tmp_path / "dashboard.png"
        sessions: list[int] = []

        def the_session_has_the_token_but_not_on_its_command_line() -> None:
            sessions.extend(
                p for p in descendants(dashboard.pid) if b"caxton" in _read(p, "cmdline")
            )
            assert sessions, "no caxton top process for the browser's session"
            for pid in sessions:
                assert TOKEN.encode() not in _read(pid, "cmdline")
                assert f"CAXTON_TOKEN={TOKEN}".encode() in _read(pid, "environ").split(b"\0")

        shown = await browse(
            chromium,
            url,
            AGENT,
            screenshot,
            tmp_path / "profile",
            the_session_has_the_token_but_not_on_its_command_line,
        )
        assert AGENT in shown and "AGENT" in shown and "Conversations" in shown
        assert colours(screenshot.read_bytes()) > 8  # drawn text, not a blank page
    finally:
        dashboard.send_signal(signal.SIGINT)  # Ctrl-C
        rest, _ = dashboard.communicate(timeout=60)
    assert dashboard.returncode == 0, rest
    assert "Dashboard stopped." in rest
    assert all(not Path(f"/proc/{pid}").exists() for pid in sessions)


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
