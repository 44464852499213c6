"""The one error tree of flowrun, and the shape of a located error.

    FlowError
    ├── FlowInvalid            the flow document is wrong (carries located errors)
    └── StepError              one step could not produce a passing result
        ├── UnresolvedPlaceholder
        ├── InputMissing       a prompt had no answer (no TTY, no inputs, timeout)
        ├── BlockedTarget      the target address is refused by settings
        ├── BudgetExceeded     the step's own work ran past FLOWRUN_STEP_CPU_S
        ├── RequestTooLarge    the rendered request is over FLOWRUN_MAX_REQUEST_BYTES
        ├── StepAborted        the request in flight was cut short (a forced stop)
        └── TargetUnreachable  network, DNS, TLS, invalid URL
            └── StepTimeout    the step's timeout passed (a total deadline)

A ``LocatedError`` says what is wrong where: ``{"path", "nodeId", "message", "hint"}``
(and ``"severity"`` in validation reports). Everything that reports a problem in a
document or a request (flow validation, run options, API requests, importers) builds
it with ``located()``. The API maps the tree to HTTP responses and the CLI to exit
codes, each in one place.
"""

from __future__ import annotations

from typing import NotRequired, TypedDict


class LocatedError(TypedDict):
    """One problem at one place of a document, as the API and the CLI show it."""

    path: str  # where, e.g. ``nodes[3].url`` or ``options.startStep``
    nodeId: str | None  # the node it belongs to, if any
    message: str  # what is wrong
    hint: str  # how to fix it ("" when there is nothing to add)
    severity: NotRequired[str]  # "error" or "warning" (validation reports)


def located(
    path: str,
    message: str,
    hint: str = "",
    node_id: str | None = None,
    severity: str | None = None,
) -> LocatedError:
    """Build a ``LocatedError``."""
    entry = LocatedError(path=path, nodeId=node_id, message=message, hint=hint)
    if severity is not None:
        entry["severity"] = severity
    return entry


class FlowError(Exception):
    """Base of every error flowrun raises on purpose."""


class FlowInvalid(FlowError):
    """The flow document (or a request about it) failed validation."""

    def __init__(self, errors: list[LocatedError], message: str = "Invalid flow"):
        super().__init__(message)
        self.errors = errors
        self.message = message


class StepError(FlowError):
    """A step failed; the message is what the person sees."""


class UnresolvedPlaceholder(StepError):
    pass


class InputMissing(StepError):
    pass


class BlockedTarget(StepError):
    pass


class BudgetExceeded(StepError):
    """A step's conditions, placeholders and validations used up its CPU budget."""


class RequestTooLarge(StepError):
    """The rendered request is larger than FLOWRUN_MAX_REQUEST_BYTES."""


class StepAborted(StepError):
    """The request in flight was cut short (``Client.abort``, a forced stop)."""


class TargetUnreachable(StepError):
    pass


class StepTimeout(TargetUnreachable):
    pass
