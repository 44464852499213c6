"""Prompt answers in the control channel: secret ones sealed while they wait, and
every one forgotten once delivered."""

from __future__ import annotations

import json

import pytest

from flowrun.store.sealing import PromptKey, seal, secret_keys

from .streams import make_flow, node
from .test_control import start, two_workers, workers  # noqa: F401 - the fixture
from .waits import wait_until

SECRET = "s3cr3t-pw-4711"


def prompt_flow(target):
    return make_flow(
        target,
        node(
            "ask",
            "/echo?w={{ .input.word }}&p={{ .input.password }}&k={{ .input.pin }}",
            userPrompts={"password": "Password?", "word": "Word?", "pin": "PIN?"},
        ),
    )


def answer_body(eid):
    values = {"password": SECRET, "word": "hey", "pin": "1234"}
    return {"executionId": eid, "stepIndex": 0, "userInput": values}


def test_secret_answers_through_the_other_worker_reach_the_run(workers, hits):  # noqa: F811
    a, b = workers
    eid, reader = start(a, prompt_flow(hits))
    reader.wait_for("input_required")
    resp = b.test_client().post("/api/provide-input", json=answer_body(eid))
    assert resp.status_code == 200
    end = reader.wait_for("end")[1]
    assert end["success"] is True
    # The target got the answer itself (events show secrets masked).
    assert f"w=hey&p={SECRET}&k=1234" in hits.hits[-1]["query"]


def _controls_rows(app, eid):
    db = app.extensions["flowrun"].store.db
    return db.run(
        lambda c: c.execute(
            "SELECT kind, payload FROM controls WHERE execution_id = ? "
            "AND kind = 'input'",
            (eid,),
        ).fetchall()
    )


@pytest.fixture(params=["sqlite", "postgres"])
def pair(request, tmp_path):
    """Two workers of one host (SQLite), or two hosts sharing PostgreSQL."""
    url = None
    if request.param == "postgres":
        url = request.getfixturevalue("postgres_url")
    apps = two_workers(tmp_path, database_url=url)
    yield apps
    for app in apps:
        app.extensions["flowrun"].close()


def _stored(app, tmp_path, text: str) -> bool:
    """Whether ``text`` is anywhere in the history or the channel, in clear."""
    if app.config.get("FLOWRUN_DATABASE_URL"):
        like = f"%{text}%"
        found = app.extensions["flowrun"].store.db.run(
            lambda c: c.execute(
                "SELECT (SELECT count(*) FROM controls WHERE payload LIKE ?)"
                " + (SELECT count(*) FROM steps WHERE record LIKE ?)"
                " + (SELECT count(*) FROM executions WHERE summary LIKE ?)",
                (like, like, like),
            ).fetchone()
        )
        return found[0] > 0
    return any(
        text.encode() in path.read_bytes()
        for path in (tmp_path / "shared").iterdir()
        if path.is_file()
    )


def test_a_secret_answer_waits_sealed_and_is_forgotten_once_delivered(
    pair, tmp_path, hits
):
    a, b = pair
    holder = a.extensions["flowrun"]
    holder.channel.closed = True  # A does not pick the answer up yet
    eid, reader = start(a, prompt_flow(hits))
    reader.wait_for("input_required")
    resp = b.test_client().post("/api/provide-input", json=answer_body(eid))
    assert resp.status_code == 200
    ((_, payload),) = _controls_rows(a, eid)
    waiting = json.loads(payload)
    assert set(waiting["password"]) == {"$sealed"}  # a secret-looking key
    assert waiting["word"] == "hey"
    assert waiting["pin"] == "1234"  # not a secret-looking name
    assert not _stored(a, tmp_path, SECRET)
    # A's poller delivers it now
    holder.channel.deliver(eid, "input", 0, waiting)
    reader.wait_for("end")
    assert f"p={SECRET}" in hits.hits[-1]["query"]
    assert _controls_rows(a, eid) == [("input", None)]  # the claim stays
    again = b.test_client().post("/api/provide-input", json=answer_body(eid))
    assert again.status_code == 409
    assert not _stored(a, tmp_path, SECRET)


def test_names_in_flowrun_secret_vars_are_sealed_too():
    assert secret_keys(["pin", "word", "apiKey", "OTP"], {"pin"}) == [
        "pin",
        "apiKey",
        "OTP",
    ]
    key = PromptKey()
    sealed = seal({"pin": "1234", "word": "hey"}, key.public, {"pin"})
    assert "1234" not in json.dumps(sealed) and sealed["word"] == "hey"
    assert key.open(sealed) == {"pin": "1234", "word": "hey"}


def test_a_value_sealed_to_another_prompt_is_not_opened():
    sealed = seal({"password": "x"}, PromptKey().public, set())
    assert PromptKey().open(sealed) == {}


@pytest.mark.parametrize("kind", ["local", "other"])
def test_an_answer_is_forgotten_once_delivered(pair, hits, kind):
    a, b = pair
    flow = make_flow(
        hits, node("ask", "/echo?w={{ .input.w }}", userPrompts={"w": "W?"})
    )
    eid, reader = start(a, flow)
    reader.wait_for("input_required")
    answering = a if kind == "local" else b
    body = {"executionId": eid, "stepIndex": 0, "userInput": {"w": "plain"}}
    assert (
        answering.test_client().post("/api/provide-input", json=body).status_code == 200
    )
    reader.wait_for("end")
    wait_until(lambda: _controls_rows(a, eid) == [("input", None)])
