"""Postman environment (or globals) export → a flowrun environment.

``{"name", "values": [{"key", "value", "type": "default"|"secret", "enabled"}]}``
becomes ``{"variables": {…}, "secrets": […]}``: names are made usable in
``{{ .vars.NAME }}`` as the collection importer makes them (so the two match);
``secret`` values, and values whose name looks secret, are secrets; a secret with no
value is declared by name only, to be given at run time; ``{{other}}`` inside a
value is filled in from the same environment. Everything that is not carried over
as it was is said in a note.
"""

from __future__ import annotations

import re

from flowrun.importers._common import invalid, load_json, var_name
from flowrun.store.masking import looks_secret

LABEL = "Postman environment"
_HINT = "Export the environment from Postman (Environments → … → Export)."
_PM_VAR = re.compile(r"\{\{\s*([^{}]+?)\s*\}\}")


def convert(content) -> tuple[dict, list[str]]:
    """``(environment document, notes)`` from a Postman environment export."""
    doc = load_json(LABEL, content, _HINT) if isinstance(content, str) else content
    if not isinstance(doc, dict) or not isinstance(doc.get("values"), list):
        raise invalid(LABEL, "not a Postman environment (no 'values' list)", hint=_HINT)
    notes: list[str] = []
    variables: dict = {}
    secrets: list[str] = []
    for i, entry in enumerate(doc["values"]):
        if not isinstance(entry, dict) or not isinstance(entry.get("key"), str):
            notes.append(f"values[{i}]: not a {{key, value}} entry: skipped")
            continue
        key = entry["key"]
        name = var_name(key)
        if entry.get("enabled") is False:
            notes.append(f"'{key}' is disabled in Postman: not imported")
            continue
        if name != key:
            notes.append(f"'{key}' became '{name}' (as in imported collections)")
        if name in variables or name in secrets:
            notes.append(f"'{key}': a second value for '{name}': the last one kept")
        value = entry.get("value")
        secret = entry.get("type") == "secret"
        if secret and value in (None, ""):
            variables.pop(name, None)
            if name not in secrets:
                secrets.append(name)
            notes.append(
                f"secret '{name}' has no value in the export: give it at run time "
                f"(--var {name}=…, FLOWRUN_VAR_{name}, or options.variables)"
            )
            continue
        variables[name] = "" if value is None else value
        if (secret or (looks_secret(name) and value)) and name not in secrets:
            secrets.append(name)
    for name, value in list(variables.items()):
        if isinstance(value, str) and _PM_VAR.search(value):
            variables[name] = _fill(name, value, variables, secrets, notes)
    return {"variables": variables, "secrets": secrets}, notes


def _fill(name: str, value: str, variables: dict, secrets: list, notes: list) -> str:
    """Fill in ``{{other}}`` from the environment's own plain values (Postman
    expands them when it sends; flowrun does not expand variables in variables)."""

    def repl(m):
        other = var_name(m.group(1))
        found = variables.get(other)
        if other in secrets or not isinstance(found, (str, int, float, bool)):
            notes.append(
                f"'{name}' refers to {m.group(0)}, which this environment has no "
                "plain value for: kept as written"
            )
            return m.group(0)
        if isinstance(found, str) and _PM_VAR.search(found):
            notes.append(f"'{name}' refers to {m.group(0)} twice removed: kept")
            return m.group(0)
        return str(found).lower() if isinstance(found, bool) else str(found)

    return _PM_VAR.sub(repl, value)


def apply(flow: dict, env: dict) -> list[str]:
    """Use an imported environment in an imported collection's flow.

    For the variables the flow uses (the collection importer declares each one):
    the environment's plain values go over the collection's (as Postman ranks
    them); its secrets go in the flow's ``secrets`` with no value (a flow file is
    no place for one). The environment's other variables are left out.
    """
    notes = []
    variables = dict(flow.get("variables") or {})
    for name, value in env["variables"].items():
        if name in variables and name not in env["secrets"]:
            variables[name] = value
    secrets = list(flow.get("secrets") or [])
    for name in env["secrets"]:
        if name not in variables:
            continue
        del variables[name]
        if name not in secrets:
            secrets.append(name)
        notes.append(
            f"secret '{name}' is declared in the flow without its value: give it "
            f"at run time (--var {name}=…, FLOWRUN_VAR_{name}, or an environment)"
        )
    flow["variables"] = variables
    if secrets:
        flow["secrets"] = secrets
    return notes
