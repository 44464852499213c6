"""Form encoding of object bodies (``application/x-www-form-urlencoded``)."""

from __future__ import annotations

from urllib.parse import quote

from flowrun.jsontext import clean


def encode_form(value, prefix: str = "") -> list[tuple[str, str]]:
    """Flatten an object into form pairs: nested keys ``a[b]``, arrays ``a[]``."""
    from flowrun.engine.paths import js_str

    pairs: list[tuple[str, str]] = []
    if isinstance(value, dict):
        for k, v in value.items():
            key = f"{prefix}[{k}]" if prefix else str(k)
            pairs.extend(encode_form(v, key))
    elif isinstance(value, list):
        for v in value:
            pairs.extend(encode_form(v, f"{prefix}[]"))
    else:
        pairs.append((prefix, "" if value is None else js_str(value)))
    return pairs


def form_urlencode(value) -> str:
    # clean: a lone surrogate (from a target's JSON) cannot be UTF-8 encoded
    return "&".join(
        f"{quote(clean(k), safe='[]')}={quote(clean(v), safe='')}"
        for k, v in encode_form(value)
    )
