"""curl command lines → a flow, one node per command.

Commands are separated by line ends that are not continued with ``\\`` (a line end
inside quotes belongs to the argument). Each command is split with :mod:`shlex`.
"""

from __future__ import annotations

import base64
import json
import re
import shlex
from urllib.parse import quote, urlsplit

from flowrun.engine.flow import METHODS, header
from flowrun.importers._common import (
    Ids,
    absolute,
    describe,
    finish,
    invalid,
    split_base_url,
)

LABEL = "curl commands"
_HINT = "Paste curl commands, one per line ('\\' continues a line)."

# Short options and the long option each stands for.
_SHORT = {
    "X": "--request",
    "H": "--header",
    "d": "--data",
    "u": "--user",
    "b": "--cookie",
    "A": "--user-agent",
    "e": "--referer",
    "m": "--max-time",
    "F": "--form",
    "G": "--get",
    "I": "--head",
    "T": "--upload-file",
    "o": "--output",
    "w": "--write-out",
    "x": "--proxy",
    "U": "--proxy-user",
    "E": "--cert",
    "c": "--cookie-jar",
    "r": "--range",
    "K": "--config",
    "y": "--speed-time",
    "Y": "--speed-limit",
    "s": "--silent",
    "S": "--show-error",
    "k": "--insecure",
    "L": "--location",
    "v": "--verbose",
    "i": "--include",
    "f": "--fail",
    "g": "--globoff",
    "O": "--remote-name",
    "N": "--no-buffer",
    "j": "--junk-session-cookies",
    "#": "--progress-bar",
    "4": "--ipv4",
    "6": "--ipv6",
    "0": "--http1.0",
}
_DATA = {"--data", "--data-ascii", "--data-raw", "--data-binary", "--data-urlencode"}
_HANDLED_VALUE = _DATA | {
    "--request",
    "--header",
    "--json",
    "--user",
    "--cookie",
    "--url",
    "--user-agent",
    "--referer",
    "--max-time",
    "--form",
    "--form-string",
    "--oauth2-bearer",
}
# Options that only change how curl itself behaves; their values are dropped.
_IGNORED_VALUE = {
    "--output",
    "--write-out",
    "--connect-timeout",
    "--retry",
    "--retry-delay",
    "--retry-max-time",
    "--proxy",
    "--proxy-user",
    "--cacert",
    "--capath",
    "--cert",
    "--cert-type",
    "--key",
    "--key-type",
    "--resolve",
    "--connect-to",
    "--cookie-jar",
    "--limit-rate",
    "--range",
    "--max-redirs",
    "--interface",
    "--dns-servers",
    "--proxy-header",
    "--speed-time",
    "--speed-limit",
    "--ciphers",
    "--tls-max",
    "--trace",
    "--trace-ascii",
    "--stderr",
    "--pass",
    "--max-filesize",
    "--keepalive-time",
    "--expect100-timeout",
}
_IGNORED_FLAG = {
    "--silent",
    "--show-error",
    "--insecure",
    "--location",
    "--location-trusted",
    "--verbose",
    "--include",
    "--fail",
    "--fail-with-body",
    "--globoff",
    "--compressed",
    "--remote-name",
    "--no-buffer",
    "--junk-session-cookies",
    "--progress-bar",
    "--no-progress-meter",
    "--ipv4",
    "--ipv6",
    "--http1.0",
    "--http1.1",
    "--http2",
    "--http2-prior-knowledge",
    "--http3",
    "--basic",
    "--path-as-is",
    "--tr-encoding",
    "--ssl-no-revoke",
    "--no-keepalive",
    "--raw",
    "--tcp-nodelay",
}
_FLAGS = _IGNORED_FLAG | {"--get", "--head"}
_NEEDS_FILE = {"--upload-file", "--config"}


