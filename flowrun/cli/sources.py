"""The flows a command is given: files, directories, globs, or ``-`` for stdin.

A directory stands for every flow file directly inside it (``*.json``, ``*.yaml``,
``*.yml``, sorted by name; not its sub-folders, such as ``environments/``); a path
that does not exist but has glob characters is expanded (``**`` included), sorted.
"""

from __future__ import annotations

import glob
import os
import sys
from dataclasses import dataclass

import click

from flowrun.documents import DocumentError, decode, parse, read

FLOW_SUFFIXES = (".json", ".yaml", ".yml")
STDIN = "-"
STDIN_LABEL = "<stdin>"


@dataclass
class Source:
    """One flow document and where it came from (``label``: as the user wrote it)."""

    label: str
    doc: object = None


def paths(arguments, param_hint: str = "PATH") -> list[str]:
    """The files (or ``-``) the arguments stand for, in order, each once."""
    found: list[str] = []
    for arg in arguments:
        if arg == STDIN:
            found.append(STDIN)
        elif os.path.isdir(arg):
            inside = sorted(
                entry.path
                for entry in os.scandir(arg)
                if entry.name.lower().endswith(FLOW_SUFFIXES)
                and not entry.name.startswith(".")
                and entry.is_file()
            )
            if not inside:
                raise click.BadParameter(
                    f"{arg}: no flow files (*.json, *.yaml, *.yml) in this directory",
                    param_hint=param_hint,
                )
            found.extend(inside)
        elif os.path.exists(arg) or not glob.has_magic(arg):
            found.append(arg)  # a missing file is reported when it is read
        else:
            matches = sorted(
                p for p in glob.glob(arg, recursive=True) if os.path.isfile(p)
            )
            if not matches:
                raise click.BadParameter(
                    f"{arg}: matches no file", param_hint=param_hint
                )
            found.extend(matches)
    if found.count(STDIN) > 1:
        raise click.BadParameter(
            "'-' (standard input) can be given once", param_hint=param_hint
        )
    seen = set()
    return [p for p in found if not (p in seen or seen.add(p))]


def load(path: str) -> Source:
    """Read one flow document; DocumentError says what is wrong, and where."""
    if path == STDIN:
        data = sys.stdin.buffer.read()
        return Source(STDIN_LABEL, parse(decode(data, STDIN_LABEL), STDIN_LABEL))
    return Source(path, read(path))


__all__ = [
    "DocumentError",
    "FLOW_SUFFIXES",
    "STDIN",
    "STDIN_LABEL",
    "Source",
    "load",
    "paths",
]
