"""flowrun: run multi-step HTTP API flows from a browser Studio or the command line."""

from .engine import Controls, EngineSettings, Run, run_flow
from .errors import FlowError, FlowInvalid, StepError
from .flow import RunOptions

__version__ = "0.1.0"

__all__ = [
    "Controls",
    "EngineSettings",
    "FlowError",
    "FlowInvalid",
    "Run",
    "RunOptions",
    "StepError",
    "__version__",
    "create_app",
    "run_flow",
]


def create_app(test_config=None):
    """Build the flowrun web app (Studio, API, demo target)."""
    from .web import create_app as _create_app

    return _create_app(test_config)
