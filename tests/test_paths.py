"""PATH grammar and FlowSphere's JavaScript-string equality."""

from __future__ import annotations

import pytest

from flowrun.engine import paths

DOC = {
    "a": {"b": 1},
    "items": [{"id": 1, "name": "apple"}, {"id": 2, "name": "banana"}],
    "x-rate-limit": 5,
    "nested": {"list": [[10, 20], [30]]},
    "empty": "",
    "nothing": None,
}


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (".a.b", 1),
        ("a.b", 1),
        ("$.a.b", 1),
        (".items[0].name", "apple"),
        (".items[1].id", 2),
        (".items[-1].name", "banana"),
        (".items.0.name", "apple"),
        (".x-rate-limit", 5),
        (".nested.list[0][1]", 20),
        ('.["x-rate-limit"]', 5),
        (".nothing", None),
        (".empty", ""),
        (".", DOC),
        ("", DOC),
        (".items | length", 2),
        (".items|length", 2),
        (".items  |  length ", 2),
        (".a | length", 1),
        (".items[0].name | length", 5),
        (". | length", len(DOC)),
    ],
)
def test_resolve(path, expected):
    assert paths.resolve(DOC, path) == expected


def test_array_root_forms():
    value = [{"id": 7}, {"id": 8}]
    assert paths.resolve(value, ".[0]") == {"id": 7}
    assert paths.resolve(value, ".[0].id") == 7
    assert paths.resolve(value, "[1].id") == 8
    assert paths.resolve(value, ".[-1].id") == 8
    assert paths.resolve(value, "|length") == 2


@pytest.mark.parametrize(
    ("path", "words"),
    [
        (".missing", "no field 'missing' at top level"),
        (".a.c", "no field 'c' at .a"),
        (".items[5]", "index 5 out of range"),
        (".items[-3]", "index -3 out of range"),
        (".a[0]", "not an array"),
        (".a.b.c", "is a number, so it has no field 'c'"),
        (".nothing.x", "is null"),
        (".a.b | length", "cannot take the length of a number"),
    ],
)
def test_missing_says_where(path, words):
    with pytest.raises(paths.Missing) as info:
        paths.resolve(DOC, path)
    assert words in str(info.value)


@pytest.mark.parametrize("path", [".a[", ".a[x]", ".a b", ".a..b"])
def test_syntax_errors(path):
    with pytest.raises(paths.PathSyntaxError):
        paths.parse(path)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, "true"),
        (False, "false"),
        (None, "null"),
        (5.0, "5"),
        (5, "5"),
        (1.5, "1.5"),
        (-0.0, "0"),
        (1e21, "1e+21"),
        (1e-7, "1e-7"),
        (123456789012.0, "123456789012"),
        ("text", "text"),
        ([1, "a", True], "1,a,true"),
        ([1, None, 2], "1,,2"),
        ([[1, 2], [3]], "1,2,3"),
        ([], ""),
        ({"a": 1}, "[object Object]"),
    ],
)
def test_js_str(value, expected):
    assert paths.js_str(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"a": [1, "é"]}, '{"a":[1,"é"]}'),
        ([1, 2], "[1,2]"),
        (7, "7"),
        (2.0, "2"),
        (True, "true"),
        (None, "null"),
        ("s", "s"),
    ],
)
def test_text(value, expected):
    assert paths.text(value) == expected
