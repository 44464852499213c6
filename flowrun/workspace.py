"""The workspace: flow files in ``FLOWRUN_FLOWS_DIR``, shared by Studio and the CLI.

Flows are plain ``NAME.json`` files (git-friendly); environments are files in its
``environments/`` folder, ``NAME.json`` (also ``NAME.yaml``, ``NAME.yml`` or
``NAME.env``, read in that order of preference). Names are ``[A-Za-z0-9_.-]+``,
not starting with ``.`` (no path traversal, no hidden files); files are replaced
atomically, so a reader never sees half a flow.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

from flowrun import environments, text
from flowrun.documents import DocumentError, decode
from flowrun.engine.flow import normalize
from flowrun.errors import FlowInvalid, located
from flowrun.jsontext import escape_surrogates
from flowrun.resources import examples_dir

FLOW_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
MAX_FLOW_NAME = 200  # file systems refuse names over 255 bytes (with ".json" added)
# The sample flows call the demo API of a server on the default port.
EXAMPLES_DEMO_URL = "http://127.0.0.1:8000/demo"


class Workspace:
    """The flow files of one directory."""

    def __init__(self, directory: str | os.PathLike):
        self.dir = Path(directory)

    def path(self, name: str) -> Path:
        """The file of flow ``name`` (``.json`` added); FlowInvalid for a bad name."""
        check_name(name, "flow")
        if not name.endswith(".json"):
            name += ".json"
        return self.dir / name

    def list(self) -> list[dict]:
        """``{name, modified, flowName, nodes}`` for every flow file, by name."""
        found = []
        for path in sorted(self.dir.glob("*.json")):
            if path.name.startswith("."):
                continue
            entry = {
                "name": path.name,
                "modified": time.strftime(
                    "%Y-%m-%dT%H:%M:%SZ", time.gmtime(path.stat().st_mtime)
                ),
            }
            try:
                doc = json.loads(text.read(path))
                entry["flowName"] = doc.get("name") if isinstance(doc, dict) else None
                nodes = normalize(doc).get("nodes") if isinstance(doc, dict) else None
                entry["nodes"] = len(nodes) if isinstance(nodes, list) else 0
            except (OSError, ValueError):
                entry["flowName"], entry["nodes"], entry["invalid"] = None, 0, True
            found.append(entry)
        return found

    def write(self, name: str, doc) -> bool:
        """Save ``doc`` as flow ``name``; True if the file is new."""
        path = self.path(name)
        created = not path.exists()
        path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(doc, indent=2, ensure_ascii=False)
        _replace(path, escape_surrogates(text) + "\n")
        return created

    def seed(self, port: int = 8000) -> None:
        """On first start (no workspace yet), copy the sample flows into it.

        The samples call the demo API at 127.0.0.1:8000; the copies call this
        server's own port (the server sends the steps' requests, so loopback is
        always right).
        """
        if self.dir.exists():
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        own = f"http://127.0.0.1:{port}/demo"
        for example in sorted(examples_dir().glob("*.json")):
            target = self.dir / example.name
            if not target.exists():
                text = example.read_text("utf-8").replace(EXAMPLES_DEMO_URL, own)
                _replace(target, text)

    # -- environments ---------------------------------------------------------------
    @property
    def environments_dir(self) -> Path:
        return self.dir / "environments"

    def environment_files(self, name: str) -> list[Path]:
        """The files that hold environment ``name``, the one that is read first."""
        name = environment_name(name)
        return [
            path
            for suffix in environments.SUFFIXES
            if (path := self.environments_dir / (name + suffix)).is_file()
        ]

    def environment(self, name: str) -> environments.Environment | None:
        """Environment ``name``, or None if there is none.

        Raises FlowInvalid (a bad name, a wrong shape) or DocumentError (a file
        that cannot be read or parsed), each naming the file.
        """
        files = self.environment_files(name)
        if not files:
            return None
        path = files[0]
        label = f"{self.environments_dir.name}/{path.name}"
        return read_environment(path, environment_name(name), label)

    def list_environments(self) -> list[dict]:
        """Every environment, by name: ``{name, variables, secrets, missing}``
        (and ``error`` for a file that cannot be read)."""
        names = set()
        if self.environments_dir.is_dir():
            for path in self.environments_dir.iterdir():
                stem, suffix = os.path.splitext(path.name)
                if suffix.lower() in environments.SUFFIXES and _valid_name(stem):
                    names.add(stem)
        found = []
        for name in sorted(names):
            try:
                env = self.environment(name)
            except (FlowInvalid, DocumentError) as exc:
                entry = {"name": name, "variables": {}, "secrets": [], "missing": []}
                entry["error"] = _problem(exc)
                found.append(entry)
                continue
            if env is not None:
                found.append(dict(env.to_dict(), missing=env.missing))
        return found

    def write_environment(self, env: environments.Environment) -> bool:
        """Save ``env`` as ``environments/NAME.json``; True if the name is new.

        A YAML or ``.env`` file of the same name is left as it is; the JSON file
        is the one read from now on.
        """
        created = not self.environment_files(env.name)
        path = self.environments_dir / (environment_name(env.name) + ".json")
        path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(env.document(), indent=2, ensure_ascii=False) + "\n"
        _replace(path, text)
        return created

    def delete_environment(self, name: str) -> bool:
        """Remove every file of environment ``name``; False if there was none."""
        files = self.environment_files(name)
        for path in files:
            path.unlink(missing_ok=True)
        return bool(files)


def read_environment(path, name: str | None = None, label: str | None = None):
    """The environment in the file at ``path`` (named after the file unless given).

    Raises DocumentError or FlowInvalid, naming the file as ``label`` (its path
    unless given).
    """
    path = Path(path)
    label = label or str(path)
    try:
        data = path.read_bytes()
    except IsADirectoryError:
        raise DocumentError(f"{label}: is a directory") from None
    except OSError as exc:
        raise DocumentError(f"{label}: cannot read: {exc.strerror or exc}") from None
    stem = name or os.path.splitext(path.name)[0]
    return environments.parse_text(stem, decode(data, label), label)


def _problem(exc: Exception) -> str:
    if isinstance(exc, FlowInvalid):
        first = exc.errors[0] if exc.errors else {}
        return f"{exc.message}: {first.get('path')}: {first.get('message')}"
    return str(exc)


def _valid_name(name: str) -> bool:
    return (
        0 < len(name) <= MAX_FLOW_NAME
        and FLOW_NAME.match(name) is not None
        and not name.startswith(".")
    )


def check_name(name: str, kind: str) -> None:
    """Raise FlowInvalid unless ``name`` is a valid flow or environment name."""
    if len(name) > MAX_FLOW_NAME:
        raise FlowInvalid(
            [
                located(
                    "name",
                    f"the name is {len(name)} characters long",
                    f"use at most {MAX_FLOW_NAME}",
                )
            ],
            f"Invalid {kind} name",
        )
    if not _valid_name(name):
        raise FlowInvalid(
            [
                located(
                    "name",
                    f"{name!r} is not a valid {kind} name",
                    "letters, digits, '_', '-' and '.', not starting with '.'",
                )
            ],
            f"Invalid {kind} name",
        )


def environment_name(name: str) -> str:
    """An environment's name, checked; a file suffix (``staging.json``) is dropped."""
    check_name(name, "environment")
    stem, suffix = os.path.splitext(name)
    if suffix.lower() in environments.SUFFIXES and stem:
        check_name(stem, "environment")
        return stem
    return name


def _replace(path: Path, text: str) -> None:
    """Write ``path`` atomically (a temporary file, then a rename)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, "utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
