"""Whether a cluster's log kept its promises: fenced ownership, every message handled once
and in order, every shard held again after a fault (`caxton cluster check`, and the
checker every fault test runs).

Each check reads only the log: who held a shard is the membership fold
(`caxton.domain.membership`), what is still to deliver is the delivery fold
(`caxton.domain.delivery`), and the node that committed an event is `Recorded.node`.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from caxton.domain import delivery, membership
from caxton.domain.events import (
    AgentDeployed,
    AgentFailed,
    AgentRemoved,
    AgentRestarting,
    AgentStarted,
    AgentStopped,
    AgentTrapped,
    BreakerClosed,
    BreakerHalfOpened,
    BreakerOpened,
    Event,
    MessageDeadLettered,
    MessageHandled,
    MessageSent,
    NodeStarted,
    NodeStopped,
    Recorded,
    ShardClaimed,
    ShardReleased,
    ToolCalled,
    ToolFailed,
    ToolReturned,
)
from caxton.domain.ids import PLATFORM, instance_key, is_client, split_instance_key
from caxton.domain.placement import SHARDS, shard_of
from caxton.domain.protocols import agent_of

Check = Literal["epochs", "fencing", "accepted", "handled", "order", "owners"]
"""epochs: claims of a shard raise its epoch. fencing: only a shard's holder commits what
its agents do. accepted: a message is accepted once. handled: each delivery handled (or
dead-lettered) exactly once. order: a receiver handles a conversation's messages in the
order they were accepted. owners: no shard stays without a holder for long."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Finding:
    """A broken promise, where the log shows it (`position` 0: at the end of the log)."""

    check: Check
    position: int
    why: str

    def __str__(self) -> str:
        where = f"position {self.position}" if self.position else "end of log"
        return f"{where}: [{self.check}] {self.why}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Settled:
    """The fault ended at `after_ms`: by `within_ms` later every shard must be held by a
    node not in `gone` (the nodes the fault took down: a killed node's shards look held
    in the log until the next claim)."""

    after_ms: int
    gone: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True, kw_only=True)
class Audit:
    """The findings, and what was looked at (for a summary when there are none)."""

    findings: tuple[Finding, ...]
    events: int
    claims: int
    accepted: int
    handled: int
    held: int
    """Shards held at the end of the log (0 outside a cluster)."""
    stamped: int
    """Events that name the node that committed them (fencing checks only those)."""

    @property
    def clustered(self) -> bool:
        return self.claims > 0


def audit(
    history: Iterable[Recorded],
    *,
    within_ms: int,
    settled: Settled | None = None,
    acknowledged: Collection[str] = (),
    shards: int = SHARDS,
) -> Audit:
    """Every check over a whole log, in log order. `within_ms` bounds how long a shard may
    go without a holder; `acknowledged` are message ids a client was told were accepted."""
    records = list(history)
    findings = [
        *_epochs_and_fencing(records, shards),
        *_once_and_in_order(records, acknowledged),
        *_owners(records, within_ms, settled, shards),
    ]
    findings.sort(key=lambda f: (f.position == 0, f.position, f.check))  # the end's last
    claims = [r for r in records if isinstance(r.event, ShardClaimed)]
    final = membership.NO_MEMBERS
    for r in records:
        final = membership.evolve(final, r)
    return Audit(
        findings=tuple(findings),
        events=len(records),
        claims=len(claims),
        accepted=sum(1 for r in records if isinstance(r.event, MessageSent)),
        handled=sum(1 for r in records if isinstance(r.event, MessageHandled)),
        held=sum(len(m.shards) for m in final.values()) if claims else 0,
        stamped=sum(1 for r in records if r.node),
    )


# --- epochs and fencing ---------------------------------------------------------------


def acting_agent(event: Event) -> str:
    """The agent whose shard's holder alone may commit `event` (its append is fenced by
    that shard), or "" when any node may (a client's message, a deploy, a node's own
    events). Trace and replay credit such an event to that holder."""
    match event:
        case (
            MessageHandled(agent=agent)
            | AgentStarted(agent=agent)
            | AgentTrapped(agent=agent)
            | AgentRestarting(agent=agent)
            | AgentFailed(agent=agent)
            | ToolCalled(agent=agent)
            | ToolReturned(agent=agent)
            | ToolFailed(agent=agent)
            | BreakerOpened(agent=agent)
            | BreakerHalfOpened(agent=agent)
            | BreakerClosed(agent=agent)
        ):
            return agent
        case MessageSent(message=message):
            sender = message.sender  # sent while handling, or in `init`: by the holder
            return "" if is_client(sender) or sender == PLATFORM else agent_of(sender)
        case _:
            return ""


