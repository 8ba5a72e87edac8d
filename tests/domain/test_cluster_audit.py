"""The cluster's log checker over hand-made logs: a sound log has no finding, and each
broken promise (an epoch going back, a deposed owner's append, a double handling, an
out-of-order delivery, a shard left without a holder) is found and said in words."""

from __future__ import annotations

from dataclasses import dataclass, field

from caxton.domain.acl import AclMessage, Performative
from caxton.domain.cluster_audit import Finding, Settled, audit, ranges
from caxton.domain.events import (
    AgentDeployed,
    AgentFailed,
    AgentStarted,
    Event,
    MemberChanged,
    MessageDeadLettered,
    MessageHandled,
    MessageSent,
    NodeStarted,
    NodeStopped,
    Recorded,
    ShardClaimed,
    ShardReleased,
    stream_of,
)
from caxton.domain.placement import shard_of

SHARDS = 2  # small logs: two shards, agents placed on them by name
ECHO = "echo"
ECHO_SHARD = shard_of(ECHO, SHARDS)
OTHER_SHARD = 1 - ECHO_SHARD
WITHIN_MS = 10_000


@dataclass
class Log:
    """A log written by hand: each event at the next position, `at` advanced by `after_ms`."""

    records: list[Recorded] = field(default_factory=list)
    now: int = 1_000_000

    def add(self, event: Event, *, by: str = "", after_ms: int = 10) -> Log:
        self.now += after_ms
        position = len(self.records) + 1
        self.records.append(
            Recorded(
                position=position,
                stream=stream_of(event),
                version=1,
                at=self.now,
                event=event,
                node=by,
            )
        )
        return self

    def findings(self, **options: object) -> list[Finding]:
        kwargs: dict[str, object] = {"within_ms": WITHIN_MS, "shards": SHARDS, **options}
        return list(audit(self.records, **kwargs).findings)  # type: ignore[arg-type]


def message(mid: str, conversation: str = "c1") -> AclMessage:
    return AclMessage(
        id=mid,
        performative=Performative.REQUEST,
        sender="client:t",
        receivers=(ECHO,),
        conversation_id=conversation,
    )


def sent(mid: str, conversation: str = "c1") -> MessageSent:
    return MessageSent(message=message(mid, conversation), deliveries=(f"{ECHO}#0",))


def handled(mid: str, conversation: str = "c1") -> MessageHandled:
    return MessageHandled(message_id=mid, conversation_id=conversation, agent=ECHO, replica=0)


def still_there() -> Event:
    """An event that moves no shard (n2's view of n1), later in the log."""
    return MemberChanged(node="n1", state="alive", by="n2")


def two_nodes() -> Log:
    """n1 and n2 started, n1 holding both shards at epoch 1, echo running on n1."""
    log = Log()
    log.add(NodeStarted(node="n1", address="a1", version="1"), by="n1")
    log.add(NodeStarted(node="n2", address="a2", version="1"), by="n2")
    for shard in range(SHARDS):
        log.add(ShardClaimed(shard=shard, node="n1", epoch=1, reason="unowned"), by="n1")
    log.add(AgentDeployed(agent=ECHO, component="c" * 64, component_size=1, replicas=1), by="n2")
    log.add(AgentStarted(agent=ECHO, replica=0, incarnation=1), by="n1")
    return log


def takeover(log: Log, *, epoch: int = 2) -> Log:
    """n2 takes echo's shard after n1's lease expired, and starts echo."""
    log.add(
        ShardClaimed(shard=ECHO_SHARD, node="n2", epoch=epoch, previous="n1", reason="expired"),
        by="n2",
    )
    return log.add(AgentStarted(agent=ECHO, replica=0, incarnation=2), by="n2")


def checks(findings: list[Finding]) -> list[str]:
    return [f.check for f in findings]


def test_a_sound_log_with_a_takeover_has_no_finding() -> None:
    log = two_nodes().add(sent("m1"), by="n2").add(handled("m1"), by="n1")
    takeover(log).add(sent("m2"), by="n1").add(handled("m2"), by="n2")
    found = audit(log.records, within_ms=WITHIN_MS, shards=SHARDS)
    assert found.findings == ()
    assert (found.claims, found.accepted, found.handled, found.held) == (3, 2, 2, 2)


