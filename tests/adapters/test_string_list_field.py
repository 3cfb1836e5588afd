"""The ``string_list`` field type: a JSON list of non-blank strings, bounded per item and in count."""

from __future__ import annotations

from typing import Any

import pytest

from tovplus.integrations.fields import MAX_LIST_ITEMS, Field, FieldType, check_fields

pytestmark = pytest.mark.no_db
IDS = Field("guest_ids", "Guest IDs", FieldType.STRING_LIST, max_length=8, max_items=3)


def issues(value: Any, field: Field = IDS) -> list[tuple[str, str]]:
    errors, _ = check_fields((field,), {field.key: value}, "input", allow_private_urls=False)
    return [(e.field, e.code) for e in errors]


def test_a_list_of_short_strings_passes_and_is_described_as_string_list():
    assert issues(["g1", "g2"]) == []
    assert IDS.describe()["type"] == "string_list"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("g1", [("input.guest_ids", "invalid_type")]),
        (["g1", 2], [("input.guest_ids", "invalid_type")]),
        ({"g1": True}, [("input.guest_ids", "invalid_type")]),
        ([], [("input.guest_ids", "too_short")]),
        (["a", "b", "c", "d"], [("input.guest_ids", "too_long")]),
        (["g1", "  "], [("input.guest_ids.1", "required")]),
        (["g1", "x" * 9], [("input.guest_ids.1", "too_long")]),
    ],
    ids=["a-string", "a-number-inside", "an-object", "empty", "too-many", "blank-item", "long-item"],
)
def test_bad_lists_get_a_field_error(value: Any, expected: list[tuple[str, str]]):
    assert issues(value) == expected


def test_an_absent_optional_list_is_fine_and_a_required_one_is_required():
    assert issues(None) == []
    required = Field("ids", "IDs", FieldType.STRING_LIST, required=True)
    assert issues(None, required) == [("input.ids", "required")]


def test_items_meet_the_declared_pattern_and_the_global_cap_holds():
    patterned = Field("codes", "Codes", FieldType.STRING_LIST, pattern=r"[a-z]+\d", pattern_message="bad")
    assert issues(["ab1", "cd2"], patterned) == []
    assert issues(["ab1", "CD2"], patterned) == [("input.codes.1", "invalid_format")]
    unbounded = Field("ids", "IDs", FieldType.STRING_LIST)
    assert issues(["x"] * (MAX_LIST_ITEMS + 1), unbounded) == [("input.ids", "too_long")]