def _epochs_and_fencing(records: list[Recorded], shards: int) -> Iterable[Finding]:
    members = membership.NO_MEMBERS
    epochs: dict[int, tuple[int, str]] = {}  # shard -> (last epoch claimed, by whom)
    for r in records:
        event = r.event
        if isinstance(event, ShardClaimed):
            last = epochs.get(event.shard)
            if last is not None and event.epoch <= last[0]:
                yield Finding(
                    check="epochs",
                    position=r.position,
                    why=f"{event.node} claimed shard {event.shard} at epoch {event.epoch}, "
                    f"not above epoch {last[0]} that {last[1]} claimed before",
                )
            epochs[event.shard] = (max(event.epoch, last[0] if last else 0), event.node)
        elif isinstance(event, ShardReleased):
            last = epochs.get(event.shard)
            if last is None or last != (event.epoch, event.node):
                held = f"{last[1]} held it at epoch {last[0]}" if last else "no node claimed it"
                yield Finding(
                    check="epochs",
                    position=r.position,
                    why=f"{event.node} released shard {event.shard} at epoch {event.epoch}, "
                    f"but {held}",
                )
        agent = acting_agent(event)
        if agent and r.node and epochs:  # a cluster's log, and an event that names its node
            shard = shard_of(agent, shards)
            holder = membership.owner(members, shard)
            if holder != r.node:
                held = f"held by {holder}" if holder else "held by no node"
                yield Finding(
                    check="fencing",
                    position=r.position,
                    why=f"{r.node} committed {type(event).__name__} of {agent} (shard {shard}) "
                    f"while the shard was {held}",
                )
        members = membership.evolve(members, r)


# --- messages: accepted once, handled once, in order -----------------------------------


def _once_and_in_order(records: list[Recorded], acknowledged: Collection[str]) -> Iterable[Finding]:
    sent: dict[str, Recorded] = {}  # message id -> its first acceptance
    closed: dict[tuple[str, str], Recorded] = {}  # (message id, instance) -> its handling
    last_handled: dict[tuple[str, str], tuple[int, str]] = {}  # (instance, conversation)
    failed: set[str] = set()  # instances whose restart budget is spent
    pending = delivery.NO_PENDING
    for r in records:
        event = r.event
        match event:
            case MessageSent(message=message):
                first = sent.get(message.id)
                if first is not None:
                    yield Finding(
                        check="accepted",
                        position=r.position,
                        why=f"message {message.id} was accepted again "
                        f"(first at position {first.position})",
                    )
                else:
                    sent[message.id] = r
            case MessageHandled(message_id=mid, agent=agent, replica=replica):
                target = instance_key(agent, replica)
                yield from _handling(r, mid, target, sent, closed)
                accepted = sent.get(mid)
                if accepted is not None:
                    key = (target, event.conversation_id)
                    before = last_handled.get(key)
                    if before is not None and before[0] > accepted.position:
                        yield Finding(
                            check="order",
                            position=r.position,
                            why=f"{target} handled {mid} (accepted at position "
                            f"{accepted.position}) after {before[1]} (accepted at position "
                            f"{before[0]}) in conversation {event.conversation_id}",
                        )
                    last_handled[key] = (max(accepted.position, before[0] if before else 0), mid)
            case MessageDeadLettered(message_id=mid, receiver=receiver):
                handled = closed.get((mid, receiver))
                if handled is not None and isinstance(handled.event, MessageHandled):
                    yield Finding(
                        check="handled",
                        position=r.position,
                        why=f"{mid} was dead-lettered for {receiver} after it handled it "
                        f"at position {handled.position}",
                    )
                closed.setdefault((mid, receiver), r)
            case AgentFailed(agent=agent, replica=replica):
                failed.add(instance_key(agent, replica))
            case AgentStarted(agent=agent, replica=replica):
                failed.discard(instance_key(agent, replica))
            case AgentDeployed(agent=agent) | AgentStopped(agent=agent) | AgentRemoved(agent=agent):
                failed.difference_update([k for k in failed if split_instance_key(k)[0] == agent])
            case _:
                pass
        pending = delivery.settle(pending, r)
    for message, target in delivery.in_log_order(pending):
        if target in failed:
            continue  # its restart budget is spent: it stays undelivered until a redeploy
        yield Finding(
            check="handled",
            position=0,
            why=f"{message.id} was accepted for {target} at position "
            f"{sent[message.id].position} and never handled",
        )
    for mid in sorted(set(acknowledged) - sent.keys()):
        yield Finding(check="accepted", position=0, why=f"{mid} was acknowledged, not in the log")


