"""Fresh ids: random bytes read in blocks, never repeated across a fork."""

from __future__ import annotations

import os

from caxton.shell.runtime.clock import client_address, fresh_id, random_u64


def test_fresh_ids_are_32_hex_characters_and_do_not_repeat() -> None:
    ids = [fresh_id() for _ in range(10_000)]  # several blocks of random bytes
    assert len(set(ids)) == len(ids)
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)
    assert client_address().startswith("client:")
    assert 0 <= random_u64() < 1 << 64


def test_a_forked_child_does_not_repeat_its_parents_ids() -> None:
    fresh_id()  # the parent holds a block it has not used up
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child
        os.write(write, fresh_id().encode())
        os._exit(0)
    os.close(write)
    os.waitpid(child, 0)
    from_child = os.read(read, 64).decode()
    os.close(read)
    assert from_child != fresh_id()
