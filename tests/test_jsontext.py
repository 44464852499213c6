"""Compact JSON text for events and history: orjson, with the standard library's
encoder for what orjson refuses."""

from __future__ import annotations

import json
import math

import pytest

from flowrun.jsontext import clean, dumps, escape_surrogates


def standard(value) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


@pytest.mark.parametrize(
    "value",
    [
        {"executionId": "a1", "step": 1, "passed": True, "body": None},
        {"text": 'quote " backslash \\ newline \n tab \t ctl \x1f', "u": "é ✓ 日本"},
        {"nested": [{"a": [1, 2.5, -3, 0.1]}, [], {}], "empty": ""},
        [9_223_372_036_854_775_807, -9_223_372_036_854_775_808, 18446744073709551615],
        {"separator": "\u2028\u2029"},
    ],
)
def test_ordinary_values_are_written_as_the_standard_library_writes_them(value):
    assert dumps(value) == standard(value)
    assert json.loads(dumps(value)) == value


@pytest.mark.parametrize(
    "value",
    [
        {"id": 123456789012345678901234567890},  # past 64 bits
        {1: "integer key", 2.5: "float key"},
    ],
)
def test_what_orjson_refuses_is_written_by_the_standard_library(value):
    assert dumps(value) == standard(value)


def test_nesting_past_orjsons_limit_is_still_written():
    value: list = []
    for _ in range(300):
        value = [value]
    assert dumps(value) == standard(value)


def test_nan_and_infinities_become_null_which_json_parsers_accept():
    text = dumps({"a": math.nan, "b": math.inf, "c": -math.inf})
    assert text == '{"a":null,"b":null,"c":null}'
    assert json.loads(text, parse_constant=lambda name: pytest.fail(name))


@pytest.mark.parametrize(
    "value",
    [
        {"a": "\ud800"},
        {"lone low": "x\udfffy", "é": "✓"},
        {"\udc80 key": ["\x00 nul", "\udbff"]},
    ],
)
def test_lone_surrogates_are_escaped_so_the_text_is_utf8(value):
    text = dumps(value)
    text.encode("utf-8")  # the stream and SQLite take it
    assert json.loads(text) == value  # a reader gets the same strings back
    assert "✓" in text or "✓" not in str(value)  # other characters stay as they are


def test_clean_replaces_what_utf8_cannot_carry():
    assert clean("flow \ud800 name") == "flow \ufffd name"
    assert clean("plain é ✓") == "plain é ✓"


def test_escape_surrogates_leaves_ordinary_json_alone():
    text = json.dumps({"a": "é\u2028"}, ensure_ascii=False)
    assert escape_surrogates(text) is text
