"""The IN-list padding that keeps prepared-statement caches small."""

from __future__ import annotations

import pytest
from sqlalchemy import column, select, table

from tovplus.db.sql import binary_chunks, one_of, padded


@pytest.mark.parametrize(
    ("length", "padded_length"),
    [(0, 0), (1, 1), (2, 2), (3, 4), (4, 4), (5, 8), (8, 8), (9, 16), (300, 512), (512, 512)],
)
def test_padded_lengths_are_powers_of_two(length: int, padded_length: int) -> None:
    values = [f"v{i}" for i in range(length)]
    out = padded(values)
    assert len(out) == padded_length
    assert out[:length] == values
    assert set(out) == set(values)  # only repeats of the last value are added
    assert values == [f"v{i}" for i in range(length)]  # the input is left alone


def test_padded_takes_any_iterable() -> None:
    assert padded(iter(["a", "b", "c"])) == ["a", "b", "c", "c"]
    assert padded(x for x in ()) == []


def test_one_of_renders_few_statement_shapes() -> None:
    things = table("things", column("id"))

    def text(n: int) -> str:
        query = select(things.c.id).where(one_of(things.c.id, [str(i) for i in range(n)]))
        return str(query.compile(compile_kwargs={"render_postcompile": True}))

    shapes = {text(n) for n in range(1, 301)}
    assert len(shapes) == 10  # 1, 2, 4, …, 512 placeholders
    assert text(3) == text(4) != text(5)


@pytest.mark.parametrize(
    ("length", "largest", "sizes"),
    [
        (0, 256, []),
        (1, 256, [1]),
        (13, 256, [8, 4, 1]),
        (256, 256, [256]),
        (1000, 256, [256, 256, 256, 128, 64, 32, 8]),
        (7, 2, [2, 2, 2, 1]),
    ],
)
def test_binary_chunks(length: int, largest: int, sizes: list[int]) -> None:
    rows = list(range(length))
    pieces = list(binary_chunks(rows, largest))
    assert [len(p) for p in pieces] == sizes
    assert [r for p in pieces for r in p] == rows  # every row once, in order


def test_binary_chunks_wants_a_power_of_two() -> None:
    with pytest.raises(ValueError, match="power of two"):
        list(binary_chunks([1, 2, 3], 3))
