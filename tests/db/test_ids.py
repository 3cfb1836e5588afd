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


def _reference(value: int, length: int) -> str:
    """Crockford base 32, most significant character first, one character at a time."""
    alphabet = "0123456789abcdefghjkmnpqrstvwxyz"
    return "".join(alphabet[(value >> (5 * (length - 1 - i))) & 31] for i in range(length))


@pytest.mark.parametrize("value", [0, 1, 31, 32, 1023, 1024, 2**50 - 1, 2**79 + 12345, 2**80 - 1])
def test_ids_are_crockford_base32_of_time_and_counter(value: int) -> None:
    assert ids._encode(value, 16) == _reference(value, 16)
    assert ids._encode(value % 2**50, 10) == _reference(value % 2**50, 10)


def test_an_id_spells_its_millisecond_and_its_floor_sorts_below_it() -> None:
    from datetime import UTC, datetime

    made = ids.new_id("act")
    when = datetime.now(UTC)
    millis = int(
        made[4:14].translate(
            str.maketrans("0123456789abcdefghjkmnpqrstvwxyz", "0123456789ABCDEFGHIJKLMNOPQRSTUV")
        ),
        32,
    )
    assert abs(millis - when.timestamp() * 1000) < 60_000
    assert ids.id_floor("act", when.replace(year=when.year - 1)) < made
    assert ids.is_id(made)
