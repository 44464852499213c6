"""Read the documents people write by hand: JSON or YAML text, from bytes or a file.

Flows and environments are read the same way wherever they come from (a file, a
directory, standard input): bytes are decoded as UTF-8, or as UTF-16/UTF-32 when a
byte-order mark says so (a UTF-8 mark is dropped); the text is JSON, or YAML when
the file's name says so (or when it is not JSON and has no name). A problem is a
``DocumentError`` whose message names the source, the line and the column.
"""

from __future__ import annotations

import json

from flowrun import text

YAML_SUFFIXES = (".yaml", ".yml")


class DocumentError(ValueError):
    """A document that cannot be read or parsed; the message says where and why."""


def decode(data: bytes, source: str) -> str:
    """Text of ``data``: UTF-8, or the encoding its byte-order mark names."""
    try:
        return text.decode(data)
    except UnicodeDecodeError as exc:
        raise DocumentError(
            f"{source}: not {text.ENCODINGS} text (byte {exc.start})"
        ) from None


def is_yaml(name: str) -> bool:
    return name.lower().endswith(YAML_SUFFIXES)


def parse(text: str, source: str, yaml: bool | None = None):
    """Parse JSON (or YAML) text; ``yaml=None`` tries JSON first, then YAML."""
    from flowrun.engine.validation import parse_json

    if not yaml:
        try:
            return parse_json(text)
        except json.JSONDecodeError as exc:
            if yaml is None and not text.lstrip().startswith(("{", "[")):
                return parse_yaml(text, source)
            raise DocumentError(
                f"{source}: invalid JSON at line {exc.lineno}, column {exc.colno}: "
                f"{exc.msg}"
            ) from None
        except ValueError as exc:  # NaN, Infinity, 1e400
            raise DocumentError(f"{source}: invalid JSON: {exc}") from None
        except RecursionError:
            raise DocumentError(f"{source}: nested too deeply") from None
    return parse_yaml(text, source)


def parse_yaml(text: str, source: str):
    """Parse YAML into JSON values: dates become ISO text, keys become text."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        data = yaml.load(text, Loader=loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise DocumentError(
            f"{source}: invalid YAML{where}: {exc.problem or exc}"
        ) from None
    except (yaml.YAMLError, RecursionError) as exc:
        raise DocumentError(f"{source}: invalid YAML: {exc}") from None
    try:
        return _jsonable(data)
    except (ValueError, RecursionError) as exc:
        raise DocumentError(f"{source}: {exc}") from None


def _jsonable(value):
    """The JSON value a YAML value stands for (what a JSON file could hold)."""
    if isinstance(value, dict):
        return {_key(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and (value != value or value in _INFINITIES):
        raise ValueError(f"{value} is not a JSON number")
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if hasattr(value, "isoformat"):  # dates and times
        return value.isoformat()
    if isinstance(value, bytes):  # !!binary
        raise ValueError("binary values are not supported")
    return str(value)


_INFINITIES = (float("inf"), float("-inf"))


def _key(key) -> str:
    if isinstance(key, str):
        return key
    if isinstance(key, bool) or key is None:
        return json.dumps(key)
    return str(_jsonable(key))


def read(path: str):
    """Read and parse the document in the file at ``path`` (YAML by its suffix)."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except IsADirectoryError:
        raise DocumentError(f"{path}: is a directory") from None
    except OSError as exc:
        raise DocumentError(f"{path}: cannot read: {exc.strerror or exc}") from None
    return parse(decode(data, path), path, yaml=is_yaml(path))
