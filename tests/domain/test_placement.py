"""Which shards a node claims and gives up: never one that is not free, and a cluster
that follows the plan converges to every shard held once, evenly."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from caxton.domain.placement import LeaseView, fair_share, plan

SHARDS = 16
NODES = [f"node-{i}" for i in range(6)]

leases_st = st.dictionaries(
    st.integers(0, SHARDS - 1),
    st.tuples(st.sampled_from(["", *NODES]), st.floats(-30, 30, allow_nan=False)),
    min_size=SHARDS,
    max_size=SHARDS,
)


def _views(raw: dict[int, tuple[str, float]]) -> dict[int, LeaseView]:
    return {
        s: LeaseView(shard=s, owner=owner, epoch=1, expires_in_s=expires)
        for s, (owner, expires) in raw.items()
    }


@settings(max_examples=300, deadline=None)
@given(leases_st, st.sampled_from(NODES), st.integers(1, 8), st.floats(0, 20))
def test_a_node_claims_only_free_shards_and_releases_only_its_own(
    raw: dict[int, tuple[str, float]], node: str, live: int, waited: float
) -> None:
    leases = _views(raw)
    held = {s for s, lease in leases.items() if lease.owner == node and not lease.free}
    orphaned = {s: waited for s, lease in leases.items() if lease.free}
    decided = plan(node, leases, held, live=live, orphaned_for=orphaned, patience_s=10)
    assert all(leases[s].free and s not in held for s in decided.claim)
    assert set(decided.release) <= held
    assert len(set(decided.claim)) == len(decided.claim)


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 6), st.permutations(NODES))
def test_nodes_that_join_a_cluster_get_their_share_and_every_shard_stays_held_once(
    count: int, order: list[str]
) -> None:
    nodes = order[:count]
    owner = dict.fromkeys(range(SHARDS), nodes[0])  # the first node was alone, then others joined
    for _ in range(10):  # ticks; each node in turn, claims granted while still free
        for node in nodes:
            leases = {
                s: LeaseView(
                    shard=s,
                    owner=owner.get(s, ""),
                    epoch=1,
                    expires_in_s=10 if s in owner else -math.inf,
                )
                for s in range(SHARDS)
            }
            held = {s for s, n in owner.items() if n == node}
            decided = plan(node, leases, held, live=count, orphaned_for={}, patience_s=10)
            for s in decided.release:
                del owner[s]
            for s in decided.claim:
                owner.setdefault(s, node)
    assert set(owner) == set(range(SHARDS))
    share = fair_share(count, SHARDS)
    counts = [sum(1 for n in owner.values() if n == node) for node in nodes]
    assert max(counts) <= share + 1
    assert sum(counts) == SHARDS


def test_a_shard_left_to_nobody_is_claimed_once_it_has_waited_long_enough() -> None:
    leases = {s: LeaseView(shard=s, owner="", epoch=0, expires_in_s=-1.0) for s in range(4)}
    full = {0, 1, 2}  # already over its share if two nodes are believed alive
    waiting = {3: 9.0}
    assert plan("a", leases, full, live=2, orphaned_for=waiting, patience_s=10).claim == ()
    waiting = {3: 10.0}
    assert plan("a", leases, full, live=2, orphaned_for=waiting, patience_s=10).claim == (3,)


def test_a_claim_says_why_the_shard_was_free() -> None:
    def lease(owner: str, expires_in_s: float) -> LeaseView:
        return LeaseView(shard=0, owner=owner, epoch=3, expires_in_s=expires_in_s)

    assert lease("", -math.inf).why_free == "unowned"
    assert lease("node-a", -math.inf).why_free == "released"
    assert lease("node-a", -2.5).why_free == "expired"


def test_shards_rescued_beyond_the_share_are_kept_while_the_count_of_nodes_stands() -> None:
    # three nodes believed alive (one is dead, not yet declared): a and b held 5 each of
    # 16, the dead node's 6 were left to nobody, and a rescued 3 of them after patience
    held = {s: "a" for s in range(5)} | {s: "b" for s in range(5, 10)}
    leases = {
        s: LeaseView(
            shard=s, owner=held.get(s, "c"), epoch=1, expires_in_s=5.0 if s in held else -1
        )
        for s in range(SHARDS)
    }
    mine = set(range(5))
    rescued = plan(
        "a", leases, mine, live=3, orphaned_for={10: 20.0, 11: 20.0, 12: 20.0}, patience_s=10
    )
    assert set(rescued.claim) == {10, 11, 12}  # 1 within its share of 6, 2 beyond it
    assert len(rescued.rescued) == 2 and set(rescued.rescued) < {10, 11, 12}
    mine |= {10, 11, 12}  # 8, over a share of 6 plus one
    kept = set(rescued.rescued)
    again = plan("a", leases, mine, live=3, orphaned_for={}, patience_s=10, rescued=kept)
    assert again.release == ()  # no node would take them: giving them up would only churn
    unkept = plan("a", leases, mine, live=3, orphaned_for={}, patience_s=10)
    assert len(unkept.release) == 2  # without the memory of the rescue, it gives 2 up
