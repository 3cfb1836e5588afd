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


class _NoErrors:
    by_field: dict[str, str] = {}  # noqa: RUF012 - a stand-in for the page's error view


def test_the_long_message_and_the_list_get_text_areas_and_keep_what_was_typed():
    from tovplus.web.render import environment

    field_input = environment().get_template("macros.html").module.field_input
    message, guest_ids = spec().input_fields
    typed = {"input.message": "Dear guests,\nJoin us in June!", "input.guest_ids": ["gst_1", "gst_2"]}
    html_message = str(field_input(message, "input", typed, _NoErrors()))
    html_ids = str(field_input(guest_ids, "input", typed, _NoErrors()))
    assert (
        '<textarea class="input input--area" id="f-input-message" name="input.message" rows="5"'
        in html_message
    )
    assert ">Dear guests,\nJoin us in June!</textarea>" in html_message
    assert 'name="input.guest_ids" rows="3"' in html_ids
    assert ">gst_1\ngst_2</textarea>" in html_ids
