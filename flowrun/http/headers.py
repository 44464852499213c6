"""A faster ``http.client.parse_headers`` for well-formed response headers.

http.client hands every response's header block to the ``email`` package's
FeedParser, a general MIME parser: the largest single cost in reading a response
(more than the socket reads). When every line of the block is a plain
``Name: value`` line, this builds the same ``HTTPMessage`` directly, several times
faster; anything else (folded lines, a line that is not a header, a bare CR, an
empty name) goes to the stdlib parser, which knows all the corner cases and records
the defects urllib3 reports.

This replaces a function of the standard library for the whole process and reads
its private ``http.client._read_headers``: ``install`` checks first that both are
there as expected (tested on CPython 3.11), and leaves the stdlib parser in place,
with a log line, if not. ``tests/test_header_parser.py`` compares the two parsers.
"""

from __future__ import annotations

import http.client
import inspect
import logging
import re

# A header line as email.feedparser's headerRE accepts it ([\041-\071\073-\176]*:),
# with a non-empty name, no CR or LF inside, ended by CRLF or LF.
_PLAIN_LINE = re.compile(rb"[!-9;-~]+:[^\r\n]*\r?\n")
_stdlib_parse_headers = http.client.parse_headers


def parse_headers(fp, _class=http.client.HTTPMessage):
    """``http.client.parse_headers``: the same message, faster for plain headers."""
    lines = http.client._read_headers(fp)
    if lines and lines[-1] in (b"\r\n", b"\n"):
        fields = []
        plain = _PLAIN_LINE.fullmatch
        for line in lines[:-1]:
            if plain(line) is None:
                break
            name, _, value = line.decode("iso-8859-1").partition(":")
            fields.append((name, value.lstrip(" \t").rstrip("\r\n")))
        else:
            # What FeedParser builds (compat32 policy): the raw (name, value)
            # pairs in order, and an empty payload after the blank line.
            message = _class()
            message._headers = fields
            message._payload = ""
            return message
    return _from_lines(lines, _class)


def _from_lines(lines, _class):
    import email.parser

    text = b"".join(lines).decode("iso-8859-1")
    return email.parser.Parser(_class=_class).parsestr(text)


def _hooks_present() -> bool:
    """Whether http.client still parses headers as this module expects."""
    try:
        read = list(inspect.signature(http.client._read_headers).parameters)
        parse = list(inspect.signature(_stdlib_parse_headers).parameters)
    except (AttributeError, TypeError, ValueError):
        return False
    return read == ["fp"] and parse == ["fp", "_class"]


def install() -> bool:
    """Use this parser for every http.client response in this process; False (and
    a log line, once) where this Python's http.client is not as expected."""
    if http.client.parse_headers is parse_headers:
        return True
    if http.client.parse_headers is not _stdlib_parse_headers or not _hooks_present():
        global _warned
        if not _warned:
            _warned = True
            logging.getLogger("flowrun").warning(
                "http.client is not as expected here: response headers are parsed "
                "by the standard parser"
            )
        return False
    http.client.parse_headers = parse_headers
    return True


_warned = False
