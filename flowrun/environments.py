"""Environments: named sets of variables, some of them secret, kept as files.

An environment file is JSON or YAML, ``{"variables": {NAME: value, …}, "secrets":
[NAME, …]}``, or a ``.env`` file of ``NAME=value`` lines. A secret either has its
value in ``variables`` (for local use) or is declared by name only and given when
the flow runs. In a ``.env`` file a name that looks secret (``looks_secret``) is a
secret, and a line holding a name alone declares one given at run time.

Variables resolve in one order everywhere: run options (``--var``) over the
environment over the flow's own ``variables``.
"""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass, field

from flowrun.documents import DocumentError, is_yaml, parse
from flowrun.errors import FlowInvalid, located
from flowrun.store.masking import looks_secret

# The names a placeholder can use: {{ .vars.NAME }}.
VARIABLE_NAME = re.compile(r"^[A-Za-z0-9_-]+$")
SUFFIXES = (".json", ".yaml", ".yml", ".env")
_KEYS = ("variables", "secrets", "name")


@dataclass
class Environment:
    """A named set of variables; ``secrets`` names those whose values are masked."""

    name: str
    variables: dict = field(default_factory=dict)
    secrets: list = field(default_factory=list)

    @property
    def missing(self) -> list[str]:
        """Secrets declared by name only: their values are given at run time."""
        return [s for s in self.secrets if s not in self.variables]

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "variables": self.variables,
            "secrets": self.secrets,
        }

    def document(self) -> dict:
        """The file's content (the name is the file's)."""
        return {"variables": self.variables, "secrets": self.secrets}

    def over(self, other: Environment | None) -> Environment:
        """This environment's variables and secrets layered over ``other``'s."""
        if other is None:
            return self
        secrets = list(other.secrets)
        secrets += [s for s in self.secrets if s not in secrets]
        return Environment(self.name, {**other.variables, **self.variables}, secrets)


def from_document(name: str, doc, where: str = "") -> Environment:
    """Check an environment document; FlowInvalid names every bad field."""
    prefix = f"{where}." if where else ""
    if not isinstance(doc, dict):
        raise FlowInvalid(
            [
                located(
                    where or "environment",
                    "an environment must be an object",
                    'write {"variables": {…}, "secrets": […]}',
                )
            ],
            "Invalid environment",
        )
    errors = []
    for key in doc:
        if key not in _KEYS:
            errors.append(
                located(
                    f"{prefix}{key}",
                    f"unknown field '{key}'",
                    "an environment has variables and secrets",
                )
            )
    variables = doc.get("variables", {})
    if not isinstance(variables, dict):
        errors.append(located(f"{prefix}variables", "must be an object"))
        variables = {}
    for var in variables:
        if not VARIABLE_NAME.match(var):
            errors.append(
                located(
                    f"{prefix}variables[{json.dumps(var, ensure_ascii=False)}]",
                    f"'{var}' is not a variable name",
                    "letters, digits, '_' and '-' (as in {{ .vars.NAME }})",
                )
            )
    secrets = doc.get("secrets", [])
    if not isinstance(secrets, list):
        errors.append(located(f"{prefix}secrets", "must be an array of names"))
        secrets = []
    seen = set()
    for i, secret in enumerate(secrets):
        if not isinstance(secret, str) or not VARIABLE_NAME.match(secret):
            errors.append(
                located(
                    f"{prefix}secrets[{i}]",
                    f"{secret!r} is not a variable name",
                    "letters, digits, '_' and '-' (as in {{ .vars.NAME }})",
                )
            )
        elif secret in seen:
            errors.append(located(f"{prefix}secrets[{i}]", f"'{secret}' is twice"))
        seen.add(secret)
    if errors:
        raise FlowInvalid(errors, "Invalid environment")
    return Environment(name, dict(variables), list(secrets))


def parse_text(name: str, text: str, filename: str) -> Environment:
    """An environment from a file's text (JSON, YAML or ``.env``, by its name).

    Raises DocumentError (unreadable text) or FlowInvalid (a wrong shape), each
    naming ``filename``.
    """
    if filename.lower().endswith(".env"):
        return parse_dotenv(name, text, filename)
    doc = parse(text, filename, yaml=is_yaml(filename))
    try:
        return from_document(name, doc)
    except FlowInvalid as exc:
        exc.source = filename
        raise


def parse_dotenv(name: str, text: str, filename: str) -> Environment:
    """A ``.env`` file: ``NAME=value`` lines (``export``, quotes and ``#`` comments
    as python-dotenv reads them; ``${…}`` is kept as written, never expanded)."""
    from dotenv.parser import parse_stream

    variables, secrets = {}, []
    for binding in parse_stream(io.StringIO(text)):
        line = binding.original.line
        if binding.error:
            raise DocumentError(
                f"{filename}: line {line}: not NAME=value: "
                f"{binding.original.string.strip()[:80]!r}"
            )
        key = binding.key
        if key is None:  # a blank or comment line
            continue
        if not VARIABLE_NAME.match(key):
            raise DocumentError(
                f"{filename}: line {line}: '{key}' is not a variable name "
                "(letters, digits, '_' and '-')"
            )
        if binding.value is None:  # a name alone: a secret given at run time
            if key not in secrets:
                secrets.append(key)
            continue
        variables[key] = binding.value
        if looks_secret(key) and key not in secrets:
            secrets.append(key)
    return Environment(name, variables, secrets)


def resolve(flow: dict, options) -> list[str]:
    """Secrets the run would have no value for: declared (by the environment or
    the flow's ``secrets``) but given nowhere, and not asked for by a prompt."""
    have = {
        **(flow.get("variables") or {}),
        **options.env_variables,
        **options.variables,
    }
    prompted = set()
    for node in flow.get("nodes") or ():
        prompted.update(node.get("userPrompts") or ())
    declared = [*options.env_secrets, *(flow.get("secrets") or ())]
    missing = []
    for name in declared:
        if name not in have and name not in prompted and name not in missing:
            missing.append(name)
    return missing
