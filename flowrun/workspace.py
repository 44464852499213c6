"""The workspace: flow files in ``FLOWRUN_FLOWS_DIR``, shared by Studio and the CLI.

Flows are plain ``NAME.json`` files (git-friendly). Names are
``[A-Za-z0-9_.-]+``, not starting with ``.`` (no path traversal, no hidden files);
files are replaced atomically, so a reader never sees half a flow.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

from flowrun import text
from flowrun.engine.flow import normalize
from flowrun.errors import FlowInvalid, located
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
        if len(name) > MAX_FLOW_NAME:
            raise FlowInvalid(
                [
                    located(
                        "name",
                        f"the name is {len(name)} characters long",
                        f"use at most {MAX_FLOW_NAME}",
                    )
                ],
                "Invalid flow name",
            )
        if not FLOW_NAME.match(name) or name.startswith("."):
            raise FlowInvalid(
                [
                    located(
                        "name",
                        f"{name!r} is not a valid flow name",
                        "letters, digits, '_', '-' and '.', not starting with '.'",
                    )
                ],
                "Invalid flow name",
            )
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
        _replace(path, json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
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


def _replace(path: Path, text: str) -> None:
    """Write ``path`` atomically (a temporary file, then a rename)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, "utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
