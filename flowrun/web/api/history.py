"""Recorded executions: pages of the list (filtered, searched), and one execution
with every step."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from flask import Blueprint, request

from flowrun.errors import located
from flowrun.web.api.common import find, get_state
from flowrun.web.errors import ApiError

bp = Blueprint("history", __name__)

STATUSES = ("running", "completed", "failed", "interrupted")
MAX_QUERY = 200


def _stored(moment: datetime) -> str:
    """A moment in the store's ``startedAt`` form (UTC, milliseconds, ``Z``)."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def _moment(name: str, text: str, end_of_day: bool) -> str:
    """Parse an ISO-8601 date or date-time (UTC unless it says otherwise).

    A bare date means its first millisecond for ``since`` and its last for
    ``until``, so ``since=D&until=D`` is the whole day D.
    """
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            moment = datetime.combine(day, time.min, UTC)
            if end_of_day:
                moment += timedelta(days=1, milliseconds=-1)
        else:
            moment = datetime.fromisoformat(text)
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
    except ValueError:
        raise ApiError(
            400,
            f"Invalid {name}",
            [
                located(
                    name,
                    f"{text!r} is not an ISO-8601 date or date-time",
                    "e.g. 2026-12-07 or 2026-12-07T09:30:00Z",
                )
            ],
        ) from None
    return _stored(moment)


def _query() -> dict:
    """The list's parameters, each checked; a bad one is a 400 naming it."""
    args = request.args
    errors = []
    query: dict = {}
    try:
        limit = int(args.get("limit", 50))
    except ValueError:
        errors.append(located("limit", "must be an integer"))
        limit = 50
    query["limit"] = min(max(limit, 1), 1000)
    before = args.get("before")
    if before:
        if before.isdigit() and int(before) > 0:
            query["before"] = int(before)
        else:
            errors.append(
                located("before", "must be the `next` cursor of an earlier page")
            )
    statuses = [s for s in args.get("status", "").split(",") if s]
    unknown = [s for s in statuses if s not in STATUSES]
    if unknown:
        errors.append(
            located(
                "status",
                f"unknown status {', '.join(map(repr, unknown))}",
                f"Use {', '.join(STATUSES)} (several separated by commas).",
            )
        )
    query["statuses"] = statuses
    text = args.get("q", "").strip()
    if len(text) > MAX_QUERY:
        errors.append(located("q", f"at most {MAX_QUERY} characters"))
    query["text"] = text or None
    query["flow"] = args.get("flow") or None
    if errors:
        raise ApiError(400, "Invalid history query", errors)
    for name, end in (("since", False), ("until", True)):
        value = args.get(name, "").strip()
        query[name] = _moment(name, value, end) if value else None
    if query["since"] and query["until"] and query["since"] > query["until"]:
        raise ApiError(
            400, "Invalid history query", [located("since", "is after until")]
        )
    return query


@bp.get("/executions")
def executions():
    query = _query()
    found, cursor = get_state().store.page(**query)
    return {"executions": found, "next": None if cursor is None else str(cursor)}


@bp.get("/executions/<execution_id>")
def execution(execution_id):
    found = find(get_state().store.get, execution_id)
    if found is None:
        raise ApiError(404, f"No execution {execution_id}")
    return found
