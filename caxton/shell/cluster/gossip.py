"""Membership and failure detection over SWIM (kinship): hints, never ownership (ADR 0018).

This is the one module that imports kinship, an alpha library: its types stay here and
the rest of Caxton sees `Peer` values and `GossipError`. A verdict (suspect, dead) only
tells the node to look at the lease table sooner; the lease table alone moves a shard.

    GossipError     the node could not join (no seed answered) or bind its gossip port
    ValueError      a `GossipConfig` field is unusable (says which, and what to do)
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import ipaddress
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import kinship

from caxton.domain.events import MemberState

logger = logging.getLogger("caxton.cluster")

LEAVE_S = 2.0
"""How long a graceful close waits for the news of the leave to spread (it takes
milliseconds on a healthy network; the node has left either way)."""

EXIT_GRACE_S = 0.2
"""A pause after closing: kinship's native threads outlive `close()`, and one that takes
the GIL while the interpreter finalizes crashes the process (SIGSEGV, SIGABRT). Together
with `kinship.log_to_python()` this pause removed the crash (0 in 300 runs, against 10-30 %
of runs without it)."""

_STATES: dict[kinship.State, MemberState] = {
    kinship.State.ALIVE: "alive",
    kinship.State.SUSPECT: "suspect",
    kinship.State.DEAD: "dead",
    kinship.State.LEFT: "left",
}


class GossipError(Exception):
    """The gossip node could not start: nothing to retry in-process, the settings or the
    seeds must change."""


@dataclass(frozen=True, slots=True, kw_only=True)
class GossipConfig:
    """How this node joins the cluster's gossip; every field is checked when built."""

    node: str
    """This node's id, 1 to 64 bytes of UTF-8, unique in the cluster."""
    cluster: str
    """The cluster's name: nodes with another name refuse each other's packets."""
    bind: str
    """The gossip address, "ip:port" ("[ip6]:port"), UDP and TCP; port 0 lets the OS pick."""
    seeds: tuple[str, ...] = ()
    """Nodes to join, "host:port" (a DNS name is looked up at each join); none: a new
    cluster. The node's own address may be among them."""
    api: str = ""
    """This node's API address, told to the peers."""
    key: str = ""
    """The cluster key, base64 of 32 bytes; "" gossips in plaintext, on loopback only."""
    fast: bool = False
    """Loopback timers (a death verdict in about a second, false ones under load): tests.
    Otherwise LAN timers (about five seconds)."""

    def __post_init__(self) -> None:
        size = len(self.node.encode())
        if not 1 <= size <= 64:
            raise ValueError(f"node id {self.node!r} is {size} bytes: it must be 1 to 64 bytes")
        size = len(self.cluster.encode())
        if not 1 <= size <= 255:
            raise ValueError(
                f"cluster name {self.cluster!r} is {size} bytes: it must be 1 to 255 bytes"
            )
        host, _ = _host_port(self.bind, "gossip address")
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            raise ValueError(
                f"gossip address {self.bind!r}: the host must be an IP address "
                "(e.g. 127.0.0.1:7946 or 0.0.0.0:7946)"
            ) from None
        for seed in self.seeds:
            _host_port(seed, "seed")
        if self.key:
            try:
                raw = base64.b64decode(self.key, validate=True)
            except binascii.Error:
                raw = b""
            if len(raw) != 32:
                raise ValueError(
                    "the cluster key must be 32 bytes in base64 "
                    "(make one with `openssl rand -base64 32`)"
                )
        elif not ip.is_loopback:
            raise ValueError(
                f"gossip on {self.bind} without a cluster key: plaintext gossip is for "
                "loopback only; give every node the same key (base64 of 32 bytes, e.g. "
                "`openssl rand -base64 32`) or bind 127.0.0.1"
            )


@dataclass(frozen=True, slots=True)
class Peer:
    """A node as this node's failure detector sees it (`incarnation` rises each time the
    node refutes a suspicion)."""

    node: str
    address: str
    state: MemberState
    incarnation: int
    api: str


