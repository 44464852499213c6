"""GET /api/executions: pages over every stored run, filters, search, bad queries."""

from __future__ import annotations

import pytest

import flowrun.store.history as history

from .streams import assert_error


def _record(store, n, *, flow="Flow", status="completed", at=None, monkeypatch=None):
    """Store ``n`` finished executions of ``flow``; return their ids, oldest first."""
    ids = []
    for i in range(n):
        if at is not None:
            monkeypatch.setattr(history, "now_iso", lambda value=at: value)
        eid = f"exec-{1700000000000 + i}-{flow[:3].lower()}{status[:3]}{i:03d}"
        row = store.create(eid, flow, 1)
        store.finish(row, status, {"success": status == "completed"}, [])
        ids.append(eid)
    store.flush()
    return ids


@pytest.fixture
def store(app):
    return app.extensions["flowrun"].store


def test_pages_reach_every_stored_run(client, store):
    ids = _record(store, 208)
    seen, cursor, pages = [], None, 0
    while True:
        url = "/api/executions?limit=50" + (f"&before={cursor}" if cursor else "")
        page = client.get(url).get_json()
        seen += [e["executionId"] for e in page["executions"]]
        cursor = page["next"]
        pages += 1
        if cursor is None:
            break
    assert pages == 5
    assert seen == list(reversed(ids))  # all of them, newest first, none twice


def test_old_parameters_still_work(client, store):
    _record(store, 3, flow="Alpha")
    _record(store, 2, flow="Beta")
    page = client.get("/api/executions?limit=2&flow=Alpha").get_json()
    assert [e["flowName"] for e in page["executions"]] == ["Alpha", "Alpha"]
    assert page["next"] is not None
    assert len(client.get("/api/executions").get_json()["executions"]) == 5


def test_status_filter_and_search(client, store):
    _record(store, 2, flow="Checkout flow", status="failed")
    _record(store, 1, flow="Checkout flow", status="interrupted")
    _record(store, 3, flow="Login", status="completed")
    _record(store, 1, flow="50%_off", status="completed")

    def names(query):
        page = client.get(f"/api/executions?{query}").get_json()
        return [(e["flowName"], e["status"]) for e in page["executions"]]

    assert names("status=failed") == [("Checkout flow", "failed")] * 2
    assert sorted(names("status=failed,interrupted")) == [
        ("Checkout flow", "failed"),
        ("Checkout flow", "failed"),
        ("Checkout flow", "interrupted"),
    ]
    assert len(names("q=CHECKOUT")) == 3  # part of the name, any case
    assert names("q=%25_") == [("50%_off", "completed")]  # % and _ are literal
    assert names("q=checkout&status=interrupted") == [("Checkout flow", "interrupted")]
    one = client.get("/api/executions?q=login&limit=1").get_json()["executions"][0]
    assert names(f"q={one['executionId'][-6:]}") == [("Login", "completed")]


def test_date_filters(client, store, monkeypatch):
    _record(
        store, 1, flow="Old", at="2026-01-05T23:59:00.000Z", monkeypatch=monkeypatch
    )
    _record(
        store, 1, flow="Mid", at="2026-01-06T08:00:00.000Z", monkeypatch=monkeypatch
    )
    _record(
        store, 1, flow="New", at="2026-01-07T00:00:00.000Z", monkeypatch=monkeypatch
    )

    def names(query):
        page = client.get(f"/api/executions?{query}").get_json()
        return [e["flowName"] for e in page["executions"]]

    assert names("since=2026-01-06&until=2026-01-06") == ["Mid"]  # the whole day
    assert names("since=2026-01-06") == ["New", "Mid"]
    assert names("until=2026-01-06") == ["Mid", "Old"]
    # A moment with an offset: 09:00+02:00 is 07:00 UTC.
    assert names("since=2026-01-06T09:00:00%2B02:00") == ["New", "Mid"]
    assert names("since=2026-01-06T08:00:01Z") == ["New"]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=abc", "limit"),
        ("before=xyz", "before"),
        ("before=0", "before"),
        ("before=-3", "before"),
        ("status=done", "status"),
        ("status=failed,bogus", "status"),
        ("since=yesterday", "since"),
        ("until=2026-13-01", "until"),
        ("since=2026-01-07&until=2026-01-06", "since"),
        ("q=" + "x" * 201, "q"),
    ],
)
def test_bad_parameters_are_a_400_naming_the_field(client, query, field):
    body = assert_error(client.get(f"/api/executions?{query}"), 400)
    assert [e["path"] for e in body["errors"]] == [field]
