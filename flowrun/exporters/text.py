"""A flow's strings as literal text and the placeholders to fill at run time."""

from __future__ import annotations

from dataclasses import dataclass

from flowrun.engine.placeholders import TOKEN, Ref, parse_ref


@dataclass(frozen=True)
class Part:
    """A piece of a flow string: ``text`` as written, or a placeholder ``ref``."""

    text: str = ""
    ref: Ref | None = None


def parts(value: str) -> list[Part]:
    """``value`` as literal text and placeholders (an escaped ``\\{{`` is text)."""
    out: list[Part] = []
    last = 0
    for m in TOKEN.finditer(value):
        if m.start() > last:
            out.append(Part(value[last : m.start()]))
        if m.group(1) is None:
            out.append(Part(m.group(0)[1:]))
        else:
            out.append(Part(ref=parse_ref(m.group(1))))
        last = m.end()
    if last < len(value):
        out.append(Part(value[last:]))
    return _joined(out)


def whole(value) -> Ref | None:
    """The placeholder a string is made of alone (it takes the value's type)."""
    if not isinstance(value, str):
        return None
    found = parts(value)
    return found[0].ref if len(found) == 1 and found[0].ref is not None else None


def _joined(found: list[Part]) -> list[Part]:
    out: list[Part] = []
    for part in found:
        if out and part.ref is None and out[-1].ref is None:
            out[-1] = Part(out[-1].text + part.text)
        else:
            out.append(part)
    return out
