"""Command lines read as the shell would: bash (and zsh/sh), Windows cmd, PowerShell.

People paste curl commands from API docs, READMEs, a browser's "Copy as cURL" (bash
or cmd) and scripts: with line continuations (``\\``, ``^``, a backtick), quotes of
every kind, shell variables (``$TOKEN``, ``${TOKEN:-x}``, ``%TOKEN%``,
``$env:TOKEN``), pipes (``| jq``), redirections (``> out.json``, ``2>&1``), data piped
in (``echo '{…}' | curl -d @-``, here-documents) and other commands around them.
:func:`read` splits such text into :class:`Command`\\ s: each curl invocation's words,
what else was on its line, the text given to it on standard input, and the variables
the text assigns (``export TOKEN=…``).

A variable in a word is marked as ``VAR_OPEN + name + VAR_CLOSE`` (two private-use
characters no pasted text contains), so the importer can tell it from text it must
send as written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

VAR_OPEN, VAR_CLOSE = "\ue000", "\ue001"
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_OPERATORS = ("&&", "||", "|&", ";;", "|", ";", "&")
_CURL = re.compile(r"^(?:.*[/\\])?curl(?:\.exe)?$", re.I)
_REDIRECT = re.compile(r"(\d?)(>>|>&|>|&>|<<<|<<-|<<|<)(&\d|-)?")
_ASSIGN = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(.*)$", re.S)
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


def var(name: str) -> str:
    """A word's mark for the shell variable ``name``."""
    return f"{VAR_OPEN}{name}{VAR_CLOSE}"


@dataclass
class Command:
    """One curl invocation as the shell would start it."""

    line: int
    words: list[str]  # curl's arguments (the program name left out)
    dialect: str  # bash, cmd or powershell
    others: list[str] = field(default_factory=list)  # the rest of its line
    stdin: str | None = None  # text piped or redirected into it, when known
    stdin_source: str = ""  # where standard input came from, when not known
    joined: list[int] = field(default_factory=list)  # lines read as continuations


@dataclass
class Script:
    """What :func:`read` found in the text."""

    commands: list[Command]
    ignored: list[tuple[int, str]]  # (line, what) that is not a curl command
    variables: dict[str, str]  # assigned in the text (``export X=1``)
    defaults: dict[str, str]  # ``${X:-default}``
    substitutions: dict[str, str]  # command substitutions: variable -> command


class ShellError(ValueError):
    """Text the shell itself could not read (an unclosed quote)."""

    def __init__(self, line: int, message: str):
        super().__init__(f"line {line}: {message}")
        self.line = line


def dialect_of(text: str) -> str:
    """``cmd`` for a Windows batch line (``^`` continuations, ``^"`` quoting),
    ``powershell`` for backtick continuations, else ``bash``."""
    lines = text.splitlines()
    if any(re.search(r"(?:^|\s)\^\s*$", line) for line in lines) or '^"' in text:
        return "cmd"
    if any(re.search(r"\s`\s*$", line) for line in lines):
        return "powershell"
    return "bash"


