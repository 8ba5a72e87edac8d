"""Hosts in network namespaces for partition tests: links to peers, to the test and to
PostgreSQL, each of which a test can cut and heal (as root; skipped elsewhere).

A network with suffix S (a random subnet 10.A.B.0/24; every name starts `cxpS`):

    bridge cxpSb0 ── cxpSp<i> ═ eth0 10.A.B.(1+i)/25       host i and its peers (gossip)
    bridge cxpSb1                                           where `cut_peers` moves hosts
    test      10.A.B.(129+4i) ── cxpSc<i> ═ ctl0 .(130+4i)/30  the test's path (API, /ready)
    forwarder 10.A.B.(193+4i) ── cxpSg<i> ═ pg0  .(194+4i)/30  host i's PostgreSQL

Three links per host so that each cut touches one path only: a host cut from its peers
still reaches PostgreSQL and is still reached by the test, which keeps measuring it. A
silent cut from PostgreSQL takes that host's PostgreSQL link down, so the kernel drops
its packets both ways (no reset, no ACK: its TCP times out as across a real partition; a
forwarder alone would keep ACKing what the host sends), and the forwarder drops what it
relayed for the host (PostgreSQL frees those connections). A refusing cut leaves the link
up and resets: a PostgreSQL that went away. The host sees nothing of the test's side.

Several tests run at once (pytest-xdist): each network holds a lock file named by its
suffix, and a new network deletes what a dead process left (its lock is free).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import ipaddress
import os
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal
from urllib.parse import urlsplit, urlunsplit

import pytest

PREFIX = "cxp"
LOCKS = Path("/tmp/caxton-netns")
MAX_HOSTS = 16  # /30 links carved from a /26 each
IP_TIMEOUT_S = 30

__all__ = ["Host", "Network", "network", "require_netns"]


@dataclass(frozen=True, slots=True)
class Host:
    """One network namespace and its addresses."""

    index: int
    netns: str
    peer_address: str
    """On the peers' bridge: gossip binds here."""
    control_address: str
    """The host's end of the test's own link: bind the API and /ready here."""
    postgres_url: str
    """PostgreSQL through the forwarder, over this host's own link."""


@dataclass
class _Route:
    """The forwarder's listener for one host and the connections it relays."""

    address: str
    port: int = 0
    server: asyncio.Server | None = None
    cut: bool = False
    connections: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = field(default_factory=set)


