"""Secrets masked in what is stored: ``Masker`` turns a step record into its
history form, with secret header values and secret variables replaced by ``MASK``."""

from __future__ import annotations

import re

from flowrun.jsontext import dumps as _dumps

SECRET_HEADERS = frozenset(
    ("authorization", "cookie", "set-cookie", "proxy-authorization")
)


MASK = "********"


class Masker:
    """Mask secrets in a step record before it is stored.

    Header values of Authorization, Cookie, Set-Cookie and Proxy-Authorization, and
    the values of variables (or prompt answers) named in ``FLOWRUN_SECRET_VARS``
    wherever they appear: substitutions, URL, request headers and body.
    """

    def __init__(self, secret_names, variables: dict, inputs: dict):
        self.names = frozenset(secret_names)
        self.variables = variables
        self.inputs = inputs
        # Secret header values seen so far in this run: a token sent as a header by
        # one step stays a secret when a later step puts it in a body or URL.
        self.seen: set[str] = set()

    def _secret_values(self, record: dict | None = None) -> list[str]:
        values = set()
        for pool in (self.variables, self.inputs):
            for name in self.names:
                if name in pool and pool[name] not in (None, ""):
                    value = pool[name]
                    values.add(value if isinstance(value, str) else _dumps(value))
        # A secret header's value is also a secret wherever else it shows up (an
        # echoed request, a token in a URL): the whole value, the credential after
        # "Bearer ", each cookie's value.
        for part in ("request", "response"):
            headers = ((record or {}).get(part) or {}).get("headers") or {}
            for k, v in headers.items():
                if k.lower() not in SECRET_HEADERS or not isinstance(v, str):
                    continue
                values.add(v)
                scheme, _, credential = v.partition(" ")
                if credential and k.lower().endswith("authorization"):
                    values.add(credential.strip())
                if "cookie" in k.lower():
                    for pair in v.split(";"):
                        _, eq, cookie = pair.partition("=")
                        if eq and cookie.strip() and "cookie" in k.lower():
                            values.add(cookie.strip())
        self.seen.update(v for v in values if len(v) >= 3)
        values |= self.seen
        # Longest first, so a secret containing another is replaced whole; very
        # short values (flags like "1") would mask unrelated text, so skip them.
        return sorted((v for v in values if len(v) >= 3), key=len, reverse=True)

    def needed(self, record: dict) -> bool:
        if self.seen:
            return True
        for part in ("request", "response"):
            headers = (record.get(part) or {}).get("headers") or {}
            for k in headers:
                if k.lower() in SECRET_HEADERS:
                    return True
        return bool(self.names) and bool(self._secret_values())

    def masked_json(self, record: dict, text: str) -> str:
        """``_dumps(self.mask(record))``, given ``text``, the record's JSON unmasked.

        Where it gives the same JSON, each secret is replaced in ``text`` itself
        (a few ``str`` operations instead of copying the record and encoding it
        again): when every secret is plain text that can only ever sit inside
        one JSON string value, never in a key, a number, a literal or an escape
        sequence, and the masking by name (secret headers, secret variables)
        masks nothing a replace would not. Otherwise the record is masked.
        """
        values = self._secret_values(record)
        if self._replaceable(record, values, text):
            for secret in values:  # longest first, as _Scrubber does
                if secret in text:
                    text = text.replace(secret, MASK)
            return text
        return _dumps(self._mask(record, values))

    def _replaceable(self, record: dict, values: list[str], text: str) -> bool:
        if self.names and not self.names.isdisjoint([*self.variables, *self.inputs]):
            return False  # substitutions are masked by name
        for part in ("request", "response"):
            headers = (record.get(part) or {}).get("headers") or {}
            for k, v in headers.items():
                # A secret header is masked whole; a replace does the same only
                # for a value that is itself one of the secrets.
                if k.lower() in SECRET_HEADERS and not (
                    isinstance(v, str) and len(v) >= 3
                ):
                    return False
        if "\\u" in text:
            return False
        for secret in values:
            if (
                _TEXT_SAFE.fullmatch(secret) is None
                or _NUMBER_CHARS.issuperset(secret)
                or any(secret in literal for literal in _LITERALS)
                or "\\" + secret in text
                or _in_a_key(text, secret)
            ):
                return False
        return True

    def mask(self, record: dict) -> dict:
        return self._mask(record, self._secret_values(record))

    def _mask(self, record: dict, values: list[str]) -> dict:
        scrub = _Scrubber(values).scrub
        record = scrub(record)
        for part in ("request", "response"):
            section = record.get(part)
            if section and section.get("headers"):
                section["headers"] = {
                    k: MASK if k.lower() in SECRET_HEADERS else v
                    for k, v in section["headers"].items()
                }
        subs = record.get("substitutions") or []
        for sub in subs:
            name = _placeholder_name(sub.get("placeholder", ""))
            if sub.get("type") in ("variable", "input") and name in self.names:
                sub["value"] = MASK
        return record


