"""Write a flow in other tools' formats, so people can leave as easily as they come.

``export(format, doc)``: ``curl`` gives a bash script of curl commands (``curl.py``),
``postman`` a Postman Collection v2.1 that Newman runs (``postman.py``). The flow is
checked first (FlowInvalid as for a run). Both read a flow's text through
``text.parts``: literal text, and the placeholders to fill at run time.
"""

from __future__ import annotations

from flowrun.engine import validation
from flowrun.exporters import curl, postman

WRITERS = {"curl": curl.script, "postman": postman.text}
FORMATS = tuple(WRITERS)


def export(format: str, doc, max_steps: int = 1000) -> str:
    """The flow ``doc`` written as ``format`` (``curl`` or ``postman``)."""
    if format not in WRITERS:
        raise ValueError(f"unknown export format {format!r}")
    return WRITERS[format](validation.load(doc, max_steps))
