"""Run events: small named data objects.

The engine yields these; the SSE writer, the history store, the CLI printer and the
non-streaming API all consume the same objects. ``to_dict()`` gives the event's JSON
data (always with ``executionId``).

=================  ==========================================================
name               fields (besides ``executionId``)
=================  ==========================================================
``start``          totalSteps, flowName, startedAt
``step_start``     step (1-based), stepIndex, id, name, method, url
``input_required`` step, stepIndex, name, prompts
``paused``         step, stepIndex, resumeAt (auto mode, epoch ms) or None
``step``           the step record (see ``StepEvent``)
``error``          message, step
``end``            success, interrupted, stepsExecuted, stepsSkipped,
                   stepsFailed, notRun, duration, executionLog
=================  ==========================================================
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Event:
    name = "event"
    executionId: str

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class Start(Event):
    name = "start"
    totalSteps: int
    flowName: str
    startedAt: str


@dataclass
class StepStart(Event):
    name = "step_start"
    step: int
    stepIndex: int
    id: str
    name_: str
    method: str
    url: str

    def to_dict(self) -> dict:
        d = dict(self.__dict__)
        d["name"] = d.pop("name_")
        return d


@dataclass
class InputRequired(Event):
    name = "input_required"
    step: int
    stepIndex: int
    name_: str
    prompts: dict

    def to_dict(self) -> dict:
        d = dict(self.__dict__)
        d["name"] = d.pop("name_")
        return d


@dataclass
class Paused(Event):
    name = "paused"
    step: int
    stepIndex: int
    resumeAt: int | None = None


@dataclass
class StepEvent(Event):
    """A step's full record.

    ``record`` keys: step, stepIndex, id, name, status (completed/failed/skipped),
    method, url, request {headers, body}, response {status, statusText, headers, body,
    size, truncated} or None, validations, substitutions, duration (s), attempts,
    error, skipReason, launchBrowser.
    """

    name = "step"
    record: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"executionId": self.executionId, **self.record}


@dataclass
class Error(Event):
    name = "error"
    message: str
    step: int | None = None


@dataclass
class End(Event):
    name = "end"
    success: bool
    interrupted: bool
    stepsExecuted: int
    stepsSkipped: int
    stepsFailed: int
    notRun: list
    duration: float
    executionLog: list


NAMES = tuple(
    cls.name for cls in (Start, StepStart, InputRequired, Paused, StepEvent, Error, End)
)
