"""The id generator's random pool: unique, ordered, and never shared with a forked child."""

from __future__ import annotations

import os

import pytest

from tovplus.db import ids

pytestmark = pytest.mark.no_db


def test_ids_across_many_pool_refills_are_unique_and_increasing() -> None:
    made = [ids.new_id("act") for _ in range(3000)] + ids.new_ids("act", 500)
    assert len(set(made)) == len(made)
    assert made == sorted(made)


def test_a_forked_child_shares_neither_random_bytes_nor_the_counter() -> None:
    ids.new_id("act")  # the parent has an unread pool now
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.write(write, ",".join(ids.new_id("act")[-16:] for _ in range(50)).encode())
        os._exit(0)
    os.close(write)
    parent = {ids.new_id("act")[-16:] for _ in range(50)}
    os.waitpid(pid, 0)
    with os.fdopen(read) as pipe:
        child = set(pipe.read().split(","))
    assert len(child) == 50
    assert not parent & child
