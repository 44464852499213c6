"""Turn other tools' request collections into flows.

``load(format, content)`` is the one entry point (used by ``POST /api/import``,
``flowrun import`` and ``bench/import_corpus.py``): ``format`` is ``postman``,
``curl`` or ``openapi``; ``content`` is the text (a byte-order mark is allowed). It
returns :class:`Imported`: a normalised, valid flow and a :class:`Report` counting
the requests found, imported as they were, imported with notes, skipped by default
and left out, with every note located by the request it is about. It raises
:class:`~flowrun.errors.FlowInvalid` only when nothing can be imported at all.
``convert()`` returns just the flow.
"""

from __future__ import annotations

from flowrun import text
from flowrun.errors import FlowInvalid, located
from flowrun.importers import curl, openapi, postman
from flowrun.importers._common import DEFAULT_MAX_NODES, Imported, Report, invalid

FORMATS = {"postman": postman, "curl": curl, "openapi": openapi}
UNEXPECTED = "unexpected content"


def load(
    format: str, content, *, path=None, max_steps: int = DEFAULT_MAX_NODES
) -> Imported:
    """Import ``content`` written in ``format``.

    ``path``: the file the content came from, so an OpenAPI document's ``$ref`` to a
    neighbouring file can be followed (without it, such a reference is noted).
    ``max_steps``: the most nodes a flow may have (``FLOWRUN_MAX_STEPS``); requests
    past it are left out with a note.
    """
    module = FORMATS.get(format) if isinstance(format, str) else None
    if module is None:
        raise FlowInvalid(
            [
                located(
                    "format",
                    f"unknown import format {format!r}",
                    f"Use one of: {', '.join(FORMATS)}.",
                )
            ],
            f"Cannot import: unknown format {format!r}",
        )
    label = module.LABEL
    # Postman and OpenAPI documents may also arrive already parsed.
    parsed = isinstance(content, dict) and module is not curl
    if not parsed and not isinstance(content, str):
        raise invalid(label, "content must be a string")
    if not parsed:
        content = text.unmarked(content)
        if not content.strip():
            raise invalid(label, "content is empty")
    try:
        return module.read(content, max_steps, path)
    except FlowInvalid:
        raise
    except RecursionError:
        raise invalid(label, "the content is nested too deeply") from None
    except (AttributeError, IndexError, KeyError, TypeError, ValueError) as exc:
        # A shape the importer did not expect: the person gets a message, not a
        # server error (bench/import_corpus.py counts these as crashes).
        raise invalid(label, f"{UNEXPECTED} ({type(exc).__name__}: {exc})") from exc


def convert(format: str, content, **options) -> dict:
    """The flow imported from ``content`` written in ``format`` (see :func:`load`)."""
    return load(format, content, **options).flow


__all__ = ["FORMATS", "UNEXPECTED", "Imported", "Report", "convert", "load"]
