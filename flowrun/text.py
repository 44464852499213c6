"""Text people hand flowrun: files and request contents, byte-order mark or not.

Editors on Windows (and Postman's own exports, now and then) start files with a
byte-order mark; Newman and most tools read them. Every file or content string flowrun
reads goes through here: a UTF-8 mark is dropped, and a UTF-16 or UTF-32 mark says how
to decode the bytes. Without a mark, text is UTF-8.
"""

from __future__ import annotations

import codecs
from pathlib import Path

# UTF-32's little-endian mark starts with UTF-16's: look for it first.
_MARKS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
BOM = "\ufeff"
ENCODINGS = "UTF-8 (or UTF-16/UTF-32 with a byte-order mark)"


def decode(data: bytes) -> str:
    """Decode ``data``: by its byte-order mark, else as UTF-8 (UnicodeDecodeError
    when it is not)."""
    for mark, codec in _MARKS:
        if data.startswith(mark):
            return data.decode(codec)
    return data.decode("utf-8")


def read(path) -> str:
    """The text of the file at ``path`` (OSError, UnicodeDecodeError)."""
    return decode(Path(path).read_bytes())


def unmarked(text: str) -> str:
    """``text`` without a leading byte-order mark (a decoded file may keep one)."""
    return text[1:] if text.startswith(BOM) else text