def test_a_log_without_claims_is_checked_for_messages_only() -> None:
    log = Log().add(sent("m1")).add(handled("m1"))
    found = audit(log.records, within_ms=WITHIN_MS, shards=SHARDS)
    assert found.findings == () and not found.clustered


def test_an_epoch_that_goes_back_is_a_finding() -> None:
    log = takeover(two_nodes(), epoch=1)  # not above n1's epoch 1
    [finding] = log.findings()
    assert finding.check == "epochs"
    assert finding.why == (
        f"n2 claimed shard {ECHO_SHARD} at epoch 1, not above epoch 1 that n1 claimed before"
    )


def test_a_release_by_a_node_that_does_not_hold_the_shard_is_a_finding() -> None:
    log = takeover(two_nodes()).add(ShardReleased(shard=ECHO_SHARD, node="n1", epoch=1), by="n1")
    assert checks(log.findings()) == ["epochs"]


def test_an_append_by_a_deposed_owner_after_the_next_claim_is_a_finding() -> None:
    log = takeover(two_nodes()).add(sent("m1"), by="n2")
    log.add(handled("m1"), by="n1")  # n1 woke from a pause and handled it: fencing failed
    [finding] = log.findings()
    assert finding.check == "fencing" and finding.position == len(log.records)
    assert finding.why == (
        f"n1 committed MessageHandled of echo (shard {ECHO_SHARD}) while the shard was held by n2"
    )


def test_an_agent_s_send_counts_as_its_shard_s_work_and_a_client_s_as_anyone_s() -> None:
    log = takeover(two_nodes())
    log.add(sent("m1"), by="n1")  # a client's message accepted by n1: any node may
    log.add(handled("m1"), by="n2")
    reply = AclMessage(
        id="r1", performative=Performative.INFORM, sender=ECHO, receivers=("client:t",)
    )
    log.add(MessageSent(message=reply, deliveries=("client:t",), cause="m1"), by="n1")
    [finding] = log.findings()  # echo's reply, committed by n1 after n2 took echo over
    assert finding.check == "fencing" and "MessageSent of echo" in finding.why


def test_a_message_handled_twice_is_a_finding() -> None:
    log = two_nodes().add(sent("m1"), by="n2").add(handled("m1"), by="n1")
    log.add(handled("m1"), by="n1")  # redelivered and handled again
    [finding] = log.findings()
    assert finding.check == "handled"
    assert (
        finding.why
        == f"echo#0 handled m1 again (it was handled at position {len(log.records) - 1})"
    )


def test_a_message_accepted_twice_is_a_finding() -> None:
    log = two_nodes().add(sent("m1"), by="n2").add(sent("m1"), by="n1").add(handled("m1"), by="n1")
    [finding] = log.findings()
    assert finding.check == "accepted" and "accepted again" in finding.why


def test_an_accepted_message_never_handled_is_a_finding_unless_dead_lettered() -> None:
    log = two_nodes().add(sent("m1"), by="n2").add(sent("m2"), by="n2")
    log.add(
        MessageDeadLettered(message_id="m2", conversation_id="c1", receiver="echo#0", reason="x")
    )
    [finding] = log.findings()
    assert finding.check == "handled" and finding.position == 0
    assert finding.why == "m1 was accepted for echo#0 at position 7 and never handled"


def test_a_message_to_an_instance_whose_restarts_are_spent_may_stay_unhandled() -> None:
    log = two_nodes().add(sent("m1"), by="n2")
    log.add(AgentFailed(agent=ECHO, replica=0, reason="restart budget spent"), by="n1")
    assert log.findings() == []


def test_an_acknowledged_message_missing_from_the_log_is_a_finding() -> None:
    log = two_nodes().add(sent("m1"), by="n2").add(handled("m1"), by="n1")
    [finding] = log.findings(acknowledged={"m1", "m9"})
    assert finding.why == "m9 was acknowledged, not in the log"


def test_a_conversation_handled_out_of_the_order_it_was_accepted_in_is_a_finding() -> None:
    log = two_nodes().add(sent("m1"), by="n2").add(sent("m2"), by="n2")
    log.add(handled("m2"), by="n1").add(handled("m1"), by="n1")
    [finding] = log.findings()
    assert finding.check == "order"
    assert finding.why == (
        "echo#0 handled m1 (accepted at position 7) after m2 (accepted at position 8) "
        "in conversation c1"
    )


