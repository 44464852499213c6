"""curl command lines → a flow, one node per request curl would send.

The text is read as the shell would read it (``_shell``: bash, Windows cmd and
PowerShell quoting and continuations, pipes and redirections, here-documents, data
piped in with ``echo``); shell variables (``$TOKEN``, ``%TOKEN%``, ``$env:TOKEN``)
become flow variables, declared, with a note. Every option in curl's manual is known:
those that shape the request are translated as curl sends it (``--data*``,
``--json``, ``-F`` multipart, ``-G``, ``-u``, ``-H``, ``-b``, ``--url-query``,
``--variable``/``--expand-*``, URL globs, ``--next`` …), those that only change what
curl prints are ignored, and the rest are noted on the node. Anything curl would read
from a file flowrun cannot see: the node is skipped by default, with a note.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
from urllib.parse import quote, urlsplit

from flowrun.engine.flow import METHODS, header
from flowrun.engine.placeholders import escape
from flowrun.importers import _shell
from flowrun.importers._common import (
    Collector,
    Imported,
    absolute,
    invalid,
    multipart,
    var_name,
    var_ref,
)
from flowrun.importers._shell import VAR_CLOSE, VAR_OPEN

LABEL = "curl commands"
_HINT = "Paste curl commands, one per line ('\\' continues a line)."
_MARK = re.compile(f"{VAR_OPEN}([^{VAR_CLOSE}]*){VAR_CLOSE}")
_MAX_GLOB = 100
_MAX_TIMEOUT = 86400

# Short options and the long option each stands for.
_SHORT = {
    "a": "--append", "A": "--user-agent", "b": "--cookie", "B": "--use-ascii",
    "c": "--cookie-jar", "C": "--continue-at", "d": "--data", "D": "--dump-header",
    "e": "--referer", "E": "--cert", "f": "--fail", "F": "--form", "g": "--globoff",
    "G": "--get", "h": "--help", "H": "--header", "i": "--include", "I": "--head",
    "j": "--junk-session-cookies", "J": "--remote-header-name", "k": "--insecure",
    "K": "--config", "l": "--list-only", "L": "--location", "m": "--max-time",
    "M": "--manual", "n": "--netrc", "N": "--no-buffer", "o": "--output",
    "O": "--remote-name", "p": "--proxytunnel", "P": "--ftp-port", "q": "--disable",
    "Q": "--quote", "r": "--range", "R": "--remote-time", "s": "--silent",
    "S": "--show-error", "t": "--telnet-option", "T": "--upload-file",
    "u": "--user", "U": "--proxy-user", "v": "--verbose", "V": "--version",
    "w": "--write-out", "x": "--proxy", "X": "--request", "y": "--speed-time",
    "Y": "--speed-limit", "z": "--time-cond", "Z": "--parallel", "0": "--http1.0",
    "1": "--tlsv1", "2": "--sslv2", "3": "--sslv3", "4": "--ipv4", "6": "--ipv6",
    ":": "--next", "#": "--progress-bar",
}  # fmt: skip

# Options that take a value (curl's manual; the rest are flags).
_WITH_VALUE = set(
    """
