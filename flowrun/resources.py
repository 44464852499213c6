"""Where Studio's templates and static files, the sample flows and gunicorn's
settings are: in a checkout or in an installed package.

In the repository they are the top-level ``templates/``, ``static/``, ``examples/``
and ``gunicorn.conf.py``, next to the ``flowrun`` package. The wheel carries them
inside the package (``flowrun/templates`` and so on, mapped by ``pyproject.toml``),
so an installed flowrun finds them there.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
CHECKOUT = PACKAGE.parent


def _find(name: str) -> Path:
    """The installed copy of ``name`` if the package has one, else the checkout's."""
    installed = PACKAGE / name
    return installed if installed.exists() else CHECKOUT / name


def root() -> Path:
    """The folder that holds ``templates/`` and ``static/`` (Flask's root path)."""
    return templates_dir().parent


def templates_dir() -> Path:
    return _find("templates")


def static_dir() -> Path:
    return _find("static")


def examples_dir() -> Path:
    return _find("examples")


def gunicorn_config() -> Path:
    return _find("gunicorn.conf.py")