def _handling(
    r: Recorded,
    mid: str,
    target: str,
    sent: Mapping[str, Recorded],
    closed: dict[tuple[str, str], Recorded],
) -> Iterable[Finding]:
    accepted = sent.get(mid)
    if accepted is None:
        yield Finding(
            check="handled", position=r.position, why=f"{target} handled {mid}, never accepted"
        )
        return
    assert isinstance(accepted.event, MessageSent)
    if target not in accepted.event.deliveries:
        yield Finding(
            check="handled",
            position=r.position,
            why=f"{target} handled {mid}, which was not delivered to it",
        )
    before = closed.get((mid, target))
    if before is not None:
        what = "handled" if isinstance(before.event, MessageHandled) else "dead-lettered"
        yield Finding(
            check="handled",
            position=r.position,
            why=f"{target} handled {mid} again (it was {what} at position {before.position})",
        )
    else:
        closed[(mid, target)] = r


# --- owners --------------------------------------------------------------------------


def _owners(
    records: list[Recorded], within_ms: int, settled: Settled | None, shards: int
) -> Iterable[Finding]:
    """Each time a shard has no holder (from the cluster's first claim; after a release,
    a stop, the holder's restart; or held by a node the fault took down), a claim must
    end it within `within_ms`; at the end of the log, one still without a holder is late
    once it has been so for longer than that before the last event."""
    first = next((r for r in records if isinstance(r.event, ShardClaimed)), None)
    if first is None:
        return  # not a cluster's log
    members = membership.NO_MEMBERS
    orphaned = {s: (first.at, "the cluster started") for s in range(shards)}
    down: set[str] = set()  # nodes the fault took down, until they start again
    fault_over = settled is None
    for r in records:
        if not fault_over and settled is not None and r.at >= settled.after_ms:
            fault_over = True
            down.update(settled.gone)
            _taken_down(orphaned, members, settled, shards)
        before = members
        members = membership.evolve(members, r)
        if isinstance(r.event, NodeStarted):
            down.discard(r.event.node)
        if not isinstance(r.event, ShardClaimed | ShardReleased | NodeStarted | NodeStopped):
            continue
        for shard in range(shards):
            was, now = membership.owner(before, shard), membership.owner(members, shard)
            if was == now:
                continue
            if now is not None and now not in down:
                gap = orphaned.pop(shard, None)
                if gap is not None and r.at - gap[0] > within_ms:
                    yield _late(shard, gap, r, now, within_ms)
            elif shard not in orphaned:
                orphaned[shard] = (r.at, _why_orphaned(r.event, was))
    if not fault_over and settled is not None:  # the log ends before the fault did
        _taken_down(orphaned, members, settled, shards)
    if all(m.status == "left" for m in members.values()):
        return  # every node stopped: nothing is expected to hold a shard
    end = records[-1].at
    alike: dict[tuple[int, str], list[int]] = {}  # one finding per cause, not per shard
    for shard, gap in sorted(orphaned.items()):
        if end - gap[0] > within_ms:  # younger, it may be claimed yet: a rebalance's
            alike.setdefault(gap, []).append(shard)
    for (since_ms, why), shards_alike in alike.items():
        which = f"shards {ranges(shards_alike)} have" if len(shards_alike) > 1 else "shard {} has"
        yield Finding(
            check="owners",
            position=0,
            why=f"{which.format(shards_alike[0])} had no holder since {_clock(since_ms)} ({why})",
        )


def ranges(shards: Iterable[int]) -> str:
    """`0-3,7,9-12`: shards in ascending order with their runs folded."""
    runs: list[list[int]] = []
    for shard in sorted(shards):
        if runs and shard == runs[-1][1] + 1:
            runs[-1][1] = shard
        else:
            runs.append([shard, shard])
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)


def _taken_down(
    orphaned: dict[int, tuple[int, str]],
    members: membership.Membership,
    settled: Settled,
    shards: int,
) -> None:
    """At the fault's end, shards held by a node it took down count as held by no one."""
    for shard in range(shards):
        holder = membership.owner(members, shard)
        if holder in settled.gone and shard not in orphaned:
            orphaned[shard] = (settled.after_ms, f"its holder {holder} was taken down")


def _why_orphaned(event: Event, was: str | None) -> str:
    match event:
        case ShardReleased(node=node):
            return f"{node} released it"
        case NodeStopped(node=node):
            return f"{node} stopped"
        case NodeStarted(node=node):
            return f"{node} restarted"
        case _:
            return f"{was} lost it"


def _late(shard: int, since: tuple[int, str], r: Recorded, node: str, within_ms: int) -> Finding:
    assert isinstance(r.event, ShardClaimed)
    took = (r.at - since[0]) / 1000
    return Finding(
        check="owners",
        position=r.position,
        why=f"shard {shard} had no holder for {took:.1f} s (from {_clock(since[0])}, when "
        f"{since[1]}, until {node} claimed it at epoch {r.event.epoch}); the bound is "
        f"{within_ms / 1000:g} s",
    )


def _clock(at_ms: int) -> str:
    moment = datetime.fromtimestamp(at_ms / 1000, tz=UTC)
    return moment.strftime("%H:%M:%S.") + f"{at_ms % 1000:03d}Z"