def test_two_conversations_may_interleave_at_one_receiver() -> None:
    log = two_nodes().add(sent("m1", "c1"), by="n2").add(sent("m2", "c2"), by="n2")
    log.add(handled("m2", "c2"), by="n1").add(handled("m1", "c1"), by="n1")
    assert log.findings() == []


def test_a_shard_released_and_claimed_within_the_bound_is_sound_and_beyond_it_is_not() -> None:
    def released_then_claimed(after_ms: int) -> Log:
        log = two_nodes().add(ShardReleased(shard=ECHO_SHARD, node="n1", epoch=1), by="n1")
        claim = ShardClaimed(shard=ECHO_SHARD, node="n2", epoch=2, previous="n1", reason="released")
        return log.add(claim, by="n2", after_ms=after_ms)

    assert released_then_claimed(WITHIN_MS).findings() == []
    [finding] = released_then_claimed(WITHIN_MS + 2_000).findings()
    assert finding.check == "owners"
    assert finding.why.startswith(f"shard {ECHO_SHARD} had no holder for 12.0 s (from ")
    assert finding.why.endswith(
        "when n1 released it, until n2 claimed it at epoch 2); the bound is 10 s"
    )


def test_a_shard_left_without_a_holder_at_the_end_of_the_log_is_a_finding() -> None:
    log = two_nodes().add(ShardReleased(shard=ECHO_SHARD, node="n1", epoch=1), by="n1")
    assert log.findings() == []  # just released: another node may claim it yet
    log.add(still_there(), by="n2", after_ms=WITHIN_MS + 1)
    [finding] = log.findings()
    assert finding.check == "owners" and finding.position == 0
    assert f"shard {ECHO_SHARD} has had no holder since" in finding.why
    assert finding.why.endswith("(n1 released it)")


def test_a_stopped_node_s_shards_must_be_claimed_but_not_once_every_node_stopped() -> None:
    log = two_nodes().add(NodeStopped(node="n1"), by="n1")
    log.add(still_there(), by="n2", after_ms=WITHIN_MS + 1)
    [finding] = log.findings()
    assert finding.why.startswith("shards 0-1 have had no holder since")
    assert finding.why.endswith("(n1 stopped)")
    log.add(NodeStopped(node="n2"), by="n2")
    assert log.findings() == []


def test_after_a_fault_a_taken_down_node_s_shards_must_be_claimed_within_the_bound() -> None:
    log = two_nodes()
    killed_at = log.now + 1
    log.add(sent("m1"), by="n2", after_ms=5)
    settled = Settled(after_ms=killed_at, gone=frozenset({"n1"}))
    later = Log(records=[*log.records], now=log.now).add(still_there(), after_ms=WITHIN_MS + 1)
    [*found] = later.findings(settled=settled)
    assert checks(found) == ["handled", "owners"]  # m1 waits for echo, and no one holds it
    assert found[1].why.endswith("(its holder n1 was taken down)")
    takeover(log)  # 10 ms later: echo's shard, and m1 handled; the other shard still n1's
    log.add(handled("m1"), by="n2")
    assert log.findings(settled=settled) == []  # the other shard may be claimed yet
    later = Log(records=[*log.records], now=log.now).add(still_there(), after_ms=WITHIN_MS + 1)
    [finding] = later.findings(settled=settled)
    assert finding.why.startswith(f"shard {OTHER_SHARD} has had no holder since")
    claim = ShardClaimed(shard=OTHER_SHARD, node="n2", epoch=2, previous="n1", reason="expired")
    log.add(claim, by="n2", after_ms=WITHIN_MS)
    [late] = log.findings(settled=settled)
    assert late.why.startswith(f"shard {OTHER_SHARD} had no holder for 10.0")


def test_a_node_taken_down_that_starts_again_may_hold_shards_again() -> None:
    log = two_nodes()
    settled = Settled(after_ms=log.now + 1, gone=frozenset({"n1"}))
    log.add(NodeStarted(node="n1", address="a1", version="1"), by="n1")  # its restart
    for shard in range(SHARDS):
        log.add(ShardClaimed(shard=shard, node="n1", epoch=2, previous="n1", reason="expired"))
    log.add(AgentStarted(agent=ECHO, replica=0, incarnation=2), by="n1")
    assert log.findings(settled=settled) == []


def test_shard_ranges_fold_runs() -> None:
    assert ranges([9, 0, 1, 2, 3, 7, 10, 11, 12]) == "0-3,7,9-12"