# A secret that can be replaced in a record's JSON text: no quote, backslash,
# control character or JSON punctuation, so any occurrence lies inside one
# string token; not made only of number characters; not part of a literal.
_TEXT_SAFE = re.compile(r'[^"\\\x00-\x1f,:{}\[\]]+')


_NUMBER_CHARS = frozenset("0123456789.eE+-")


_LITERALS = ("true", "false", "null", "NaN", "Infinity")


def _in_a_key(text: str, secret: str) -> bool:
    """Whether ``secret`` occurs in an object key of the JSON ``text``."""
    at = text.find(secret)
    while at >= 0:
        # The string holding this occurrence ends at the next unescaped quote.
        end = text.find('"', at + len(secret))
        while end > 0 and _escaped(text, end):
            end = text.find('"', end + 1)
        if end >= 0 and text.startswith(":", end + 1):
            return True
        at = text.find(secret, at + 1)
    return False


def _escaped(text: str, at: int) -> bool:
    backslashes = 0
    while at - backslashes - 1 >= 0 and text[at - backslashes - 1] == "\\":
        backslashes += 1
    return backslashes % 2 == 1


_PLAIN = frozenset((int, float, bool, type(None)))


class _Scrubber:
    """A copy of a record with every secret value replaced by ``MASK``.

    Strings have each secret (longest first) replaced; a value that is not a
    string, dict, list or bool and whose JSON is a secret becomes ``MASK``. Dicts
    and lists are copied; keys are kept. Numbers, booleans and null are passed
    over without being encoded when no secret looks like one (no secret starts
    with a digit or ``-`` or is ``null``/``NaN``/``Infinity``), which is what
    encoding them would have found.
    """

    __slots__ = ("values", "plain")

    def __init__(self, values: list[str]):
        self.values = values
        scalar_like = any(
            v[:1] in _SCALAR_STARTS or v in ("null", "NaN", "Infinity") for v in values
        )
        self.plain = _PLAIN if not scalar_like else frozenset((bool,))

    def scrub(self, value):
        kind = type(value)
        if kind is dict:
            return self._dict(value)
        if kind is list:
            return self._list(value)
        if kind is str:
            for secret in self.values:
                if secret in value:
                    value = value.replace(secret, MASK)
            return value
        if kind in self.plain:
            return value
        return self._other(value)

    def _dict(self, value: dict) -> dict:
        values, plain, out = self.values, self.plain, {}
        for k, v in value.items():
            kind = type(v)
            if kind is str:
                for secret in values:
                    if secret in v:
                        v = v.replace(secret, MASK)
            elif kind is dict:
                v = self._dict(v)
            elif kind is list:
                v = self._list(v)
            elif kind not in plain:
                v = self._other(v)
            out[k] = v
        return out

    def _list(self, value: list) -> list:
        return [self.scrub(v) for v in value]

    def _other(self, value):
        # Subclasses and other types, as the generic rule has it.
        values = self.values
        if isinstance(value, str):
            for secret in values:
                if secret in value:
                    value = value.replace(secret, MASK)
            return value
        if isinstance(value, dict):
            return {k: self.scrub(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.scrub(v) for v in value]
        if values and not isinstance(value, bool) and _dumps(value) in values:
            return MASK
        return value


_SCALAR_STARTS = frozenset("-0123456789")


def _placeholder_name(placeholder: str) -> str:
    inner = placeholder.strip("{} ")
    parts = inner.split(".")
    return parts[2] if len(parts) > 2 else ""
