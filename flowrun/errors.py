"""The one error tree of flowrun.

    FlowError
    ├── FlowInvalid            the flow document is wrong (carries located errors)
    └── StepError              one step could not produce a passing result
        ├── UnresolvedPlaceholder
        ├── InputMissing       a prompt had no answer (no TTY, no inputs, timeout)
        ├── BlockedTarget      the target address is refused by settings
        ├── TargetUnreachable  network, DNS, TLS, invalid URL
        │   └── StepTimeout
        └── ValidationFailed

The API maps the tree to HTTP responses and the CLI to exit codes, each in one place.
"""

from __future__ import annotations


class FlowError(Exception):
    """Base of every error flowrun raises on purpose."""


class FlowInvalid(FlowError):
    """The flow document failed validation.

    ``errors`` is a list of ``{"path", "nodeId", "message", "hint"}`` dicts.
    """

    def __init__(self, errors: list[dict], message: str = "Invalid flow"):
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


class TargetUnreachable(StepError):
    pass


class StepTimeout(TargetUnreachable):
    pass


class ValidationFailed(StepError):
    pass