--abstract-unix-socket --alt-svc --aws-sigv4 --cacert --capath --cert --cert-type
--ciphers --config --connect-timeout --connect-to --continue-at --cookie --cookie-jar
--create-file-mode --crlfile --curves --data --data-ascii --data-binary --data-raw
--data-urlencode --delegation --dns-interface --dns-ipv4-addr --dns-ipv6-addr
--dns-servers --doh-url --dump-header --ech --egd-file --engine --etag-compare
--etag-save --expect100-timeout --form --form-string --ftp-account
--ftp-alternative-to-user --ftp-method --ftp-port --ftp-ssl-ccc-mode
--happy-eyeballs-timeout-ms --haproxy-clientip --header --hostpubmd5 --hostpubsha256
--hsts --interface --ip-tos --ipfs-gateway --json --keepalive-cnt --keepalive-time
--key --key-type --knownhosts --krb --libcurl --limit-rate --local-port
--login-options --mail-auth --mail-from --mail-rcpt --max-filesize --max-redirs
--max-time --netrc-file --noproxy --oauth2-bearer --output --output-dir
--parallel-max --parallel-max-host --pass --pinnedpubkey --preproxy --proto
--proto-default --proto-redir --proxy --proxy-cacert --proxy-capath --proxy-cert
--proxy-cert-type --proxy-ciphers --proxy-crlfile --proxy-header --proxy-key
--proxy-key-type --proxy-pass --proxy-pinnedpubkey --proxy-service-name
--proxy-tls13-ciphers --proxy-tlsauthtype --proxy-tlspassword --proxy-tlsuser
--proxy-user --proxy1.0 --pubkey --quote --random-file --range --rate --referer
--request --request-target --resolve --retry --retry-delay --retry-max-time
--sasl-authzid --service-name --sigalgs --socks4 --socks4a --socks5
--socks5-gssapi-service --socks5-hostname --speed-limit --speed-time --ssl-sessions
--stderr --telnet-option --tftp-blksize --time-cond --tls-max --tls13-ciphers
--tlsauthtype --tlspassword --tlsuser --trace --trace-ascii --trace-config
--unix-socket --upload-file --upload-flags --url --url-query --user --user-agent
--variable --vlan-priority --write-out
""".split()
)
# Options that change only what curl prints, saves or how it connects, not what
# it sends (or that flowrun does anyway: following redirects, decompressing).
_QUIET = set(
    """
--alt-svc --cert-status --compressed --compressed-ssh --connect-timeout --create-dirs
--create-file-mode --disable --disable-eprt --disable-epsv --disallow-username-in-url
--dns-interface --dns-ipv4-addr --dns-ipv6-addr --dns-servers --doh-cert-status
--doh-insecure --doh-url --dump-header --etag-save --expect100-timeout --fail
--fail-early --fail-with-body --false-start --form-escape --happy-eyeballs-timeout-ms
--hsts --http0.9 --http1.1 --http2 --http2-prior-knowledge --http3 --http3-only
--ignore-content-length --include --ipv4 --ipv6 --junk-session-cookies --keepalive-cnt
--keepalive-time --libcurl --limit-rate --location --location-trusted --max-filesize
--max-redirs --metalink --mptcp --no-alpn --no-buffer --no-clobber --no-keepalive
--no-npn --no-progress-meter --no-sessionid --noproxy --output --output-dir
--parallel --parallel-immediate --parallel-max --parallel-max-host --path-as-is
--pinnedpubkey --post301 --post302 --post303 --progress-bar --proto --proto-redir
--rate --raw --remote-header-name --remote-name --remote-name-all --remote-time
--remove-on-error --retry --retry-all-errors --retry-connrefused --retry-delay
--retry-max-time --show-error --silent --skip-existing --speed-limit --speed-time
--ssl-allow-beast --ssl-no-revoke --ssl-revoke-best-effort --ssl-sessions --stderr
--styled-output --suppress-connect-headers --tcp-fastopen --tcp-nodelay --tls-max
--tls13-ciphers --tlsv1 --tlsv1.0 --tlsv1.1 --tlsv1.2 --tlsv1.3 --ciphers --curves
--sslv2 --sslv3 --tr-encoding --trace --trace-ascii --trace-config --trace-ids
--trace-time --verbose --write-out --xattr --basic --globoff --ca-native
--proxy-ca-native --out-null --follow --vlan-priority --ip-tos --sigalgs
""".split()
)
# What curl does with nothing to send.
_NO_REQUEST = {
    "--help": "prints curl's help",
    "--version": "prints curl's version",
    "--manual": "prints curl's manual",
    "--dump-ca-embed": "prints CA certs",
}
# Options that would change the request in ways flowrun does not reproduce.
_NOT_REPRODUCED = {
    "--insecure": "curl skips TLS verification (-k): run the flow with --insecure",
    "--cacert": "curl trusts another CA bundle: run the flow with --cacert",
    "--capath": "curl trusts other CA certificates: run the flow with --cacert",
    "--digest": "Digest authentication (a challenge-response) cannot be reproduced",
    "--ntlm": "NTLM authentication (a handshake) cannot be reproduced",
    "--ntlm-wb": "NTLM authentication (a handshake) cannot be reproduced",
    "--negotiate": "Negotiate/Kerberos authentication cannot be reproduced",
    "--aws-sigv4": "AWS Signature v4 (signed per request) cannot be reproduced",
    "--anyauth": "curl picks the server's authentication method; flowrun sends Basic",
    "--netrc": "credentials from ~/.netrc are not read",
    "--netrc-file": "credentials from a .netrc file are not read",
    "--netrc-optional": "credentials from ~/.netrc are not read",
    "--config": "options from a config file (-K) are not read",
    "--proxy": "the proxy is not used (flowrun connects directly)",
    "--request-target": "the request target curl sends is not reproduced",
    "--http1.0": "flowrun speaks HTTP/1.1",
}


def read(content: str, max_nodes: int, path=None) -> Imported:
    """Import curl command lines."""
    collector = Collector(LABEL, max_nodes)
    variables: dict = {}
    found = 0
    for chunk_line, chunk in _chunks(content):
        try:
            script = _shell.read(chunk)
        except _shell.ShellError as exc:
            collector.leave_out(
                f"line {chunk_line + exc.line - 1}", f"left out: {exc.args[0]}"
            )
            continue
        for line, what in script.ignored:
            collector.note(
                f"line {chunk_line + line - 1}",
                f"Line {chunk_line + line - 1} is not a curl command ({what}): "
                "ignored.",
            )
        found += len(script.commands)
        for command in script.commands:
            command.line += chunk_line - 1
            command.joined = [n + chunk_line - 1 for n in command.joined]
            _Command(command, script, collector, variables).add()
    if not found and not collector.left_out:
        raise invalid(LABEL, "no curl command found", hint=_HINT)
    flow = {
        "name": "Imported curl commands",
        "description": "Imported from curl.",
        "variables": variables,
    }
    return collector.finish(flow)


def _chunks(text: str):
    """``(first line, text)``: all of it, or, when the shell cannot read it whole (an
    unclosed quote), each curl command on its own so one cannot sink the others."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    try:
        _shell.read(text)
    except _shell.ShellError:
        pass
    else:
        return [(1, text)]
    lines = text.split("\n")
    starts = [i for i, line in enumerate(lines) if re.match(r"\s*(\$\s+)?curl", line)]
    if not starts or starts[0] != 0:
        starts.insert(0, 0)
    bounds = [*starts, len(lines)]
    return [(a + 1, "\n".join(lines[a:b])) for a, b in itertools.pairwise(bounds)]


