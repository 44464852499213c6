"""Turn other tools' request collections into flows.

``convert(format, content)`` is the one entry point (used by ``POST /api/import`` and
``flowrun import``): ``format`` is ``postman``, ``curl`` or ``openapi``; ``content``
is the text. It returns a normalised, valid flow document, or raises
:class:`~flowrun.errors.FlowInvalid` for anything wrong with the input.
"""

from __future__ import annotations

from flowrun.errors import FlowInvalid, located
from flowrun.importers import curl, openapi, postman
from flowrun.importers._common import invalid

FORMATS = {"postman": postman, "curl": curl, "openapi": openapi}


def convert(format: str, content: str) -> dict:
    """Return the flow imported from ``content`` written in ``format``."""
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
    if not parsed and not content.strip():
        raise invalid(label, "content is empty")
    try:
        return module.convert(content)
    except FlowInvalid:
        raise
    except RecursionError:
        raise invalid(label, "the content is nested too deeply") from None
    except (AttributeError, IndexError, KeyError, TypeError, ValueError) as exc:
        # A shape the importer did not expect: still the input's fault, and the
        # person should get a message, not a server error.
        raise invalid(
            label, f"unexpected content ({type(exc).__name__}: {exc})"
        ) from exc


__all__ = ["FORMATS", "convert"]
