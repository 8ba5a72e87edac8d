"""`caxton monitor --dashboard`: `caxton top` in a browser, served by textual-serve.

textual-serve runs one `caxton top` process for each browser tab that opens the page and
relays its screen and keys over a websocket, so the browser shows exactly the terminal view:
agents, conversations that need a look, an agent's detail, a conversation's trace. Each of
those processes reaches the Caxton server with this command's --server, --token, --ca,
--cert and --key, handed down in its environment and never on its command line, where `ps`
would show the token to every user of the machine.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import shlex
import socket
import sys
from pathlib import Path

from aiohttp import web
from textual_serve.server import Server

from caxton.domain.addresses import is_loopback
from caxton.shell.cli.common import Failure, err, out
from caxton.shell.client import CaxtonError, Connection, InvalidArgument
from caxton.shell.config import ConfigError, parse_host_port

TEMPLATES = Path(__file__).parent / "web"
"""Our page: textual-serve's own fetches a web font from the internet."""
_WILDCARDS = {"0.0.0.0", "::", ""}


def session_command() -> str:
    """The shell command textual-serve runs for each browser session: this Python's
    `caxton top`, with no credentials in it."""
    return shlex.join([sys.executable, "-m", "caxton", "top"])


def session_environment(server: Connection) -> dict[str, str]:
    """What each session's `caxton top` reads its --server and credentials from. Every
    variable is set, empty when not given, so none is inherited from elsewhere; the files
    are absolute paths, as the session need not run where they were named."""

    def absolute(path: str) -> str:
        return str(Path(path).resolve()) if path else ""

    return {
        "CAXTON_SERVER": server.address,
        "CAXTON_TOKEN": server.token,
        "CAXTON_CA": absolute(server.ca),
        "CAXTON_CERT": absolute(server.cert),
        "CAXTON_KEY": absolute(server.key),
    }


def public_url(host: str, port: int) -> str:
    """The address a browser opens: a wildcard host is this machine's name."""
    name = socket.gethostname() if host in _WILDCARDS else host
    return f"http://[{name}]:{port}" if ":" in name else f"http://{name}:{port}"


def exposure_warning(host: str, listen: str) -> str:
    """A paragraph for stderr when the dashboard can be reached from other machines."""
    if is_loopback(host):
        return ""
    return (
        f"⚠ WARNING: the dashboard on {listen} can be reached from other machines and has "
        "no login of its own: anyone who can connect sees every agent and conversation "
        "(and their traces), read with this command's credentials, in clear text. Listen "
        "on 127.0.0.1 and reach it through an SSH tunnel or an authenticating proxy."
    )


MAX_SESSIONS = 8
"""Browser tabs served at once: each runs a `caxton top` process."""


class DashboardServer(Server):
    """textual-serve's server, quiet: one line with the address, warnings and errors only."""

    def __init__(self, *, host: str, port: int, url: str, where: str) -> None:
        super().__init__(
            session_command(),
            host=host,
            port=port,
            title=f"Caxton dashboard · {where}",
            public_url=url,
            templates_path=TEMPLATES,
        )
        self.where = where
        self._sessions: set[asyncio.Task[object]] = set()

    async def handle_websocket(self, request: web.Request) -> web.WebSocketResponse:
        """One browser session, known so that Ctrl-C can end it (see on_shutdown). Only
        the dashboard's own page may open one (a page of another site could otherwise
        read everything, with this command's credentials), and at most MAX_SESSIONS at
        once (each is a `caxton top` process)."""
        origin = request.headers.get("Origin", "")
        if origin and origin != f"{request.scheme}://{request.host}":
            raise web.HTTPForbidden(text=f"a page of {origin} cannot open the dashboard\n")
        if len(self._sessions) >= MAX_SESSIONS:
            raise web.HTTPServiceUnavailable(
                text=f"the dashboard serves {MAX_SESSIONS} browser tabs at once; close one\n"
            )
        session = asyncio.current_task()
        assert session is not None
        self._sessions.add(session)
        try:
            return await super().handle_websocket(request)
        finally:
            self._sessions.discard(session)

    async def on_shutdown(self, app: web.Application) -> None:
        """Ends every session: textual-serve then tells its `caxton top` to quit and waits
        for it. Without this, aiohttp waits for the browsers to hang up."""
        for session in self._sessions:
            session.cancel()
        await asyncio.gather(*self._sessions, return_exceptions=True)

    def initialize_logging(self) -> None:
        logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")

    async def on_startup(self, app: web.Application) -> None:
        out.print(
            f"Dashboard of {self.where} on {self.public_url} — open it in a browser; Ctrl-C stops",
            markup=False,
        )


def serve_dashboard(server: Connection, listen: str) -> None:
    """Serves `caxton top` to browsers on `listen` until Ctrl-C (or SIGTERM). Raises
    Failure for an address that cannot be listened on or a server that cannot be named."""
    try:
        host, port = parse_host_port(listen)
    except ConfigError as exc:
        raise Failure(f"--listen: {exc}", code=2) from None
    where = asyncio.run(_check_server(server))
    _check_free(host, port, listen)
    if warning := exposure_warning(host, listen):
        err.print(warning, markup=False)
    os.environ.update(session_environment(server))  # inherited by every session's process
    dashboard = DashboardServer(host=host, port=port, url=public_url(host, port), where=where)
    try:
        dashboard.serve()
    except OSError as exc:  # taken between the check and the listening: said the same way
        raise Failure(_cannot_listen(listen, exc)) from None
    out.print("Dashboard stopped.", markup=False)


async def _check_server(server: Connection) -> str:
    """The server's address as the client writes it; a warning (not a failure) when it
    cannot be reached now, as the dashboard shows that and reconnects every second."""
    try:
        client = server.client(timeout=5)
    except InvalidArgument as exc:
        raise Failure(str(exc), code=2) from None
    async with client:
        try:
            await client.top()
        except CaxtonError as exc:
            err.print(f"⚠ {exc}; the dashboard starts anyway and shows it until then", markup=False)
    return client.address


def _check_free(host: str, port: int, listen: str) -> None:
    """Binds `host:port` once as aiohttp will (SO_REUSEADDR), so that a port in use or an
    address not of this machine is a one-line Failure before anything is printed."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as exc:
        raise Failure(f"--listen {listen}: cannot resolve {host!r} ({exc.strerror})") from None
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            raise Failure(_cannot_listen(listen, exc)) from None


def _cannot_listen(listen: str, exc: OSError) -> str:
    if exc.errno == errno.EADDRINUSE:
        return (
            f"--listen {listen}: the port is in use by another program; "
            "stop it or pick another port with --listen HOST:PORT"
        )
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"--listen {listen}: not an address of this machine"
    if exc.errno == errno.EACCES:
        return f"--listen {listen}: permission denied (ports under 1024 need privileges)"
    return f"--listen {listen}: cannot listen ({exc.strerror or exc})"
