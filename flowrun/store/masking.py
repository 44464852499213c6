"""Secrets masked in everything flowrun shows: ``MASK`` stands in for each.

Two layers:

- ``Secrets``, used by the engine for every event of a run (the live stream, the
  CLI, reports, history): the values of variables declared secret (an
  environment's or the flow's ``secrets``, ``FLOWRUN_SECRET_VARS``) and of prompt
  answers whose key ``looks_secret``, in every form a request gives them: as
  written, percent-encoded, JSON-escaped, base64 (in Basic auth and elsewhere).
  Only the wire carries the values themselves.
- ``Masker``, for what is stored and reported: also the header values of
  Authorization, Cookie, Set-Cookie and Proxy-Authorization, whatever they hold,
  and those values wherever else they show up later in the run.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from urllib.parse import quote, quote_plus, unquote_plus

from flowrun.jsontext import dumps as _dumps

SECRET_HEADERS = frozenset(
    ("authorization", "cookie", "set-cookie", "proxy-authorization")
)


MASK = "••••"

# MASK as a stored record's JSON text spells it: escaped, so that the text of a
# record stays ASCII. One "•" would make Python hold the whole text at two bytes a
# character and encode it again for the database; a reader gets "••••" back.
_MASK_JSON = json.dumps(MASK)[1:-1]


# A variable or prompt key containing one of these (any case) holds a secret.
SECRET_WORDS = ("pass", "secret", "token", "otp", "key")


# Values shorter than this are masked where they are substituted, not wherever
# they occur: a flag like "1" would mask unrelated text.
MIN_SECRET = 3


def looks_secret(name: str) -> bool:
    """Whether a variable or prompt key names a secret (``apiKey``, ``password``)."""
    lower = str(name).lower()
    return any(word in lower for word in SECRET_WORDS)


# What requests leaves unquoted when it re-quotes a URL (requote_uri).
_URL_SAFE = "!#$%&'()*+,/:;=?@[]~"
_PERCENT = re.compile(r"%[0-9A-F]{2}")
# The credential of a Basic Authorization value (RFC 7617), wherever it is shown.
_BASIC = re.compile(r"\bBasic\s+([A-Za-z0-9+/]{4,}={0,2})", re.IGNORECASE)
# A base64 stretch shorter than this could match unrelated text by chance.
_MIN_BASE64 = 8


def encoded_forms(value: str) -> set[str]:
    """``value`` and how a request or response may spell it.

    Percent-encoded (as a query or form value, as requests re-quotes URLs; either
    case of hex digits; decoded again by a server), JSON-escaped, UTF-8 read as
    latin-1 (an echoed header), and the stretches of its base64 encoding that do
    not depend on what surrounds it (standard and URL-safe alphabets).
    """
    requoted = quote(value, safe=_URL_SAFE)
    # As a server decodes a query that carried it unquoted ("+" read as a space).
    forms = {value, unquote_plus(requoted)}
    for encoded in (
        quote(value, safe=""),
        quote(value, safe="/"),
        requoted,
        quote_plus(value),
    ):
        forms.add(encoded)
        forms.add(_PERCENT.sub(lambda m: m.group(0).lower(), encoded))
    forms.add(json.dumps(value)[1:-1])
    forms.add(json.dumps(value, ensure_ascii=False)[1:-1])
    raw = value.encode()
    # A header value is sent as UTF-8 and read back (HTTP's default) as latin-1.
    forms.add(raw.decode("latin-1"))
    for lead in range(3):
        core = _base64_core(raw, lead)
        if len(core) >= _MIN_BASE64:
            forms.add(core)
            forms.add(core.replace("+", "-").replace("/", "_"))
    return {f for f in forms if len(f) >= MIN_SECRET}


def _base64_core(raw: bytes, lead: int) -> str:
    """The characters of a base64 encoding set by ``raw`` alone, when ``raw``
    starts ``lead`` bytes into a 3-byte group: the rest mix in its neighbours."""
    encoded = base64.b64encode(bytes(lead) + raw).decode()
    start = (0, 2, 3)[lead]
    total = lead + len(raw)
    end = 4 * (total // 3) + (0, 1, 2)[total % 3]
    return encoded[start:end]


def _leaves(value) -> list[str]:
    """A secret value's text: itself, or each scalar inside an object or array."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _leaves(v)]
    if isinstance(value, list):
        return [t for v in value for t in _leaves(v)]
    if value is None or isinstance(value, bool):
        return []
    return [_dumps(value)]


class Secrets:
    """The secrets of one run, masked in every event it yields.

    ``names``: variables declared secret; prompt answers whose key looks secret
    are added as they arrive. ``variables`` and ``inputs`` are the run's own dicts,
    read again when an answer has been added.
    """

    def __init__(self, names, variables: dict, inputs: dict):
        self.declared = frozenset(names)
        self.variables = variables
        self.inputs = inputs
        self._seen_inputs = -1
        self.names: frozenset = frozenset()
        # (value, its forms) for each secret value, longest value first.
        self._groups: list[tuple[str, frozenset]] = []

    def _refresh(self) -> None:
        if self._seen_inputs == len(self.inputs):
            return
        self._seen_inputs = len(self.inputs)
        self.names = self.declared | {k for k in self.inputs if looks_secret(k)}
        values = set()
        for pool in (self.variables, self.inputs):
            for name in self.names:
                if name in pool:
                    values.update(_leaves(pool[name]))
        values = sorted((v for v in values if len(v) >= MIN_SECRET), key=len)
        self._groups = [(v, frozenset(encoded_forms(v))) for v in reversed(values)]

    @property
    def active(self) -> bool:
        """Whether this run has anything to mask (so far)."""
        self._refresh()
        return bool(self.names)

    def mask(self, value):
        """A copy of ``value`` (any JSON value, or a step record) with every
        secret replaced by ``MASK``; ``value`` itself when it holds none."""
        if not self.active:
            return value
        text = value if isinstance(value, str) else _dumps(value)
        found = set()
        for secret, forms in self._groups:
            if any(form in text for form in forms):
                found.update(forms)
                found.add(secret)
        for match in _BASIC.finditer(text):
            if self._hides_secret(match.group(1)):
                found.add(match.group(1))
        by_name = _secret_substitutions(value, self.names)
        if not found and not by_name:
            return value
        values = sorted(found, key=len, reverse=True)
        value = _Scrubber(values).scrub(value)
        if by_name:
            for sub in value["substitutions"]:
                if _placeholder_name(sub.get("placeholder", "")) in self.names and (
                    sub.get("type") in ("variable", "input")
                ):
                    sub["value"] = MASK
        return value

    def _hides_secret(self, credential: str) -> bool:
        try:
            decoded = base64.b64decode(credential, validate=True).decode(
                "utf-8", "replace"
            )
        except (binascii.Error, ValueError):
            return False
        return any(secret in decoded for secret, _ in self._groups)


def _secret_substitutions(value, names: frozenset) -> bool:
    """Whether ``value`` is a step record substituting a secret by name."""
    if not isinstance(value, dict) or not value.get("substitutions"):
        return False
    return any(
        sub.get("type") in ("variable", "input")
        and _placeholder_name(sub.get("placeholder", "")) in names
        for sub in value["substitutions"]
        if isinstance(sub, dict)
    )


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
                    text = text.replace(secret, _MASK_JSON)
            return text
        return _dumps(self._mask(record, values)).replace(MASK, _MASK_JSON)

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