def _final(value):
    """A value as the flow writes it: literal ``{{`` escaped, shell variables as
    ``{{ .vars.NAME }}``."""
    if isinstance(value, str):
        if VAR_OPEN not in value:
            return escape(value)
        out, last = [], 0
        for m in _MARK.finditer(value):
            out.append(escape(value[last : m.start()]))
            out.append(var_ref(var_name(m.group(1))))
            last = m.end()
        out.append(escape(value[last:]))
        return "".join(out)
    if isinstance(value, dict):
        return {_plain(k): _final(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_final(v) for v in value]
    return value


def _plain(text: str) -> str:
    """Text with shell variables written as ``$NAME`` (names, object keys)."""
    return _MARK.sub(lambda m: "$" + m.group(1), text)


def _encode(text: str, safe: str = "") -> str:
    """URL-encode the literal parts of ``text``; shell variables stay as they are
    (their values are sent unencoded)."""
    out, last = [], 0
    for m in _MARK.finditer(text):
        out.append(quote(text[last : m.start()], safe=safe))
        out.append(m.group(0))
        last = m.end()
    out.append(quote(text[last:], safe=safe))
    return "".join(out)


def _json_value(text: str):
    """The JSON object or array ``text`` holds, else None."""
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, (dict, list)) else None


class _Command:
    """One curl invocation: the requests it sends (``--next`` starts another, each
    URL is one)."""

    def __init__(self, command, script, collector: Collector, variables: dict):
        self.command = command
        self.script = script
        self.collector = collector
        self.variables = variables
        self.where = f"line {command.line}"
        self.curl_vars: dict[str, str] = {}

    def add(self) -> None:
        groups, current = [], []
        for word in self.command.words:
            if word in ("--next", "-:"):
                groups.append(current)
                current = []
            else:
                current.append(word)
        groups.append(current)
        notes = []
        if self.command.joined:
            lines = ", ".join(str(n) for n in self.command.joined)
            notes.append(
                f"Line(s) {lines} start with an option: read as part of this command "
                "(a '\\' missing at the end of the line above?)."
            )
        if self.command.others:
            notes.append(
                "Ignored what the shell does around curl: "
                + "; ".join(self.command.others)
            )
        for group in groups:
            _Request(self, group, list(notes)).add()

    def declare(self, name: str, notes: list[str]) -> None:
        """Declare the flow variable a shell variable became, and say so."""
        key = var_name(name)
        known = self.script.variables.get(name, self.script.defaults.get(name))
        command = self.script.substitutions.get(name)
        self.variables.setdefault(key, _plain(known) if known is not None else "")
        if command is not None:
            notes.append(
                f"The output of $({command}) became the variable '{key}': set it "
                f"with --var {key}=…"
            )
        elif known is not None:
            notes.append(f"Shell variable ${name} became the variable '{key}'.")
        else:
            notes.append(
                f"Shell variable ${name} became the variable '{key}': set it with "
                f"--var {key}=… (or FLOWRUN_VAR_{key})."
            )