def read(text: str) -> Script:
    """Split ``text`` into the curl commands it holds."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    dialect = dialect_of(text)
    lexer = _Lexer(text, dialect)
    tokens = lexer.tokens()
    script = Script([], [], {}, lexer.defaults, lexer.substitutions)
    for pipeline in _pipelines(tokens):
        _command(pipeline, dialect, script)
    return script


# -- grouping ---------------------------------------------------------------------
@dataclass
class _Token:
    kind: str  # word, op, redirect, newline, heredoc
    text: str
    line: int
    raw: str = ""  # the word as written (for naming ignored commands)


def _pipelines(tokens: list[_Token]):
    """Yield each list of commands joined by ``|`` (a command: its tokens)."""
    pipeline: list[list[_Token]] = [[]]
    for token in tokens:
        if token.kind == "op" and token.text in ("|", "|&"):
            pipeline.append([])
        elif token.kind == "newline" or token.kind == "op":
            if any(pipeline):
                yield [c for c in pipeline if c]
            pipeline = [[]]
        else:
            pipeline[-1].append(token)
    if any(pipeline):
        yield [c for c in pipeline if c]


def _command(pipeline: list[list[_Token]], dialect: str, script: Script) -> None:
    curls = [
        i
        for i, tokens in enumerate(pipeline)
        if _first_word(tokens) is not None and _CURL.match(_first_word(tokens))
    ]
    if not curls:
        _not_curl(pipeline, dialect, script)
        return
    for index in curls:
        script.commands.append(_curl(pipeline, index, dialect))


def _curl(pipeline: list[list[_Token]], index: int, dialect: str) -> Command:
    """The curl command at ``pipeline[index]``, with what surrounds it."""
    tokens = pipeline[index]
    words, others, stdin, source = [], [], None, ""
    seen_program = False
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token.kind == "redirect":
            target = tokens[i + 1] if i + 1 < len(tokens) else None
            written = target.raw if target is not None else ""
            if token.text.startswith("<<"):
                stdin = target.text if target is not None else ""
            elif token.text == "<":
                source = f"the file {written}"
                others.append(f"< {written}")
            else:
                others.append(f"{token.text} {written}".strip())
            i += 2
            continue
        if not seen_program:
            seen_program = _CURL.match(token.text) is not None
        else:
            words.append(token.text)
        i += 1
    if index > 0:
        before = pipeline[index - 1]
        fed = _echoed(before)
        if fed is not None:
            stdin = fed
        else:
            source = "the command " + " ".join(t.raw for t in before)
        others.append(" ".join(t.raw for t in before) + " |")
    if index + 1 < len(pipeline):
        others.append("| " + " ".join(t.raw for t in pipeline[index + 1]))
    return Command(
        tokens[0].line, words, dialect, others, stdin, "" if stdin else source
    )


def _not_curl(pipeline, dialect: str, script: Script) -> None:
    """A command that is not curl: a variable assignment, the rest of a curl
    command a missing continuation cut off, or something to ignore."""
    tokens = pipeline[0]
    words = [t.text for t in tokens if t.kind == "word"]
    line = tokens[0].line
    if words and words[0] in ("export", "set", "declare", "local", "readonly"):
        words = [w for w in words[1:] if not w.startswith("-")]
    if words and all(_ASSIGN.match(w) for w in words) and len(pipeline) == 1:
        for word in words:
            name, value = _ASSIGN.match(word).groups()
            script.variables[name] = value
        return
    if (
        words
        and words[0].startswith("-")
        and len(words[0]) > 1
        and script.commands
        and len(pipeline) == 1
    ):
        # Docs often forget a continuation: a line of options after a curl
        # command belongs to it.
        script.commands[-1].words += [t.text for t in tokens if t.kind == "word"]
        script.commands[-1].joined.append(line)
        return
    shown = " ".join(t.raw for t in tokens)
    script.ignored.append((line, shown if len(shown) <= 60 else shown[:57] + "…"))


def _first_word(tokens: list[_Token]) -> str | None:
    for index, token in enumerate(tokens):
        if token.kind == "word":
            if _ASSIGN.match(token.text) or (index == 0 and token.raw in ("$", ">")):
                continue  # FOO=1 curl …, or a prompt pasted with the command
            return token.text
        if token.kind == "redirect":
            return None
    return None


def _echoed(tokens: list[_Token]) -> str | None:
    """What ``echo …``/``printf …`` writes, when the command is that plain."""
    words = [t.text for t in tokens if t.kind == "word"]
    if not words or words[0] not in ("echo", "printf", "Write-Output"):
        return None
    args = words[1:]
    if words[0] == "echo" and args and args[0] == "-n":
        return " ".join(args[1:])
    if words[0] == "printf":
        return args[0].replace("\\n", "\n") if len(args) == 1 else None
    return " ".join(args) + "\n"


# -- the lexer ----------------------------------------------------------------------
class _Lexer:
    def __init__(self, text: str, dialect: str):
        self.text = text
        self.dialect = dialect
        self.i = 0
        self.line = 1
        self.defaults: dict[str, str] = {}
        self.substitutions: dict[str, str] = {}
        self.out: list[_Token] = []
        self.heredocs: list[tuple[_Token, str, bool]] = []

    def tokens(self) -> list[_Token]:
        if self.dialect == "cmd":
            return self._cmd()
        while self.i < len(self.text):
            c = self.text[self.i]
            if c == "\n":
                self._newline()
            elif c in " \t":
                self.i += 1
            elif self._continuation():
                continue
            elif c == "#" and self.dialect == "bash":
                end = self.text.find("\n", self.i)
                self.i = len(self.text) if end == -1 else end
            elif self._operator():
                continue
            else:
                self._word()
        return self.out

    # -- bash and PowerShell --------------------------------------------------
    def _continuation(self) -> bool:
        escape = "`" if self.dialect == "powershell" else "\\"
        if self.text.startswith(escape + "\n", self.i):
            self.i += 2
            self.line += 1
            return True
        return False

    def _newline(self) -> None:
        self.out.append(_Token("newline", "\n", self.line))
        self.i += 1
        self.line += 1
        for token, delimiter, strip in self.heredocs:
            token.text = self._heredoc(delimiter, strip)
        self.heredocs = []

    def _heredoc(self, delimiter: str, strip: bool) -> str:
        lines = []
        while self.i < len(self.text):
            end = self.text.find("\n", self.i)
            end = len(self.text) if end == -1 else end
            line = self.text[self.i : end]
            self.i = min(end + 1, len(self.text))
            self.line += 1
            if (line.lstrip("\t") if strip else line) == delimiter:
                break
            lines.append(line.lstrip("\t") if strip else line)
        return "\n".join(lines) + "\n"

    def _operator(self) -> bool:
        text, i = self.text, self.i
        if text.startswith(("<(", ">("), i):
            # Process substitution: curl is given a file name (/dev/fd/N).
            self.i += 1
            name = self._substitution("(", ")")
            self.out.append(_Token("word", name, self.line, text[i : self.i]))
            return True
        m = _REDIRECT.match(text, i)
        if m:
            self.i = m.end()
            op = m.group(2)
            if m.group(3):
                self.out.append(_Token("redirect", m.group(0), self.line))
                self.out.append(_Token("word", "", self.line))
                return True
            self.out.append(_Token("redirect", m.group(0), self.line))
            if op in ("<<", "<<-"):
                self._skip_blanks()
                word_start = len(self.out)
                self._word()
                target = self.out[word_start]
                target.kind = "heredoc"
                delimiter = target.text
                target.text = ""
                self.heredocs.append((target, delimiter, op == "<<-"))
            elif op == "<<<":
                self._skip_blanks()
                self._word()
                self.out[-1].text += "\n"
            return True
        for op in _OPERATORS:
            if text.startswith(op, i):
                self.out.append(_Token("op", op, self.line))
                self.i += len(op)
                return True
        return False

    def _skip_blanks(self) -> None:
        while self.i < len(self.text) and self.text[self.i] in " \t":
            self.i += 1

    def _word(self) -> None:
        start, line = self.i, self.line
        parts: list[str] = []
        text = self.text
        while self.i < len(text):
            c = text[self.i]
            if c in " \t\n" or (c in "|;&<>" and self.dialect != "cmd"):
                break
            if self._continuation():
                continue
            if self.dialect == "powershell":
                parts.append(self._powershell_part(c))
            else:
                parts.append(self._bash_part(c))
        raw = text[start : self.i]
        if parts or raw:
            word = "".join(parts)
            if word or any(q in raw for q in "'\"$"):
                # (A lone trailing backslash is no argument; "" is an empty one.)
                self.out.append(_Token("word", word, line, raw))

    def _bash_part(self, c: str) -> str:
        text = self.text
        if c == "\\":
            self.i += 2
            return text[self.i - 1 : self.i]
        if c == "'":
            end = text.find("'", self.i + 1)
            if end == -1:
                raise ShellError(self.line, "a ' quote is not closed")
            value = text[self.i + 1 : end]
            self._advance_to(end + 1)
            return value
        if c == "$" and text.startswith("$'", self.i):
            return self._ansi_c()
        if c == '"':
            return self._double_quoted()
        if c == "$":
            return self._expansion()
        if c == "`":
            return self._substitution("`", "`")
        self.i += 1
        return c

    def _double_quoted(self) -> str:
        text = self.text
        self.i += 1
        parts = []
        while True:
            if self.i >= len(text):
                raise ShellError(self.line, 'a " quote is not closed')
            c = text[self.i]
            if c == '"':
                self.i += 1
                return "".join(parts)
            if c == "\\" and text[self.i + 1 : self.i + 2] in ('"', "\\", "$", "`"):
                parts.append(text[self.i + 1])
                self.i += 2
            elif c == "\\" and text[self.i + 1 : self.i + 2] == "\n":
                self.i += 2
                self.line += 1
            elif c == "$":
                parts.append(self._expansion())
            elif c == "`":
                parts.append(self._substitution("`", "`"))
            else:
                if c == "\n":
                    self.line += 1
                parts.append(c)
                self.i += 1

    def _expansion(self) -> str:
        """``$NAME``, ``${NAME}``, ``${NAME:-default}``, ``$(command)``, ``$1``."""
        text, i = self.text, self.i
        if text.startswith("$(", i) and not text.startswith("$((", i):
            self.i += 1
            return self._substitution("(", ")")
        if text.startswith("${", i):
            end = text.find("}", i)
            if end == -1:
                raise ShellError(self.line, "a ${ is not closed")
            inner = text[i + 2 : end]
            self.i = end + 1
            m = re.match(r"([A-Za-z_][A-Za-z0-9_]*|\d+)(?::?[-=](.*))?$", inner, re.S)
            if not m:
                return text[i : end + 1]
            if m.group(2) is not None:
                self.defaults.setdefault(m.group(1), m.group(2))
            return var(m.group(1))
        m = _NAME.match(text, i + 1) or re.compile(r"\d").match(text, i + 1)
        if m is None:
            self.i += 1
            return "$"
        self.i = m.end()
        return var(m.group(0))

    def _substitution(self, opening: str, closing: str) -> str:
        """``$(…)`` or a backquoted command: its output becomes a variable."""
        text = self.text
        depth, j = 1, self.i + 1
        while j < len(text) and depth:
            if text[j] == closing and (opening == closing or depth == 1):
                depth -= 1
            elif text[j] == opening and opening != closing:
                depth += 1
            j += 1
        if depth:
            raise ShellError(
                self.line, f"a command substitution {opening} is not closed"
            )
        command = text[self.i + 1 : j - 1].strip()
        self._advance_to(j)
        name = next(
            (n for n, c in self.substitutions.items() if c == command),
            f"command{len(self.substitutions) + 1}",
        )
        self.substitutions[name] = command
        return var(name)

    def _ansi_c(self) -> str:
        """Bash's ``$'…'`` strings (browsers' "Copy as cURL" writes them)."""
        text = self.text
        j = self.i + 2
        while j < len(text) and text[j] != "'":
            j += 2 if text[j] == "\\" else 1
        if j >= len(text):
            raise ShellError(self.line, "a $'…' string is not closed")
        body = text[self.i + 2 : j]
        self._advance_to(j + 1)

        def decode(m):
            code = m.group(1)
            if code[0] in "xuU" and len(code) > 1:
                return chr(int(code[1:], 16))
            if code[0] in "01234567":
                return chr(int(code, 8))
            if code[0] == "c" and len(code) == 2:
                return chr(ord(code[1].upper()) ^ 0x40)
            return _ANSI_SIMPLE.get(code, code)

        return _ANSI_ESCAPE.sub(decode, body)

    def _powershell_part(self, c: str) -> str:
        text = self.text
        if c == "`":
            self.i += 2
            escaped = text[self.i - 1 : self.i]
            return {"n": "\n", "t": "\t", "r": "\r", "0": "\0"}.get(escaped, escaped)
        if c == "'":
            j, parts = self.i + 1, []
            while True:
                end = text.find("'", j)
                if end == -1:
                    raise ShellError(self.line, "a ' quote is not closed")
                parts.append(text[j:end])
                if text.startswith("''", end):
                    parts.append("'")
                    j = end + 2
                    continue
                self._advance_to(end + 1)
                return "".join(parts)
        if c == '"':
            self.i += 1
            parts = []
            while True:
                if self.i >= len(text):
                    raise ShellError(self.line, 'a " quote is not closed')
                d = text[self.i]
                if d == '"' and text.startswith('""', self.i):
                    parts.append('"')
                    self.i += 2
                elif d == '"':
                    self.i += 1
                    return "".join(parts)
                elif d == "`" and self.i + 1 < len(text):
                    parts.append(self._powershell_part(d))
                elif d == "$":
                    parts.append(self._powershell_variable())
                else:
                    if d == "\n":
                        self.line += 1
                    parts.append(d)
                    self.i += 1
        if c == "$":
            return self._powershell_variable()
        self.i += 1
        return c

    def _powershell_variable(self) -> str:
        m = re.compile(r"\$(?:env:)?([A-Za-z_][A-Za-z0-9_]*)").match(self.text, self.i)
        if m is None:
            self.i += 1
            return "$"
        self.i = m.end()
        return var(m.group(1))

    def _advance_to(self, j: int) -> None:
        self.line += self.text.count("\n", self.i, j)
        self.i = j

    # -- Windows cmd ----------------------------------------------------------
    def _cmd(self) -> list[_Token]:
        """cmd's own pass (``^`` escapes and continuations, ``%VAR%``, operators),
        then each program's arguments split as the C runtime does."""
        text, line = self.text, 1
        quoted = False
        current: list[str] = []
        lines_of: list[int] = []
        i = 0

        def flush(kind="newline", op=""):
            if current:
                self._msvcrt("".join(current), lines_of[0])
            current.clear()
            lines_of.clear()
            self.out.append(_Token(kind, op or "\n", line))

        while i < len(text):
            c = text[i]
            if not current:
                lines_of.append(line)
            if c == "\n":
                quoted = False
                flush()
                line += 1
                i += 1
                continue
            if c == "^" and not quoted:
                nxt = text[i + 1 : i + 2]
                if nxt == "\n":
                    line += 1
                if nxt != "\n":
                    current.append(nxt)
                i += 2
                continue
            if c == "%":
                m = re.match(r"%([A-Za-z_][A-Za-z0-9_]*)%", text[i:])
                if m:
                    current.append(var(m.group(1)))
                    i += m.end()
                    continue
            if not quoted and c in "|&":
                op = (
                    "&&"
                    if text.startswith("&&", i)
                    else "||"
                    if text.startswith("||", i)
                    else c
                )
                flush("op", op)
                i += len(op)
                continue
            if c == '"':
                quoted = not quoted
            current.append(c)
            i += 1
        flush()
        return self.out

    def _msvcrt(self, text: str, line: int) -> None:
        """Split a command line into arguments as the Microsoft C runtime does."""
        i, n = 0, len(text)
        while i < n:
            while i < n and text[i] in " \t":
                i += 1
            if i >= n:
                break
            if text[i] in "<>" and (i == 0 or text[i - 1] in " \t"):
                m = re.match(r"(>>|>|<)", text[i:])
                self.out.append(_Token("redirect", m.group(0), line))
                i += m.end()
                continue
            arg, quoted, start = [], False, i
            while i < n and (quoted or text[i] not in " \t"):
                if text[i] == "\\":
                    j = i
                    while j < n and text[j] == "\\":
                        j += 1
                    count = j - i
                    if j < n and text[j] == '"':
                        arg.append("\\" * (count // 2))
                        if count % 2:
                            arg.append('"')
                            i = j + 1
                        else:
                            i = j
                    else:
                        arg.append("\\" * count)
                        i = j
                elif text[i] == '"':
                    if quoted and text.startswith('""', i):
                        arg.append('"')
                        i += 2
                    else:
                        quoted = not quoted
                        i += 1
                else:
                    arg.append(text[i])
                    i += 1
            self.out.append(_Token("word", "".join(arg), line, text[start:i]))
