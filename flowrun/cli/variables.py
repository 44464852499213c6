"""The variables a CLI run is given, and the environment it runs in.

From lowest to highest precedence: the flow's ``variables``, the environment
(``--env NAME`` from the workspace, then ``--env-file PATH`` over it), then the run's
own: ``--vars-file``, ``FLOWRUN_VAR_<name>`` from this process's environment (the
CLI's only: a server never reads its environment for a flow), ``--var``.
"""

from __future__ import annotations

import os

import click

from flowrun.documents import DocumentError
from flowrun.environments import VARIABLE_NAME, Environment
from flowrun.errors import FlowInvalid
from flowrun.workspace import Workspace, read_environment

ENV_PREFIX = "FLOWRUN_VAR_"


def environment(name: str | None, path: str | None, flows_dir) -> Environment | None:
    """The environment ``--env`` and ``--env-file`` name (the file's over the
    workspace's), or None; a clear usage error when one cannot be read."""
    env = None
    if name is not None:
        workspace = Workspace(flows_dir)
        try:
            env = workspace.environment(name)
        except (DocumentError, FlowInvalid) as exc:
            raise click.BadParameter(_problem(exc), param_hint="'--env'") from None
        if env is None:
            known = [e["name"] for e in workspace.list_environments()]
            where = workspace.environments_dir
            raise click.BadParameter(
                f"no environment {name!r} in {where}"
                + (f" (there are: {', '.join(known)})" if known else ""),
                param_hint="'--env'",
            )
    if path is not None:
        try:
            from_file = read_environment(path)
        except (DocumentError, FlowInvalid) as exc:
            raise click.BadParameter(_problem(exc), param_hint="'--env-file'") from None
        if env is not None:  # layered over the workspace's, under its name
            from_file = Environment(
                env.name, from_file.variables, from_file.secrets
            ).over(env)
        env = from_file
    return env


def _problem(exc: Exception) -> str:
    if isinstance(exc, FlowInvalid):
        source = getattr(exc, "source", "")
        return "; ".join(
            f"{source + ': ' if source else ''}{e.get('path')}: {e.get('message')}"
            for e in exc.errors
        )
    return str(exc)


def declaring(doc, names) -> dict:
    """``doc`` with ``names`` declared among its variables, for validation: names
    a run supplies (the environment, --var) are defined, whatever the flow says."""
    if not names or not isinstance(doc, dict):
        return doc
    own = doc.get("variables")
    if own is not None and not isinstance(own, dict):
        return doc  # the schema says what is wrong with it
    return {**doc, "variables": {**dict.fromkeys(names), **(own or {})}}


def from_process(environ=None) -> dict:
    """``FLOWRUN_VAR_<name>=value`` variables of this process's environment (text)."""
    environ = os.environ if environ is None else environ
    found = {}
    for key, value in environ.items():
        if key.startswith(ENV_PREFIX) and len(key) > len(ENV_PREFIX):
            name = key[len(ENV_PREFIX) :]
            if VARIABLE_NAME.match(name):
                found[name] = value
    return found
