"""The SSE path's shortcuts give what the plain code they stand in for gives."""

from __future__ import annotations

import json
import random
from collections import OrderedDict

import pytest

from flowrun.jsontext import dumps as _dumps
from flowrun.store.control import SQLiteChannel
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
        assert masker.masked_json(json.loads(text), text) == expected
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


# -- the stop generation: a stop recorded elsewhere is seen before the next step
STOPPER = """
import sys
from flowrun.store.control import SQLiteChannel
from flowrun.store.history import Store
store = Store(sys.argv[1])
SQLiteChannel(store, registry=None).request_stop(sys.argv[2])
store.close()
"""


def _stop_from_another_process(data_dir, execution_id):
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-c", STOPPER, str(data_dir), execution_id],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr


@pytest.fixture
def channel(tmp_path):
    from flowrun.store.history import Store

    store = Store(tmp_path / "data")
    channel = SQLiteChannel(store, registry=None)
    yield channel
    channel.close()
    store.close()


class CountingChannel:
    """Wraps a channel, counting the table lookups."""

    def __init__(self, channel):
        self.channel = channel
        self.lookups = 0

    def stop_generation(self):
        return self.channel.stop_generation()

    def stop_requested(self, execution_id):
        self.lookups += 1
        return self.channel.stop_requested(execution_id)


def test_stop_recorded_by_another_process_between_steps_stops_the_run(
    tmp_path, channel, hits
):
    from flowrun.engine.flow import normalize
    from flowrun.engine.run import Run
    from flowrun.web.executions import WebControls

    from .streams import make_flow, node

    counting = CountingChannel(channel)
    controls = WebControls("exec-1", counting)
    flow = make_flow(hits, *(node(f"n{i}", "/items") for i in range(1, 6)))
    run = Run(normalize(flow), controls=controls, execution_id="exec-1")
    events = run.events()
    seen = []
    for ev in events:
        seen.append(ev)
        if ev.name == "step" and ev.record["id"] == "n2":
            # Unrelated stops change the generation; the run looks and goes on.
            _stop_from_another_process(tmp_path / "data", "exec-other")
        if ev.name == "step" and ev.record["id"] == "n3":
            before = counting.lookups
            _stop_from_another_process(tmp_path / "data", "exec-1")
    end = seen[-1]
    assert end.name == "end"
    assert end.interrupted is True and end.success is False
    assert [r["id"] for r in end.executionLog] == ["n1", "n2", "n3"]
    assert end.notRun == ["n4", "n5"]
    assert hits.paths() == ["/demo/items"] * 3
    # Looked up before n1 (nothing known yet), after the unrelated stop (before
    # n3) and after the stop (before n4); before n2 the generation had not moved.
    assert counting.lookups == 3
    assert before == 2


def test_stop_generation_moves_after_the_row_and_not_otherwise(channel):
    first = channel.stop_generation()
    assert isinstance(first, int)
    channel.send_input("exec-1", 0, {"a": 1})
    channel.send_continue("exec-1", 1)
    assert channel.stop_generation() == first
    channel.request_stop("exec-1")
    assert channel.stop_generation() == first + 1
    assert channel.stop_requested("exec-1")


def test_stop_generation_is_shared_by_the_channels_of_one_data_directory(tmp_path):
    from flowrun.store.history import Store

    stores = Store(tmp_path), Store(tmp_path)
    a, b = (SQLiteChannel(store, registry=None) for store in stores)
    try:
        start = a.stop_generation()
        b.request_stop("exec-9")
        assert a.stop_generation() == start + 1
        assert a.stop_requested("exec-9")
    finally:
        for channel, store in zip((a, b), stores, strict=True):
            channel.close()
            store.close()
    assert a.stop_generation() is None  # closed: callers read the table


def test_without_a_stop_generation_every_check_reads_the_table(channel):
    from flowrun.web.executions import WebControls

    class NoGeneration(CountingChannel):
        def stop_generation(self):
            return None

    counting = NoGeneration(channel)
    controls = WebControls("exec-2", counting)
    assert [controls.external_stop() for _ in range(3)] == [False] * 3
    channel.request_stop("exec-2")
    assert controls.external_stop() is True
    assert counting.lookups == 4


# -- `end` joins the step records' JSON instead of encoding them again
def _encoded_events(app, flow, options=None):
    from flowrun.engine.flow import RunOptions, normalize
    from flowrun.engine.run import Run
    from flowrun.web.executions import Execution, WebControls

    state = app.extensions["flowrun"]
    controls = WebControls("exec-enc", state.channel)
    run = Run(
        normalize(flow),
        RunOptions.from_dict(options),
        controls,
        state.engine_settings(),
        "exec-enc",
    )
    execution = Execution(state, run, controls)
    return [(execution._encode(ev, ev.to_dict()), ev.to_dict()) for ev in run.events()]


@pytest.mark.parametrize("limit", [None, 600])
def test_encoded_events_are_the_json_of_their_data(app, hits, monkeypatch, limit):
    from flowrun.web import executions

    from .streams import make_flow, node

    if limit is not None:  # a run past the kept bytes: `end` is encoded whole
        monkeypatch.setattr(executions, "_LOGGED_LIMIT", limit)
    flow = make_flow(
        hits,
        node("a", "/items", headers={"Authorization": 'Bearer x\u00e9"\\'}),
        node("b", "/items", conditions=[{"variable": "nope", "equals": 1}]),
        node("c", "/status/500"),
        node("d", "/items"),
    )
    got = _encoded_events(app, flow, {"continueOnFailure": True})
    names = [data.get("status") for _, data in got]
    assert len(got) > 6, names
    for text, data in got:
        assert text == _dumps(data)
    end = got[-1][1]
    assert [r["id"] for r in end["executionLog"]] == ["a", "b", "c", "d"]


def test_network_guard_remembers_only_what_passed():
    from flowrun.errors import BlockedTarget
    from flowrun.http.guard import NetworkGuard

    guard = NetworkGuard(blocked=["10.0.0.0/8"])
    for _ in range(2):
        guard.check("http://127.0.0.1:5/a")
        guard.check("http://127.0.0.1:5/b?c")
        for url in (
            "http://10.1.2.3:5/x",
            "http://10.1.2.3:5/y",
            "http://[::ffff:10.0.0.1]/",
        ):
            with pytest.raises(BlockedTarget):
                guard.check(url)
    allowed = NetworkGuard(allowed_hosts=["127.0.0.1"])
    for _ in range(2):
        allowed.check("http://127.0.0.1:5/a")
        with pytest.raises(BlockedTarget):
            allowed.check("http://127.0.0.2:5/a")
