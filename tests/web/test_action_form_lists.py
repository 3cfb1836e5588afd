"""An action's ``string_list`` input on the page: one value a line or comma-separated, blanks dropped."""

from __future__ import annotations

import pytest
from starlette.datastructures import FormData

from tovplus.integrations.adapters.guest_messaging import GuestMessagingAdapter
from tovplus.services.catalog import adapter_view
from tovplus.web.pages.connection_actions import _input

pytestmark = pytest.mark.no_db


def spec():
    [send] = adapter_view(GuestMessagingAdapter()).actions
    return send


def test_guest_ids_from_the_form_become_a_list():
    form = FormData([("input.message", "Hello"), ("input.guest_ids", "gst_1, gst_2\ngst_3,\n\n")])
    assert _input(form, spec()) == {"message": "Hello", "guest_ids": ["gst_1", "gst_2", "gst_3"]}


def test_a_blank_list_field_is_left_out_so_every_guest_is_invited():
    form = FormData([("input.message", "Hello"), ("input.guest_ids", "  ")])
    assert _input(form, spec()) == {"message": "Hello"}