class _Request:
    """The options of one request (up to ``--next``) and the nodes they make."""

    def __init__(self, owner: _Command, words: list[str], notes: list[str]):
        self.owner = owner
        self.words = words
        self.notes = notes
        self.skip: str | None = None
        self.method: str | None = None
        self.urls: list[str] = []
        self.headers: dict[str, str] = {}
        self.data: list[str] = []
        self.json: list[str] = []
        self.form: list[tuple[str, str]] = []
        self.queries: list[str] = []
        self.cookies: list[str] = []
        # -u / --oauth2-bearer: sent unless -H gives an Authorization (as curl).
        self.authorization: str | None = None
        self.get = self.head = self.globoff = self.nothing = False
        self.upload = self.sends = False
        self.timeout = None

    # -- reading the options ---------------------------------------------------
    def add(self) -> None:
        for opt, value in self.options():
            self.option(opt, value)
        where = self.owner.where
        if self.nothing:
            return
        if not self.urls:
            if self.words or self.data or self.headers:
                self.owner.collector.leave_out(
                    where, "left out: the command has no URL"
                )
            return
        urls = [u for url in self.urls for u in self.expand(url)]
        for index, url in enumerate(urls):
            label = where if len(urls) == 1 else f"{where} (URL {index + 1})"
            self.node(url, label)

    def options(self):
        """Yield ``(long option or None for a URL, value)``."""
        words, i = self.words, 0
        while i < len(words):
            arg = words[i]
            i += 1
            if arg.startswith("--") and len(arg) > 2:
                opt, sep, attached = arg.partition("=")
                if opt.startswith("--no-") and opt[5:] and f"--{opt[5:]}" in _QUIET:
                    continue  # --no-progress-meter and friends: flags off
                if opt not in _WITH_VALUE and not opt.startswith("--expand-"):
                    yield opt, None
                    continue
                if sep:
                    yield opt, attached
                elif i < len(words):
                    yield opt, words[i]
                    i += 1
                else:
                    self.notes.append(f"{opt} has no value: ignored.")
            elif arg.startswith("-") and len(arg) > 1:
                # Short options may be bundled (-sSL) and take a value (-XPOST).
                j = 1
                while j < len(arg):
                    opt = _SHORT.get(arg[j])
                    j += 1
                    if opt is None:
                        self.notes.append(
                            f"Unknown curl option -{arg[j - 1]}: ignored."
                        )
                        continue
                    if opt not in _WITH_VALUE:
                        yield opt, None
                        continue
                    if j < len(arg):
                        yield opt, arg[j:]
                    elif i < len(words):
                        yield opt, words[i]
                        i += 1
                    else:
                        self.notes.append(f"-{arg[j - 1]} has no value: ignored.")
                    break
            else:
                yield None, arg

    def option(self, opt: str | None, value: str | None) -> None:
        if opt is not None and opt.startswith("--expand-"):
            opt, value = "--" + opt[len("--expand-") :], self.expand_vars(value)
            if opt not in _WITH_VALUE:
                return
        handler = _HANDLERS.get(opt)
        if handler is not None:
            handler(self, value)
        elif opt in _NO_REQUEST:
            if not self.nothing:
                self.owner.collector.leave_out(
                    self.owner.where, f"left out: curl {opt} {_NO_REQUEST[opt]}"
                )
            self.nothing = True
        elif opt in _NOT_REPRODUCED:
            self.notes.append(_NOT_REPRODUCED[opt] + ".")
        elif opt in _QUIET:
            pass
        elif opt in _WITH_VALUE or opt in _KNOWN_FLAGS:
            self.notes.append(f"curl option {opt} is not reproduced.")
        else:
            self.notes.append(f"Unknown curl option {opt}: ignored.")

    # -- handlers -------------------------------------------------------------
    def url(self, value: str) -> None:
        self.urls.append(value)

    def request(self, value: str) -> None:
        self.method = value.upper()

    def header_(self, value: str) -> None:
        if value.startswith("@"):
            self.notes.append(f"Headers from the file {value[1:]} are not read.")
            return
        name, sep, rest = value.partition(":")
        name = name.strip()
        if sep:
            if rest.strip():
                self.set_header(name, rest.strip(), add=True)
            else:
                # "Name:" with nothing after it removes the header in curl.
                for key in [k for k in self.headers if k.lower() == name.lower()]:
                    del self.headers[key]
        elif value.rstrip().endswith(";"):
            self.set_header(value.rstrip()[:-1].strip(), "", add=True)
        else:
            self.notes.append(f"Header {value!r} has no ':': ignored (as curl does).")

    def set_header(self, name: str, value: str, add=False, replace=True) -> None:
        existing = [k for k in self.headers if k.lower() == name.lower()]
        if existing and add:
            # curl sends a repeated header twice; one header with both values
            # says the same (RFC 9110), cookies joined with '; '.
            joiner = "; " if name.lower() == "cookie" else ", "
            self.headers[existing[0]] += joiner + value
            self.notes.append(f"Header {name} given twice: sent once with both values.")
            return
        if existing and not replace:
            return
        for key in existing:
            del self.headers[key]
        self.headers[name] = value

    def data_(self, opt: str, value: str) -> None:
        self.sends = True
        data = self.data_value(opt, value)
        if data is not None:
            self.data.append(data)

    def data_value(self, opt: str, value: str) -> str | None:
        if opt == "--data-urlencode":
            # "content", "=content", "name=content", "@file", "name@file":
            # whichever of '=' and '@' comes first decides.
            eq, at = value.find("="), value.find("@")
            if at != -1 and (eq == -1 or at < eq):
                name, source = value[:at], value[at + 1 :]
                content = self.file_data(source, strip=False)
                if content is None:
                    return None
                return f"{name}={_encode(content)}" if name else _encode(content)
            if eq == -1:
                return _encode(value)
            name, content = value[:eq], value[eq + 1 :]
            return f"{name}={_encode(content)}" if name else _encode(content)
        if opt != "--data-raw" and value.startswith("@"):
            # curl -d @file drops the file's line breaks; --data-binary keeps them.
            return self.file_data(value[1:], strip=opt != "--data-binary")
        return value

    def file_data(self, source: str, strip: bool) -> str | None:
        """Data curl reads from a file or standard input, when the text holds it."""
        command = self.owner.command
        if source == "-" and command.stdin is not None:
            text = command.stdin
            self.notes.append("The data piped to curl is the body.")
        else:
            where = command.stdin_source if source == "-" else f"the file {source}"
            where = where or "standard input"
            self.notes.append(
                f"curl reads data from {where}, which flowrun cannot see."
            )
            self.skip = self.skip or f"its data comes from {where}"
            return None
        return text.replace("\r", "").replace("\n", "") if strip else text

    def json_(self, value: str) -> None:
        self.sends = True
        if value.startswith("@"):
            data = self.file_data(value[1:], strip=False)
            if data is None:
                return
            value = data
        self.json.append(value)

    def form_(self, opt: str, value: str) -> None:
        self.sends = True
        name, sep, field = value.partition("=")
        if not sep:
            self.notes.append(f"Form field {value!r} has no '=': ignored.")
            return
        if opt == "--form" and field.startswith(("@", "<")):
            path = field[1:].split(";", 1)[0].strip('"')
            if field.startswith("<") and path == "-" and self.owner.command.stdin:
                self.form.append((name, self.owner.command.stdin))
                return
            self.notes.append(
                f"Form field '{name}' is the file {path}, which flowrun cannot send."
            )
            self.skip = self.skip or f"its form field '{name}' is a file"
            return
        if opt == "--form" and ";" in field:
            # name="value";type=text/plain: the value, without its attributes.
            text, _, attributes = field.partition(";")
            if re.match(r"\s*(type|filename|headers|encoder)=", attributes):
                field = text.strip('"')
        self.form.append((name, field))

    def user(self, value: str) -> None:
        if VAR_OPEN in value:
            # flowrun cannot base64-encode at run time: the encoded pair is a
            # variable to fill in.
            self.authorization = f"Basic {_shell.var('basicAuth')}"
            self.user_vars = _plain(value)
            return
        if ":" not in value:
            self.notes.append("curl would ask for the password: an empty one is sent.")
        token = base64.b64encode(
            (value if ":" in value else value + ":").encode()
        ).decode()
        self.authorization = f"Basic {token}"

    def cookie(self, value: str) -> None:
        if "=" not in value:
            self.notes.append(f"Cookies from the file {value!r} are not read.")
            return
        self.cookies.append(value.strip().rstrip(";"))

    def max_time(self, value: str) -> None:
        try:
            number = float(value)
        except ValueError:
            self.notes.append(f"--max-time {value!r} is not a number: ignored.")
            return
        if not 0 < number <= _MAX_TIMEOUT:
            self.notes.append(f"--max-time {value} is kept to {_MAX_TIMEOUT} seconds.")
            number = min(max(number, 0.001), _MAX_TIMEOUT)
        self.timeout = int(number) if number.is_integer() else number

    def url_query(self, value: str) -> None:
        if value.startswith("+"):
            self.queries.append(value[1:])
            return
        data = self.data_value("--data-urlencode", value)
        if data is not None:
            self.queries.append(data)

    def variable(self, value: str) -> None:
        """curl's own variables (``--variable``), used by ``--expand-*`` options."""
        if value.startswith("%"):
            name = value[1:].split("=", 1)[0]
            self.owner.curl_vars[name] = _shell.var(name)
            return
        eq, at = value.find("="), value.find("@")
        if at != -1 and (eq == -1 or at < eq):
            self.notes.append(f"The curl variable from {value[at + 1 :]} is not read.")
            self.owner.curl_vars[value[:at]] = _shell.var(value[:at])
            return
        self.owner.curl_vars[value[:eq]] = value[eq + 1 :]

    def expand_vars(self, value: str) -> str:
        def repl(m):
            name = m.group(1)
            if name in self.owner.curl_vars:
                if m.group(2):
                    self.notes.append(
                        f"curl's {{{{{name}:{m.group(2)}}}}} is sent as is."
                    )
                return self.owner.curl_vars[name]
            return ""

        return re.sub(r"\{\{([A-Za-z0-9_]+)(?::([^{}]*))?\}\}", repl, value)

    def range_(self, value: str) -> None:
        self.set_header("Range", f"bytes={value}", replace=False)

    def continue_at(self, value: str) -> None:
        if value.strip() == "-":
            self.notes.append("-C - resumes from a local file's size: not reproduced.")
        else:
            self.set_header("Range", f"bytes={value.strip()}-", replace=False)

    def time_cond(self, value: str) -> None:
        name = "If-Unmodified-Since" if value.startswith("-") else "If-Modified-Since"
        date = value.lstrip("-+")
        if re.search(r"\d", date) and " " in date:
            self.set_header(name, date, replace=False)
        else:
            self.notes.append(f"-z {value}: the date of a file is not read.")

    def upload_file(self, value: str) -> None:
        self.upload = True
        if value == "-" and self.owner.command.stdin is not None:
            self.data.append(self.owner.command.stdin)
            return
        self.notes.append(f"curl uploads the file {value}, which flowrun cannot send.")
        self.skip = self.skip or f"it uploads the file {value}"

    # -- the nodes ----------------------------------------------------------------
    def expand(self, url: str) -> list[str]:
        """curl's URL globbing: ``{a,b}`` and ``[1-3]`` (unless -g)."""
        if self.globoff:
            return [url]
        parts = re.split(r"(\{[^{}]*,[^{}]*\}|\[[^\]]*-[^\]]*\])", url)
        choices = []
        for part in parts:
            if part.startswith("{") and part.endswith("}") and "," in part:
                choices.append(part[1:-1].split(","))
            elif part.startswith("[") and _range(part) is not None:
                choices.append(_range(part))
            else:
                choices.append([part])
        urls = [
            "".join(c)
            for c in itertools.islice(itertools.product(*choices), _MAX_GLOB + 1)
        ]
        if len(urls) > 1:
            self.notes.append(f"The URL glob {url} is sent as {len(urls)} requests.")
        if len(urls) > _MAX_GLOB:
            self.notes.append(f"Only its first {_MAX_GLOB} URLs are imported.")
            urls = urls[:_MAX_GLOB]
        return urls

    def node(self, url: str, where: str) -> None:
        collector = self.owner.collector
        notes = list(self.notes)
        url = url.strip()
        # A URL that starts with a shell variable ($URL) is complete at run time.
        whole = url.startswith(VAR_OPEN)
        url = url if whole else absolute(url)
        scheme = "http" if whole else url.split("://", 1)[0] if "://" in url else ""
        if not scheme:
            collector.leave_out(where, f"left out: the URL {_plain(url)} has no host")
            return
        if scheme.lower() not in ("http", "https"):
            collector.leave_out(
                where, f"left out: a {scheme} URL (flowrun sends HTTP only)"
            )
            return
        headers = dict(self.headers)
        if self.authorization and header(headers, "Authorization") is None:
            headers["Authorization"] = self.authorization
            if "basicAuth" in self.authorization:
                notes.append(
                    f"Basic auth from shell variables ({self.user_vars}): set the "
                    "variable 'basicAuth' to the base64 encoding of user:password."
                )
        if self.cookies:
            cookie = "; ".join(self.cookies)
            existing = header(headers, "Cookie")
            headers[
                "Cookie"
                if existing is None
                else next(k for k in headers if k.lower() == "cookie")
            ] = cookie if existing is None else f"{existing}; {cookie}"
        if self.queries:
            url += ("&" if "?" in url else "?") + "&".join(self.queries)
        body = None
        method = self.method
        if self.get and (self.data or self.json):
            url += ("&" if "?" in url else "?") + "&".join(self.data + self.json)
        elif self.json:
            _set_default(headers, "Content-Type", "application/json")
            _set_default(headers, "Accept", "application/json")
            body = "".join(self.json)
        elif self.data:
            body = "&".join(self.data)
            if header(headers, "Content-Type") is None:
                if _json_value(body) is not None:
                    # curl would label this JSON a form; what was meant is JSON.
                    headers["Content-Type"] = "application/json"
                    notes.append(
                        "The data is JSON but the command set no Content-Type (curl "
                        "would send a form Content-Type): it is sent as JSON."
                    )
                elif not self.upload:
                    # curl sends -d data as a form unless told otherwise.
                    headers["Content-Type"] = "application/x-www-form-urlencoded"
        elif self.form:
            content_type, body = multipart(self.form)
            given = header(headers, "Content-Type")
            if given is not None and "boundary=" not in given:
                # curl adds its boundary to a multipart type given by hand.
                boundary = content_type.split("; ", 1)[1]
                content_type = f"{given.strip().rstrip(';')}; {boundary}"
            for key in [k for k in headers if k.lower() == "content-type"]:
                del headers[key]
            headers["Content-Type"] = content_type
        if isinstance(body, str) and "json" in (header(headers, "Content-Type") or ""):
            parsed = _json_value(body)
            if parsed is not None:
                body = parsed
        if method is None:
            if self.head:
                method = "HEAD"
            elif self.upload:
                method = "PUT"
            elif (body is not None or self.sends) and not self.get:
                method = "POST"
            else:
                method = "GET"
        if body == "":
            body = None
        skip = self.skip
        if method not in METHODS:
            notes.append(
                f"Method {method}: flowrun sends {', '.join(METHODS)}, so this node "
                f"is a {'POST' if body is not None else 'GET'}, skipped by default."
            )
            skip = skip or f"method {method} is not one flowrun sends"
            method = "POST" if body is not None else "GET"
        if body is not None and method in ("GET", "HEAD"):
            notes.append(f"curl sends this {method} request's body; flowrun does not.")
        for name in sorted({m for v in (url, headers, body) for m in _marks(v)}):
            if name == "basicAuth" and "basicAuth" in (self.authorization or ""):
                self.owner.variables.setdefault(name, "")
                continue  # the Basic auth note says it
            self.owner.declare(name, notes)
        try:
            path = urlsplit(_plain(url)).path or "/"
        except ValueError:  # a host urllib cannot read ([::1 without its ])
            path = "/" + _plain(url).split("://", 1)[-1].partition("/")[2]
        name = f"{method} {path}"
        node = {"id": self.owner.collector.ids(name), "name": name}
        node.update(method=method, url=_final(url))
        if headers:
            node["headers"] = {_plain(k): _final(v) for k, v in headers.items()}
        if body is not None:
            node["body"] = _final(body)
        if self.timeout is not None:
            node["timeout"] = self.timeout
        collector.add(node, where, notes, skip)