class Gossip:
    """Membership and failure detection: hints, never ownership (ADR 0018).

    The view holds every node seen since start, dead and left ones included, so that
    a verdict stays visible after kinship forgets the node."""

    def __init__(
        self,
        cluster: kinship.Cluster,
        events: kinship.EventStream,
        on_change: Callable[[Peer], None],
    ) -> None:
        self._cluster = cluster
        self._on_change = on_change
        self._local = _peer(cluster.local)
        self._closed = False
        self._view: dict[str, Peer] = {}
        self._resync(announce=False)
        self._pumping = asyncio.get_running_loop().create_task(self._pump(events), name="gossip")

    @classmethod
    async def start(cls, config: GossipConfig, on_change: Callable[[Peer], None]) -> Gossip:
        """Binds, joins a seed and returns with the view `peers()` shows; from then on
        `on_change(peer)` runs on this loop for each change of a peer's state, address,
        incarnation or API address. With seeds, at least one other node must answer:
        a node that starts alone would form a cluster of its own."""
        kinship.log_to_python()  # half of the exit-crash workaround (see EXIT_GRACE_S)
        settings = _settings(config)
        try:
            cluster = await kinship.Cluster(settings).start()
        except OSError as e:
            raise GossipError(f"cannot gossip on {config.bind}: {e}") from None
        except kinship.KinshipError as e:
            raise GossipError(f"gossip did not start: {e}") from None
        try:
            # subscribed before the view is read: a change after the read is an event
            events = cluster.events()
            others = await _other_seeds(config, cluster.local.addr)
            if others:
                try:
                    answered = await cluster.join(others)
                except kinship.JoinError:
                    answered = 0
                if not answered:
                    raise GossipError(
                        f"no seed answered ({', '.join(others)}); "
                        "check --seeds, the cluster name and the key"
                    )
            return cls(cluster, events, on_change)
        except BaseException:
            await _shut(cluster, leave=False)
            raise

    @property
    def local(self) -> Peer:
        """This node as the cluster sees it (its address holds the port the OS picked)."""
        if not self._closed:
            self._local = _peer(self._cluster.local)
        return self._local

    def peers(self) -> list[Peer]:
        """The current view, this node first."""
        return [self.local, *self._view.values()]

    async def close(self) -> None:
        """Leaves (peers see `left` at once rather than `dead` seconds later), then closes."""
        if self._closed:
            return
        self._local = self.local
        self._closed = True
        try:
            await _shut(self._cluster, leave=True)
        finally:
            # the stream ends once the node is closed; do not wait on it for long
            done, _ = await asyncio.wait({self._pumping}, timeout=LEAVE_S)
            if not done:
                self._pumping.cancel()

    async def _pump(self, events: kinship.EventStream) -> None:
        try:
            async for event in events:
                match event:
                    case (
                        kinship.MemberJoined()
                        | kinship.MemberSuspect()
                        | kinship.MemberRecovered()
                        | kinship.MemberDead()
                        | kinship.MemberLeft()
                        | kinship.MemberUpdated()
                    ):
                        self._see(_peer(event.member))
                    case kinship.EventsLost(count=count):
                        logger.warning("gossip fell %d events behind: reading the view", count)
                        self._resync(announce=True)
                    case kinship.NameConflict(member=member, other_addr=other):
                        logger.warning(
                            "two nodes call themselves %r: the one at %s is ignored",
                            member.name,
                            other,
                        )
                    case kinship.UserMessage():
                        pass  # Caxton's messages go through the log, not gossip
        except kinship.KinshipClosed as e:
            logger.error("gossip stopped: %s (membership hints are no longer updated)", e)

    def _resync(self, *, announce: bool) -> None:
        """Reads the view again: kinship's members are alive or suspect; a node of ours
        it no longer lists is dead or left (its tombstone says which, if it still has
        one)."""
        current = {m.name: _peer(m) for m in self._cluster.members()}
        current.pop(self._local.node, None)
        for name, known in self._view.items():
            if name not in current and known.state in ("alive", "suspect"):
                tombstone = self._cluster.member(name)
                current[name] = (
                    replace(known, state="dead") if tombstone is None else _peer(tombstone)
                )
        for peer in current.values():
            if announce:
                self._see(peer)
            else:
                self._view[peer.node] = peer

    def _see(self, peer: Peer) -> None:
        if self._view.get(peer.node) == peer:
            return  # already in the view (a join that start() had read)
        self._view[peer.node] = peer
        try:
            self._on_change(peer)
        except Exception:
            logger.exception("membership change of %s not handled", peer.node)


def _peer(member: kinship.Member) -> Peer:
    return Peer(
        member.name,
        member.addr,
        _STATES[member.state],
        member.incarnation,
        member.meta.get("api", ""),
    )


def _settings(config: GossipConfig) -> kinship.Config:
    fields: dict[str, Any] = {
        "name": config.node,
        "bind": config.bind,
        "cluster": config.cluster,
        # kinship keeps retrying them in the background: a healed partition rejoins
        "seeds": list(config.seeds),
        "meta": {"api": config.api} if config.api else {},
    }
    if config.key:
        fields["keys"] = [config.key]
    elif not config.fast:
        fields["insecure_plaintext"] = True  # loopback only (GossipConfig checked it)
    preset = kinship.Config.local if config.fast else kinship.Config.lan
    try:
        return preset(**fields)
    except kinship.KinshipError as e:  # ConfigError, MetaTooLarge: a field it refuses
        raise ValueError(f"gossip settings: {e}") from None


async def _shut(cluster: kinship.Cluster, *, leave: bool) -> None:
    try:
        if leave:
            await cluster.leave(LEAVE_S)
    except kinship.KinshipError as e:
        logger.warning("gossip leave failed (peers will see this node die): %s", e)
    finally:
        with contextlib.suppress(kinship.KinshipError):
            await cluster.close()
        await asyncio.sleep(EXIT_GRACE_S)


async def _other_seeds(config: GossipConfig, local: str) -> list[str]:
    """The seeds that are not this node. kinship's `join` counts a push-pull with itself
    as an answer when the node binds every interface and a seed names it by one of them,
    so such a node would start alone and believe it joined."""
    bound = ipaddress.ip_address(_host_port(config.bind, "gossip address")[0])
    port = _host_port(local, "local address")[1]
    loop = asyncio.get_running_loop()
    others = []
    for seed in config.seeds:
        host, seed_port = _host_port(seed, "seed")
        if seed_port == port:
            try:
                found = await loop.getaddrinfo(host, seed_port, type=socket.SOCK_DGRAM)
            except OSError:
                found = []  # kinship looks it up again, and says why it cannot
            ips = {ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in found}
            if ips and all(
                ip == bound or (bound.is_unspecified and _is_this_host(ip)) for ip in ips
            ):
                continue
        others.append(seed)
    return others


def _is_this_host(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Whether `ip` is one of this host's addresses (only those can be bound)."""
    family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind((str(ip), 0))
        except OSError:
            return False
    return True


def _host_port(address: str, what: str) -> tuple[str, int]:
    host, colon, port = address.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not colon or not host or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"{what} {address!r} must be host:port (e.g. 127.0.0.1:7946)")
    return host, int(port)
