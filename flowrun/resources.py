"""Where Studio's templates and static files and the sample flows are.

They live in the top-level ``templates/``, ``static/`` and ``examples/`` folders of
the repository, next to the ``flowrun`` package.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def templates_dir() -> Path:
    return ROOT / "templates"


def static_dir() -> Path:
    return ROOT / "static"


def examples_dir() -> Path:
    return ROOT / "examples"