def _marks(value):
    """The shell variables a value uses."""
    if isinstance(value, str):
        return _MARK.findall(value)
    if isinstance(value, dict):
        return [m for k, v in value.items() for m in (*_marks(k), *_marks(v))]
    if isinstance(value, list):
        return [m for v in value for m in _marks(v)]
    return []


def _set_default(headers: dict, name: str, value: str) -> None:
    if header(headers, name) is None:
        headers[name] = value


def _range(part: str):
    """The values of a URL glob range ``[1-3]``, ``[a-c]``, ``[001-100:10]``."""
    m = re.fullmatch(r"\[(\d+)-(\d+)(?::(\d+))?\]", part)
    if m:
        start, end, step = m.group(1), m.group(2), int(m.group(3) or 1)
        width = len(start) if start.startswith("0") else 0
        values = range(int(start), int(end) + 1, max(step, 1))
        return [str(v).zfill(width) for v in itertools.islice(values, _MAX_GLOB + 1)]
    m = re.fullmatch(r"\[([a-zA-Z])-([a-zA-Z])(?::(\d+))?\]", part)
    if m:
        step = max(int(m.group(3) or 1), 1)
        return [chr(c) for c in range(ord(m.group(1)), ord(m.group(2)) + 1, step)]
    return None


_DATA_OPTIONS = (
    "--data",
    "--data-ascii",
    "--data-binary",
    "--data-raw",
    "--data-urlencode",
)
_HANDLERS = {
    None: _Request.url,
    "--url": _Request.url,
    "--request": _Request.request,
    "--header": _Request.header_,
    **{opt: (lambda o: lambda self, v: self.data_(o, v))(opt) for opt in _DATA_OPTIONS},
    "--json": _Request.json_,
    "--form": lambda self, v: self.form_("--form", v),
    "--form-string": lambda self, v: self.form_("--form-string", v),
    "--user": _Request.user,
    "--oauth2-bearer": lambda self, v: setattr(self, "authorization", f"Bearer {v}"),
    "--cookie": _Request.cookie,
    "--user-agent": lambda self, v: self.set_header("User-Agent", v, replace=False),
    "--referer": lambda self, v: self.set_header(
        "Referer", v.removesuffix(";auto"), replace=False
    ),
    "--max-time": _Request.max_time,
    "--get": lambda self, v: setattr(self, "get", True),
    "--head": lambda self, v: setattr(self, "head", True),
    "--globoff": lambda self, v: setattr(self, "globoff", True),
    "--upload-file": _Request.upload_file,
    "--url-query": _Request.url_query,
    "--variable": _Request.variable,
    "--range": _Request.range_,
    "--continue-at": _Request.continue_at,
    "--time-cond": _Request.time_cond,
}
# Flags in curl's manual that are neither quiet nor handled (noted when used).
_KNOWN_FLAGS = set(_SHORT.values()) | set(
    """
--append --cert-status --crlf --disable-eprt --ftp-create-dirs --ftp-pasv --ftp-pret
--ftp-skip-pasv-ip --ftp-ssl-ccc --ftp-ssl-control --haproxy-protocol --list-only
--mail-rcpt-allowfails --preproxy --proxy-anyauth --proxy-basic --proxy-digest
--proxy-insecure --proxy-negotiate --proxy-ntlm --proxy-ssl-allow-beast
--proxy-ssl-auto-client-cert --proxy-tlsv1 --proxytunnel --sasl-ir --socks5-basic
--socks5-gssapi --socks5-gssapi-nec --ssl --ssl-auto-client-cert --ssl-reqd
--tftp-no-options --use-ascii --tls-earlydata --proxy-http2 --parallel-immediate
""".split()
)