def convert(content: str) -> dict:
    """Convert curl command lines to a flow."""
    commands = _split(content)
    if not commands:
        raise invalid(LABEL, "no curl command found", hint=_HINT)
    ids = Ids()
    nodes = [_node(line, text, ids) for line, text in commands]
    flow = {
        "name": "Imported curl commands",
        "description": "Imported from curl.",
    }
    base = split_base_url(nodes)
    if base:
        flow["defaults"] = {"baseUrl": base}
    flow["nodes"] = nodes
    return finish(LABEL, flow)


def _split(text: str) -> list[tuple[int, str]]:
    """Cut text into ``(first line number, command text)``.

    A line end ends a command unless it is escaped with ``\\`` or inside quotes;
    ``#`` at the start of a word outside quotes starts a comment.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    commands: list[tuple[int, str]] = []
    buf: list[str] = []
    quote_char = None
    line = start = 1
    i = 0

    def flush():
        command = "".join(buf).strip()
        if command.startswith("$ "):
            command = command[2:].lstrip()
        if command:
            commands.append((start, command))
        buf.clear()

    while i < len(text):
        c = text[i]
        if c == "\n":
            line += 1
        if quote_char is None:
            if c == "\\" and text[i + 1 : i + 2] == "\n":
                buf.append(" ")
                line += 1
                i += 2
                continue
            if c == "\\":
                buf.append(text[i : i + 2])
                i += 2
                continue
            if c == "$" and text[i + 1 : i + 2] == "'":
                # Bash's $'…' strings (browsers' "Copy as cURL" writes them).
                value, end = _ansi_c(text, i + 2)
                line += text.count("\n", i, end)
                buf.append(shlex.quote(value))
                i = end
                continue
            if c == "\n":
                flush()
                start = line
            elif c == "#" and (not buf or buf[-1][-1:].isspace()):
                end = text.find("\n", i)
                i = len(text) if end == -1 else end
                continue
            else:
                if c in "'\"":
                    quote_char = c
                if not buf and not c.strip():
                    start = line
                buf.append(c)
        else:
            if quote_char == '"' and c == "\\":
                buf.append(text[i : i + 2])
                if text[i + 1 : i + 2] == "\n":
                    line += 1
                i += 2
                continue
            if c == quote_char:
                quote_char = None
            buf.append(c)
        i += 1
    flush()
    return commands


_ANSI_ESCAPE = re.compile(
    r"\\(x[0-9A-Fa-f]{1,2}|u[0-9A-Fa-f]{4}|U[0-9A-Fa-f]{8}|[0-7]{1,3}|c.|.)", re.S
)
_ANSI_SIMPLE = {
    "n": "\n",
    "t": "\t",
    "r": "\r",
    "a": "\a",
    "b": "\b",
    "e": "\x1b",
    "E": "\x1b",
    "f": "\f",
    "v": "\v",
}


def _ansi_c(text: str, i: int) -> tuple[str, int]:
    """Decode a ``$'…'`` string whose body starts at ``i``; return it and its end."""
    j = i
    while j < len(text) and text[j] != "'":
        j += 2 if text[j] == "\\" else 1
    if j >= len(text):
        raise invalid(LABEL, "a $'…' string is not closed", hint=_HINT)

    def decode(m):
        code = m.group(1)
        if code[0] in "xuU" and len(code) > 1:
            return chr(int(code[1:], 16))
        if code[0] in "01234567":
            return chr(int(code, 8))
        if code[0] == "c" and len(code) == 2:
            return chr(ord(code[1].upper()) ^ 0x40)
        return _ANSI_SIMPLE.get(code, code)

    return _ANSI_ESCAPE.sub(decode, text[i:j]), j + 1


def _options(argv: list[str], where: str):
    """Yield ``(long option or None for a word, value)`` from curl arguments."""
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if arg.startswith("--") and len(arg) > 2:
            opt = arg
            if opt in _FLAGS:
                yield opt, None
                continue
            if opt not in _HANDLED_VALUE | _IGNORED_VALUE | _NEEDS_FILE:
                raise invalid(
                    LABEL,
                    f"{where}: unsupported curl option {opt}",
                    hint="Remove the option, or add what it does to the flow by hand.",
                )
            if i >= len(argv):
                raise invalid(LABEL, f"{where}: {opt} needs a value")
            yield opt, argv[i]
            i += 1
        elif arg.startswith("-") and len(arg) > 1:
            # Short options may be bundled (-sSL) and take a value attached (-XPOST).
            j = 1
            while j < len(arg):
                opt = _SHORT.get(arg[j])
                if opt is None:
                    raise invalid(
                        LABEL,
                        f"{where}: unsupported curl option -{arg[j]}",
                        hint="Remove the option, or add what it does by hand.",
                    )
                j += 1
                if opt in _FLAGS:
                    yield opt, None
                    continue
                if j < len(arg):
                    yield opt, arg[j:]
                elif i < len(argv):
                    yield opt, argv[i]
                    i += 1
                else:
                    raise invalid(LABEL, f"{where}: -{arg[j - 1]} needs a value")
                break
        else:
            yield None, arg


def _node(line: int, text: str, ids: Ids) -> dict:
    where = f"line {line}"
    try:
        argv = shlex.split(text)
    except ValueError as exc:
        raise invalid(LABEL, f"{where}: {exc}", hint=_HINT) from None
    if not argv or argv[0].rsplit("/", 1)[-1] not in ("curl", "curl.exe"):
        raise invalid(
            LABEL, f"{where}: expected a curl command, got {argv[0]!r}", hint=_HINT
        )
    method = url = None
    headers: dict = {}
    data: list[str] = []
    json_data: list[str] = []
    form: dict = {}
    cookies: list[str] = []
    notes: list[str] = []
    get = head = False
    timeout = None
    for opt, value in _options(argv[1:], where):
        if opt is None or opt == "--url":
            if url is not None:
                raise invalid(
                    LABEL,
                    f"{where}: more than one URL in one command",
                    hint="Write one curl command per URL.",
                )
            url = value
        elif opt == "--request":
            method = value.upper()
        elif opt == "--header":
            name, sep, rest = value.partition(":")
            if sep:
                if rest.strip():
                    _set(headers, name.strip(), rest.strip())
                else:
                    # "Name:" with nothing after it removes the header in curl.
                    for key in [
                        k for k in headers if k.lower() == name.strip().lower()
                    ]:
                        del headers[key]
            elif value.rstrip().endswith(";"):
                _set(headers, value.rstrip()[:-1].strip(), "")
            else:
                raise invalid(LABEL, f"{where}: header {value!r} has no ':'")
        elif opt in _DATA:
            data.append(_data(opt, value, where))
        elif opt == "--json":
            json_data.append(_data("--data-binary", value, where))
        elif opt in ("--form", "--form-string"):
            name, sep, field = value.partition("=")
            if not sep:
                raise invalid(LABEL, f"{where}: form field {value!r} has no '='")
            if opt == "--form" and field.startswith(("@", "<")):
                notes.append(f"File field '{name}' dropped: uploads are not supported.")
            else:
                form[name] = field
        elif opt == "--user":
            token = base64.b64encode(
                (value if ":" in value else value + ":").encode()
            ).decode()
            _set(headers, "Authorization", f"Basic {token}", replace=False)
        elif opt == "--oauth2-bearer":
            _set(headers, "Authorization", f"Bearer {value}", replace=False)
        elif opt == "--cookie":
            if "=" not in value:
                raise invalid(
                    LABEL,
                    f"{where}: reading cookies from a file ({value}) is not supported",
                    hint="Write the cookies inline: -b 'name=value; other=value'.",
                )
            cookies.append(value.strip().rstrip(";"))
        elif opt == "--user-agent":
            _set(headers, "User-Agent", value, replace=False)
        elif opt == "--referer":
            _set(headers, "Referer", value.removesuffix(";auto"), replace=False)
        elif opt == "--max-time":
            try:
                timeout = float(value)
            except ValueError:
                raise invalid(
                    LABEL, f"{where}: --max-time {value!r} is not a number"
                ) from None
            timeout = int(timeout) if timeout.is_integer() else timeout
        elif opt == "--get":
            get = True
        elif opt == "--head":
            head = True
        elif opt in _NEEDS_FILE:
            raise invalid(LABEL, f"{where}: {opt} needs a file, which is not supported")
    if not url:
        raise invalid(LABEL, f"{where}: the command has no URL", hint=_HINT)
    if cookies:
        _set(headers, "Cookie", "; ".join(cookies), replace=False)
    url = absolute(url.strip())
    try:
        path = urlsplit(url).path or "/"
    except ValueError as exc:
        raise invalid(LABEL, f"{where}: {url!r} is not a valid URL ({exc})") from None
    if url.startswith(("/", "?")):
        raise invalid(LABEL, f"{where}: the URL {url!r} has no host", hint=_HINT)
    body = None
    if get and data:
        url += ("&" if "?" in url else "?") + "&".join(data)
    elif json_data:
        _set(headers, "Content-Type", "application/json", replace=False)
        _set(headers, "Accept", "application/json", replace=False)
        body = "".join(json_data)
    elif data:
        body = "&".join(data)
        if header(headers, "Content-Type") is None:
            if _json_value(body) is not None:
                # curl would label this JSON a form; what was meant is JSON.
                headers["Content-Type"] = "application/json"
                notes.append(
                    "The data is JSON but the command set no Content-Type (curl "
                    "would send a form Content-Type): it is sent as application/json."
                )
            else:
                # curl sends -d data as a form unless told otherwise.
                headers["Content-Type"] = "application/x-www-form-urlencoded"
    elif form:
        notes.append("Multipart form data is sent URL-encoded.")
        for name in [k for k in headers if k.lower() == "content-type"]:
            del headers[name]
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        body = form
    if isinstance(body, str) and "json" in (header(headers, "Content-Type") or ""):
        parsed = _json_value(body)
        if parsed is not None:
            body = parsed
    if method is None:
        if head:
            method = "HEAD"
        elif body is not None:
            method = "POST"
        else:
            method = "GET"
    if method not in METHODS:
        raise invalid(
            LABEL,
            f"{where}: method {method} is not supported",
            hint=f"flowrun sends {', '.join(METHODS)}.",
        )
    node = {"id": ids(f"{method} {path}"), "name": f"{method} {path}"}
    node.update(method=method, url=url)
    if headers:
        node["headers"] = headers
    if body is not None:
        node["body"] = body
    if timeout is not None:
        node["timeout"] = timeout
    if notes:
        node["description"] = describe(*notes)
    return node


def _json_value(text: str):
    """The JSON object or array ``text`` holds, else None."""
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, (dict, list)) else None


def _set(headers: dict, name: str, value: str, replace: bool = True) -> None:
    """Set a header (names case-insensitive); keep an existing one unless replace."""
    existing = [k for k in headers if k.lower() == name.lower()]
    if existing and not replace:
        return
    for key in existing:
        del headers[key]
    headers[name] = value


def _data(opt: str, value: str, where: str) -> str:
    """One data argument as curl would send it."""
    if opt == "--data-urlencode":
        # curl reads "name=content", "=content", "content", and from files
        # "@file" / "name@file": whichever of '=' and '@' comes first decides.
        eq, at = value.find("="), value.find("@")
        if at != -1 and (eq == -1 or at < eq):
            raise invalid(
                LABEL,
                f"{where}: reading data from a file ({value}) is not supported",
                hint="Put the data inline.",
            )
        if eq == -1:
            return quote(value, safe="")
        name, content = value[:eq], value[eq + 1 :]
        return f"{name}={quote(content, safe='')}" if name else quote(content, safe="")
    if opt != "--data-raw" and value.startswith("@"):
        raise invalid(
            LABEL,
            f"{where}: reading data from a file ({value}) is not supported",
            hint="Put the data inline, or use --data-raw for a literal '@'.",
        )
    return value