class Forwarder:
    """Relays PostgreSQL's port to each host from an address on that host's link, on an
    event loop of its own thread (tests may run their own loops, or none)."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self._upstream = upstream
        self._routes: dict[int, _Route] = {}
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="postgres-forwarder", daemon=True
        )
        self._thread.start()

    def open(self, host: int, address: str) -> int:
        """Listens for `host` on `address`; returns the port."""
        route = self._routes[host] = _Route(address)
        self._call(self._listen(route))
        return route.port

    def cut(self, host: int, *, refuse: bool) -> None:
        """Drops the host's connections: with a reset and no more listening if `refuse`,
        else silently (its link is down: what this side sends is lost anyway)."""
        self._call(self._cut(self._routes[host], refuse=refuse))

    def heal(self, host: int) -> None:
        self._call(self._heal(self._routes[host]))

    def relayed(self, host: int) -> int:
        """How many of the host's connections are being relayed now."""
        return len(self._routes[host].connections)

    def close(self) -> None:
        if not self._thread.is_alive():
            return
        with contextlib.suppress(Exception):
            self._call(self._close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        if not self._thread.is_alive():
            self._loop.close()

    def _call(self, work: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(work, self._loop).result(timeout=30)

    async def _listen(self, route: _Route) -> None:
        async def accepted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await self._relay(route, reader, writer)

        route.server = await asyncio.start_server(
            accepted, route.address, route.port, reuse_address=True
        )
        route.port = route.server.sockets[0].getsockname()[1]

    async def _relay(
        self, route: _Route, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        if route.cut:
            _reset(writer)
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._upstream)
        except OSError:
            _reset(writer)
            return
        pair = (writer, up_writer)
        route.connections.add(pair)
        pumps = [
            asyncio.ensure_future(_pump(reader, up_writer)),
            asyncio.ensure_future(_pump(up_reader, writer)),
        ]
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for pump in pumps:
                pump.cancel()
            route.connections.discard(pair)
            for end in pair:
                end.close()

    async def _cut(self, route: _Route, *, refuse: bool) -> None:
        route.cut = True
        if refuse and route.server is not None:
            route.server.close()
            route.server = None
        for pair in list(route.connections):
            for end in pair:
                _reset(end)
        route.connections.clear()

    async def _heal(self, route: _Route) -> None:
        route.cut = False
        if route.server is None:
            await self._listen(route)

    async def _close(self) -> None:
        for route in self._routes.values():
            await self._cut(route, refuse=True)


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()


def _reset(writer: asyncio.StreamWriter) -> None:
    """Closes with a reset (no FIN, no lingering), as a peer that went away."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class Network:
    """Hosts in namespaces, built by `network()`; cut and heal their links."""

    def __init__(self, suffix: str, subnet: ipaddress.IPv4Network, postgres_url: str) -> None:
        self.suffix = suffix
        self.subnet = subnet
        self.hosts: list[Host] = []
        self._postgres_url = postgres_url
        upstream = urlsplit(postgres_url)
        self._forwarder = Forwarder((upstream.hostname or "127.0.0.1", upstream.port or 5432))
        self._cut_peers: set[int] = set()

    def name(self, kind: str, index: int | None = None) -> str:
        """A link, bridge or namespace name of this network (at most 15 characters)."""
        return f"{PREFIX}{self.suffix}{kind}{'' if index is None else format(index, 'x')}"

    def _address(self, offset: int) -> str:
        return str(self.subnet.network_address + offset)

    def build(self, hosts: int) -> None:
        for bridge in (self.name("b0"), self.name("b1")):
            _ip("link", "add", bridge, "type", "bridge")
            _ip("link", "set", bridge, "up")
        for i in range(hosts):
            self.hosts.append(self._add_host(i))

    def _add_host(self, i: int) -> Host:
        netns = self.name("n", i)
        _ip("netns", "add", netns)
        _ip("-n", netns, "link", "set", "lo", "up")
        peer, control, postgres = self.name("p", i), self.name("c", i), self.name("g", i)
        for outside, inside in ((peer, "eth0"), (control, "ctl0"), (postgres, "pg0")):
            _ip("link", "add", outside, "type", "veth", "peer", "name", inside, "netns", netns)
        _ip("link", "set", peer, "master", self.name("b0"))
        peer_address = self._address(1 + i)
        _ip("-n", netns, "addr", "add", f"{peer_address}/25", "dev", "eth0")
        addresses = {}
        for outside, inside, base in ((control, "ctl0", 128), (postgres, "pg0", 192)):
            ours, theirs = self._address(base + 4 * i + 1), self._address(base + 4 * i + 2)
            _ip("addr", "add", f"{ours}/30", "dev", outside)
            _ip("-n", netns, "addr", "add", f"{theirs}/30", "dev", inside)
            addresses[inside] = (ours, theirs)
        for outside, inside in ((peer, "eth0"), (control, "ctl0"), (postgres, "pg0")):
            _ip("link", "set", outside, "up")
            _ip("-n", netns, "link", "set", inside, "up")
        relay = addresses["pg0"][0]
        port = self._forwarder.open(i, relay)
        url = urlsplit(self._postgres_url)
        user = f"{url.username}@" if url.username else ""
        if url.password:
            user = f"{url.username}:{url.password}@"
        postgres_url = urlunsplit(url._replace(netloc=f"{user}{relay}:{port}"))
        return Host(i, netns, peer_address, addresses["ctl0"][1], postgres_url)

    # --- processes ------------------------------------------------------------

    def popen(self, host: Host, argv: Sequence[str], output: IO[str]) -> subprocess.Popen[str]:
        """Starts `argv` inside the host's namespace, its stdout and stderr to `output`."""
        return subprocess.Popen(
            ["ip", "netns", "exec", host.netns, *argv],
            stdout=output,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1", "NO_COLOR": "1"},
        )

    # --- partitions -------------------------------------------------------------

    def cut_peers(self, *hosts: Host) -> None:
        """Moves the hosts to the second bridge: together, apart from the others (they
        still reach PostgreSQL and the test)."""
        for host in hosts:
            _ip("link", "set", self.name("p", host.index), "master", self.name("b1"))
            self._cut_peers.add(host.index)

    def heal_peers(self) -> None:
        for index in sorted(self._cut_peers):
            _ip("link", "set", self.name("p", index), "master", self.name("b0"))
        self._cut_peers.clear()

    def cut_postgres(self, host: Host, how: Literal["silent", "refuse"] = "silent") -> None:
        """Cuts the host from PostgreSQL: silently (its link down, its packets lost), or
        refusing (connections reset, new ones refused)."""
        if how == "silent":
            _ip("link", "set", self.name("g", host.index), "down")
        self._forwarder.cut(host.index, refuse=how == "refuse")

    def heal_postgres(self, host: Host) -> None:
        self._forwarder.heal(host.index)
        _ip("link", "set", self.name("g", host.index), "up")

    def relayed(self, host: Host) -> int:
        """The host's connections to PostgreSQL the forwarder relays now."""
        return self._forwarder.relayed(host.index)

    # --- teardown ---------------------------------------------------------------

    def destroy(self) -> None:
        """Ends every process in the namespaces, then deletes them, the links and the
        bridges (each step runs whatever failed before)."""
        self._forwarder.close()
        _delete(self.suffix)


def _ip(*args: str, check: bool = True) -> str:
    done = subprocess.run(
        ["ip", *args], capture_output=True, text=True, timeout=IP_TIMEOUT_S, check=False
    )
    if check and done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


def _names() -> tuple[list[str], list[str]]:
    """This module's namespaces and links on the machine (from any run)."""
    spaces = [line.split()[0] for line in _ip("netns", "list").splitlines() if line.strip()]
    links = [
        m.group(1)
        for m in re.finditer(r"^\d+:\s+([^:@\s]+)", _ip("-o", "link", "show"), re.MULTILINE)
    ]
    ours = re.compile(rf"^{PREFIX}[0-9a-f]{{4}}[a-z]")
    return [n for n in spaces if ours.match(n)], [n for n in links if ours.match(n)]


def _delete(suffix: str) -> None:
    """Deletes everything named with `suffix`: processes in its namespaces first."""
    mine = f"{PREFIX}{suffix}"
    spaces = [n for n in _names()[0] if n.startswith(mine)]
    for netns in spaces:
        _kill_inside(netns)
    for netns in spaces:
        _ip("netns", "del", netns, check=False)  # takes the veths inside with it
    for link in (n for n in _names()[1] if n.startswith(mine)):
        _ip("link", "del", link, check=False)


def _kill_inside(netns: str) -> None:
    deadline = time.monotonic() + 30
    while pids := [int(p) for p in _ip("netns", "pids", netns, check=False).split()]:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if time.monotonic() > deadline:
            raise RuntimeError(f"processes {pids} in {netns} did not end")
        time.sleep(0.05)


def _lock(suffix: str) -> IO[bytes] | None:
    """The suffix's lock, held open, or None when a live process holds it."""
    LOCKS.mkdir(parents=True, exist_ok=True)
    held = (LOCKS / f"{suffix}.lock").open("ab")
    try:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        held.close()
        return None
    return held


def _sweep() -> None:
    """Deletes what killed runs left: names whose suffix no live process holds."""
    spaces, links = _names()
    for suffix in sorted({n[len(PREFIX) : len(PREFIX) + 4] for n in (*spaces, *links)}):
        held = _lock(suffix)
        if held is not None:
            try:
                _delete(suffix)
            finally:
                held.close()


def _taken() -> list[ipaddress.IPv4Network]:
    """The IPv4 networks this machine already routes."""
    nets = []
    for line in _ip("-4", "route", "show", "table", "all").splitlines():
        word = line.split()[0] if line.split() else ""
        if word in ("broadcast", "local", "unicast", "blackhole", "unreachable", "prohibit"):
            word = line.split()[1]
        with contextlib.suppress(ValueError):
            if word != "default":
                nets.append(ipaddress.ip_network(word, strict=False))
    return [n for n in nets if isinstance(n, ipaddress.IPv4Network)]


def require_netns() -> None:
    """Skips the test, saying why, when network namespaces cannot be made here (fails
    instead under CAXTON_REQUIRE_NETNS=1)."""
    why = ""
    if shutil.which("ip") is None:
        why = "the `ip` command (iproute2) is not installed"
    elif os.geteuid() != 0:
        why = "network namespaces need root (`ip netns add`); CI runs the cluster tests as root"
    else:
        probe = f"{PREFIX}probe{os.getpid()}"
        made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
        if made.returncode != 0:
            why = f"`ip netns add` fails here: {made.stderr.strip()}"
        else:
            subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    if why:
        if os.environ.get("CAXTON_REQUIRE_NETNS") == "1":
            pytest.fail(why + " (and CAXTON_REQUIRE_NETNS=1)")
        pytest.skip(why)


@contextlib.contextmanager
def network(hosts: int, postgres_url: str) -> Iterator[Network]:
    """`hosts` hosts in namespaces of their own, deleted on the way out (an interrupted
    test too; a killed one's are deleted by the next network made)."""
    require_netns()
    assert 1 <= hosts <= MAX_HOSTS
    _sweep()
    taken = _taken()
    for _ in range(100):
        n = random.randrange(1 << 14)
        suffix = f"{n:04x}"
        subnet = ipaddress.IPv4Network(f"10.{64 + (n >> 8)}.{n & 255}.0/24")
        if any(subnet.overlaps(t) for t in taken):
            continue
        held = _lock(suffix)
        if held is not None:
            break
    else:
        raise RuntimeError("no free subnet in 10.64.0.0/10 after 100 tries")
    assert held is not None
    made = Network(suffix, subnet, postgres_url)
    try:
        _delete(suffix)  # a dead run's, if the sweep lost a race for it
        made.build(hosts)
        yield made
    finally:
        try:
            made.destroy()
        finally:
            held.close()
