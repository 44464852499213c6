"""Secret masking in history: the fast paths give what a plain recursive scrub gives."""

from __future__ import annotations

import json
import random
from collections import OrderedDict

import pytest

from flowrun.jsontext import dumps as _dumps
from flowrun.store.masking import MASK, SECRET_HEADERS, Masker, _placeholder_name


def reference_mask(masker: Masker, record: dict) -> dict:
    """Masker.mask as it was written first: one generic recursive scrub."""
    values = masker._secret_values(record)

    def scrub(value):
        if isinstance(value, str):
            for secret in values:
                if secret in value:
                    value = value.replace(secret, MASK)
            return value
        if isinstance(value, dict):
            return {k: scrub(v) for k, v in value.items()}
        if isinstance(value, list):
            return [scrub(v) for v in value]
        if values and not isinstance(value, bool) and _dumps(value) in values:
            return MASK
        return value

    record = scrub(record)
    for part in ("request", "response"):
        section = record.get(part)
        if section and section.get("headers"):
            section["headers"] = {
                k: MASK if k.lower() in SECRET_HEADERS else v
                for k, v in section["headers"].items()
            }
    for sub in record.get("substitutions") or []:
        name = _placeholder_name(sub.get("placeholder", ""))
        if sub.get("type") in ("variable", "input") and name in masker.names:
            sub["value"] = MASK
    return record


class Text(str):
    pass


SECRETS = ["tok-123", "12345", "null", "NaN", "-7", "2.5", 'a"b\\c', "xy", "true"]


def random_value(rng: random.Random, depth: int = 0):
    kinds = ["str", "int", "float", "bool", "none", "secret", "num-secret"]
    if depth < 4:
        kinds += ["dict", "list", "odict", "tuple"]
    kind = rng.choice(kinds)
    if kind == "str":
        return rng.choice(["plain", "", "Bearer tok-123", "x tok-1234 y", 'a"b\\c!'])
    if kind == "secret":
        value = rng.choice(SECRETS) + rng.choice(["", " tail"])
        return Text(value) if rng.random() < 0.2 else value
    if kind == "int":
        return rng.choice([0, 7, -7, 12345, 123456])
    if kind == "num-secret":
        return rng.choice([12345, -7, 2.5, float("nan"), None, True])
    if kind == "float":
        return rng.choice([2.5, 0.1, -0.0, float("inf")])
    if kind == "bool":
        return rng.random() < 0.5
    if kind == "none":
        return None
    items = [random_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    if kind == "list":
        return items
    if kind == "tuple":
        return tuple(items)
    keys = [rng.choice(["a", "b", "tok-123", "12345", "c"]) for _ in items]
    made = dict(zip(keys, items, strict=True))
    return OrderedDict(made) if kind == "odict" else made


def random_record(rng: random.Random) -> dict:
    headers = {"Accept": "x", "Authorization": rng.choice(["Bearer tok-123", "ab"])}
    if rng.random() < 0.5:
        headers["Cookie"] = "sid=12345; t=NaN"
    return {
        "executionId": "exec-1",
        "step": rng.randint(1, 9),
        "url": rng.choice(["http://h/items/12345", "http://h/x"]),
        "request": {"headers": headers, "body": random_value(rng)},
        "response": {
            "status": 200,
            "headers": {"Set-Cookie": "a=null", "X": "-7"},
            "body": random_value(rng),
        },
        "substitutions": [
            {"placeholder": "{{ .vars.pw }}", "value": "hunter22", "type": "variable"},
            {"placeholder": "{{ .input.otp }}", "value": "12", "type": "input"},
        ],
        "extra": random_value(rng),
    }


@pytest.mark.parametrize("names", [(), ("pw", "otp"), ("num",)])
def test_mask_matches_the_generic_scrub(names):
    rng = random.Random(7)
    variables = {"pw": "hunter22", "num": 12345}
    inputs = {"otp": "2.5"}
    masker = Masker(names, variables, inputs)
    for _ in range(400):
        record = random_record(rng)
        expected = _dumps(reference_mask(masker, record))
        got = masker.mask(record)
        assert _dumps(got) == expected
        assert type(got) is dict


def typical_record(rng: random.Random, token: str) -> dict:
    """A step record as flows make them: a bearer token in a header, maybe
    echoed back in bodies, URLs and headers, among other values."""
    echo = rng.choice([token, f"Bearer {token}", "no secret", f"x{token}y"])
    body = {
        "id": rng.randint(1, 99),
        "name": rng.choice(["item", "a\nb", 'q"uote', "tab\there", "é"]),
        "token": echo,
        "tags": [echo, None, True, 2.5],
        rng.choice(["k", "key", "tok"]): rng.choice([echo, 1, {"deep": [echo]}]),
    }
    return {
        "executionId": "exec-1",
        "step": 1,
        "url": rng.choice(["http://h/items", f"http://h/items?t={token}"]),
        "request": {
            "headers": {"Accept": "*/*", "Authorization": f"Bearer {token}"},
            "body": body if rng.random() < 0.5 else None,
        },
        "response": {"status": 200, "headers": {"X-Echo": echo}, "body": body},
        "substitutions": [
            {"placeholder": "{{ .responses.login.token }}", "value": token}
        ],
        "validations": [{"type": "jsonpath", "passed": True, "actual": echo}],
    }


TOKENS = ["tok-s-1234567890", "abc", "eyJhbGciOi.J9.x_y-z", "tok\\nx", "12345", "rue"]


@pytest.mark.parametrize("names", [(), ("pw",)])
def test_masked_json_matches_masking_the_record(names):
    # masked_json replaces secrets in the JSON text where that gives the same
    # JSON as masking the record; the rest is masked the long way. Either way
    # the result must be what masking the record gives.
    rng = random.Random(11)
    fast = 0
    for i in range(600):
        masker = Masker(names, {"pw": "hunter22"} if i % 3 else {}, {})
        if i % 2:
            record = typical_record(rng, rng.choice(TOKENS))
        else:
            record = random_record(rng)
        text = _dumps(record)
        expected = _dumps(reference_mask(masker, json.loads(text)))
        values = masker._secret_values(json.loads(text))
        fast += masker._replaceable(json.loads(text), values, text)
        got = masker.masked_json(json.loads(text), text)
        assert json.loads(got) == json.loads(expected)
        # The mask is stored escaped: a record's text stays ASCII (one byte a
        # character in memory, nothing to encode again for the database).
        assert got.isascii() or not text.isascii()
    assert fast > (20 if names else 100)  # the text path is taken, often


def test_a_secret_used_as_a_key_keeps_the_key():
    masker = Masker((), {}, {})
    record = {
        "request": {"headers": {"Authorization": "Bearer tok-42"}},
        "response": {"body": {"tok-42": "tok-42", "b": "x tok-42 y"}},
    }
    got = json.loads(masker.masked_json(record, _dumps(record)))
    assert got["response"]["body"] == {"tok-42": MASK, "b": f"x {MASK} y"}
    assert got["request"]["headers"]["Authorization"] == MASK
