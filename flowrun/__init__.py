"""flowrun: run multi-step HTTP API flows from a browser Studio or the command line.

The names below load their modules when first used, so that importing a small
part of flowrun (``flowrun.web.serving`` in gunicorn's master process, which must not
import ``requests`` before a gevent worker patches the standard library) does not
import the engine.
"""

from importlib import import_module

from flowrun.version import __version__

_LAZY = {
    "Controls": "engine.controls",
    "EngineSettings": "engine.run",
    "Run": "engine.run",
    "run_flow": "engine.run",
    "FlowError": "errors",
    "FlowInvalid": "errors",
    "StepError": "errors",
    "RunOptions": "engine.flow",
}

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


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'flowrun' has no attribute {name!r}")
    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def create_app(test_config=None):
    """Build the flowrun web app (Studio, API, demo target)."""
    from flowrun.web.app import create_app as _create_app

    return _create_app(test_config)
