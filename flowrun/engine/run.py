"""The one execution engine: a validated flow plus run options → ordered events.

Pure and synchronous (no Flask). The caller steers a run through ``Controls``:
cancellation (checked between steps and while waiting; a request in flight is
aborted only by a forced stop), answers to prompts, and ``continue`` signals for
step/auto modes.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import secrets
import string
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from flowrun.engine import events, paths
from flowrun.engine.budget import DEFAULT_S, Budget
from flowrun.engine.checks import condition_holds, validate_response
from flowrun.engine.controls import Controls
from flowrun.engine.flow import (
    DEFAULT_TIMEOUT,
    RunOptions,
    header,
    join_url,
    node_headers,
    node_validations,
)
from flowrun.engine.placeholders import Context, NodeResult, substitute
from flowrun.errors import (
    BlockedTarget,
    BudgetExceeded,
    InputMissing,
    StepError,
    TargetUnreachable,
)
from flowrun.http.client import Client
from flowrun.http.forms import form_urlencode
from flowrun.http.guard import NetworkGuard
from flowrun.jsontext import clean, escape_surrogates
from flowrun.settings import split
from flowrun.store.masking import Secrets

_ALPHABET = string.ascii_lowercase + string.digits


def new_execution_id() -> str:
    """``exec-<13-digit epoch ms>-<9 chars [a-z0-9]>``, the chars uniformly random.

    One read of the OS's random source (``secrets.choice`` reads it per char):
    bytes of 252 and up are dropped so that ``% 36`` has no bias.
    """
    suffix = ""
    while len(suffix) < 9:
        suffix += "".join(_ALPHABET[b % 36] for b in secrets.token_bytes(12) if b < 252)
    return f"exec-{int(time.time() * 1000):013d}-{suffix[:9]}"


@dataclass
class EngineSettings:
    max_body_bytes: int = 1_048_576
    max_validate_bytes: int = 16_777_216
    input_timeout_s: float = 600
    guard: NetworkGuard | None = None
    # True, False (no certificate check) or the path of a CA bundle.
    verify_tls: bool | str = True
    step_cpu_s: float = DEFAULT_S
    # Variables masked in every event (FLOWRUN_SECRET_VARS).
    secret_vars: frozenset = frozenset()
    max_request_bytes: int = 10_485_760

    @classmethod
    def from_settings(cls, values: dict) -> EngineSettings:
        """Build from the settings table (``flowrun.settings.load()``); a fresh guard
        each time, so each run resolves its targets' addresses anew."""
        blocked = _networks(values["FLOWRUN_BLOCKED_NETWORKS"])
        allowed = split(values["FLOWRUN_ALLOWED_HOSTS"])
        return cls(
            max_body_bytes=int(values["FLOWRUN_MAX_BODY_BYTES"]),
            max_validate_bytes=int(values["FLOWRUN_MAX_VALIDATE_BYTES"]),
            input_timeout_s=float(values["FLOWRUN_INPUT_TIMEOUT_S"]),
            step_cpu_s=float(values["FLOWRUN_STEP_CPU_S"]),
            max_request_bytes=int(values["FLOWRUN_MAX_REQUEST_BYTES"]),
            guard=NetworkGuard(blocked, allowed or None)
            if blocked or allowed
            else None,
            secret_vars=frozenset(split(values["FLOWRUN_SECRET_VARS"])),
        )


@functools.lru_cache(maxsize=8)
def _networks(setting: str) -> tuple:
    """FLOWRUN_BLOCKED_NETWORKS parsed once, not before every run."""
    return tuple(ipaddress.ip_network(n, strict=False) for n in split(setting))


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class _Tally:
    """What ``end`` reports: counts, and where the run stopped."""

    ran_to: int  # nodes from this index on did not run
    executed: int = 0
    skipped: int = 0
    failed: int = 0
    interrupted: bool = False


# Why a step failed, in ``Run.failures``: the CLI's exit code tells them apart.
FAILED_CHECK = "check"  # a validation did not hold
UNREACHABLE = "unreachable"  # timeout, refused, DNS, TLS, blocked target
NO_INPUT = "input"  # a prompt had no answer
OTHER = "error"  # an unresolvable placeholder, an internal error


class Run:
    """One execution of a flow. Iterate ``events()`` once.

    Variables resolve in one order: run options over the environment over the
    flow's ``variables``. Secret values (``Secrets``) are masked in every event.
    """

    def __init__(
        self,
        flow: dict,
        options: RunOptions | None = None,
        controls: Controls | None = None,
        settings: EngineSettings | None = None,
        execution_id: str | None = None,
    ):
        self.flow = flow
        self.options = options or RunOptions()
        self.controls = controls or Controls()
        self.settings = settings or EngineSettings()
        self.execution_id = execution_id or new_execution_id()
        self.nodes: list[dict] = flow["nodes"]
        self.defaults: dict = flow.get("defaults") or {}
        variables = dict(flow.get("variables") or {})
        variables.update(self.options.env_variables)
        variables.update(self.options.variables)
        self.ctx = Context(
            vars=variables,
            inputs=dict(self.options.inputs),
            node_ids=frozenset(n["id"] for n in self.nodes),
            max_bytes=self.settings.max_request_bytes,
        )
        self.secrets = Secrets(
            {
                *self.settings.secret_vars,
                *self.options.env_secrets,
                *(flow.get("secrets") or ()),
            },
            self.ctx.vars,
            self.ctx.inputs,
        )
        self.log: list[dict] = []
        # node id -> why it failed (FAILED_CHECK, UNREACHABLE, NO_INPUT, OTHER)
        self.failures: dict[str, str] = {}
        self._client: Client | None = None

    def events(self) -> Iterator[events.Event]:
        """Yield the run's events in order, ending with exactly one ``end``.

        Secrets are masked in each (``Secrets``); ``end``'s ``executionLog``
        holds the records as their ``step`` events showed them.
        """
        for ev in self._events():
            if self.secrets.active:
                self._mask(ev)
            yield ev

    def _mask(self, ev: events.Event) -> None:
        mask = self.secrets.mask
        name = ev.name
        if name == "step":
            shown = mask(ev.record)
            if shown is not ev.record:
                log = self.log
                for i in range(len(log) - 1, -1, -1):
                    if log[i] is ev.record:
                        log[i] = shown
                        break
                ev.record = shown
        elif name == "step_start":
            ev.url = mask(ev.url)
        elif name == "input_required":
            ev.prompts = mask(ev.prompts)
        elif name == "error":
            ev.message = mask(ev.message)

    def preview(self) -> Iterator[dict]:
        """Render every node's request without sending anything (a dry run).

        Yields one record per node, as a ``step`` record would show the request
        (``url``, ``request``), or with ``error`` saying why it cannot be rendered
        yet (a value from a response, an unanswered prompt). Conditions are not
        evaluated: they need responses.
        """
        for index, node in enumerate(self.nodes):
            record = self._base(index, node)
            self.ctx.now = time.time()
            try:
                url, headers, body = self._render(node, record["substitutions"])
            except StepError as exc:
                record["error"] = str(exc)
            else:
                record["url"] = url
                _, shown = _encode_body(
                    record["method"], body, headers, node, self.defaults
                )
                record["request"] = {"headers": headers, "body": shown}
            yield self.secrets.mask(record)

    def _events(self) -> Iterator[events.Event]:
        eid = self.execution_id
        started = time.perf_counter()
        yield events.Start(
            eid, len(self.nodes), self.flow.get("name") or "", _now_iso()
        )
        tally = _Tally(ran_to=len(self.nodes))
        try:
            for index, node in enumerate(self.nodes):
                # The in-memory flag is enough here: every wait below consults
                # should_stop(), and so does the last check before a step starts
                # (the one that must see a stop recorded by another worker).
                if self.controls.cancelled.is_set():
                    tally.interrupted, tally.ran_to = True, index
                    break
                if not (yield from self._node(index, node, tally)):
                    break
        finally:
            if self._client is not None:
                self._client.close()
        # A stop that arrived while the last step was in flight: that step
        # completed, but the person asked to stop, so the run says so. Past this
        # point a stop is refused (409): it could not change how the run ended.
        if self.controls.seal():
            tally.interrupted = True
        yield events.End(
            eid,
            success=not tally.interrupted and tally.failed == 0,
            interrupted=tally.interrupted,
            stepsExecuted=tally.executed,
            stepsSkipped=tally.skipped,
            stepsFailed=tally.failed,
            notRun=[n["id"] for n in self.nodes[tally.ran_to :]],
            duration=round(time.perf_counter() - started, 3),
            executionLog=self.log,
        )

    def _node(self, index: int, node: dict, tally: _Tally):
        """Yield one node's events and count it; return False when the run ends."""
        eid = self.execution_id
        if index < self.options.start_step:
            record = self._skip(
                index, node, f"before startStep {self.options.start_step}"
            )
            tally.skipped += 1
            yield events.StepEvent(eid, record)
            return True
        self.ctx.budget = Budget(self.settings.step_cpu_s)
        outcome = yield from self._guarded(self._prepare, index, node)
        if outcome == "stopped":
            tally.interrupted, tally.ran_to = True, index
            return False
        executed = outcome is None
        if executed:
            record = yield from self._guarded(self._execute, index, node)
            tally.executed += 1
        else:  # skipped, or a prompt went unanswered
            record = outcome
        if record["status"] == "skipped":
            tally.skipped += 1
        elif record["status"] == "failed":
            tally.failed += 1
        yield events.StepEvent(eid, record)
        if record["status"] != "failed":
            return True
        yield events.Error(eid, record["error"], index + 1)
        # A stop that cut retries short is an interruption, not just a failure.
        interrupted = executed and self.controls.should_stop()
        if not interrupted and self.options.continue_on_failure:
            return True
        tally.interrupted, tally.ran_to = interrupted, index + 1
        return False

    def _guarded(self, step, index: int, node: dict):
        """``yield from step(index, node)``; a bug becomes a failed step, so the
        stream still ends with ``end``."""
        try:
            return (yield from step(index, node))
        except Exception as exc:
            return self._fail_early(index, node, _internal(exc))

    # -- one node -------------------------------------------------------------------
    def _base(self, index: int, node: dict) -> dict:
        return {
            "step": index + 1,
            "stepIndex": index,
            "id": node["id"],
            "name": node.get("name", node["id"]),
            "status": None,
            "method": node.get("method", "GET").upper(),
            "url": node.get("url", ""),
            "request": None,
            "response": None,
            "validations": [],
            "substitutions": [],
            "duration": 0,
            "attempts": 0,
            "error": None,
            "skipReason": None,
            "launchBrowser": None,
        }

    def _skip(self, index: int, node: dict, reason: str) -> dict:
        record = self._base(index, node)
        record["status"] = "skipped"
        record["skipReason"] = reason
        self.ctx.results[node["id"]] = NodeResult("skipped")
        self.log.append(record)
        return record

    def _fail_early(
        self, index: int, node: dict, message: str, why: str = OTHER
    ) -> dict:
        record = self._base(index, node)
        record["status"] = "failed"
        record["error"] = message
        self.failures[node["id"]] = why
        self.ctx.results[node["id"]] = NodeResult("failed")
        self.log.append(record)
        return record

    def _prepare(self, index: int, node: dict):
        """Pause, prompt, evaluate conditions and delay; a generator of events.

        Returns None to go on, ``"stopped"``, or a finished record (skipped/failed).
        """
        eid, controls, opts = self.execution_id, self.controls, self.options
        if opts.mode == "step":
            controls.expect_continue()
            yield events.Paused(eid, index + 1, index)
            if not controls.wait_continue(None):
                return "stopped"
        elif opts.mode == "auto" and index > opts.start_step:
            delay = opts.auto_step_delay_ms / 1000
            resume_at = int((time.time() + delay) * 1000)
            controls.expect_continue()
            yield events.Paused(eid, index + 1, index, resume_at)
            if not controls.wait_continue(delay):
                return "stopped"
        prompts = node.get("userPrompts") or {}
        missing = {k: v for k, v in prompts.items() if k not in self.ctx.inputs}
        if missing:
            self.ctx.now = time.time()
            try:
                shown = substitute(missing, self.ctx, "userPrompts", None, typed=False)
            except StepError:
                shown = missing
            controls.expect_input(index)
            yield events.InputRequired(
                eid, index + 1, index, node.get("name", node["id"]), shown
            )
            try:
                answers = controls.ask(index, shown, self.settings.input_timeout_s)
            except InputMissing as exc:
                return self._fail_early(index, node, str(exc), NO_INPUT)
            finally:
                # an overriding ask() (terminal, no-prompt runs) may not clear it
                controls.input_done(index)
            if answers is None:
                return "stopped"
            absent = [k for k in missing if k not in answers]
            if absent:
                return self._fail_early(
                    index,
                    node,
                    f"No answer given for prompt(s): {', '.join(absent)}",
                    NO_INPUT,
                )
            self.ctx.inputs.update({k: answers[k] for k in missing})
        for cond in node.get("conditions") or []:
            try:
                holds, reason = condition_holds(cond, self.ctx)
            except BudgetExceeded as exc:
                return self._fail_early(index, node, str(exc))
            if not holds:
                return self._skip(index, node, reason)
        delay_ms = node.get("delayMs") or 0
        if delay_ms and not controls.sleep(delay_ms / 1000):
            return "stopped"
        if controls.should_stop():
            return "stopped"
        return None

    def _execute(self, index: int, node: dict):
        """Send the node's request (with retries) and validate it; a generator."""
        eid = self.execution_id
        record = self._base(index, node)
        self.ctx.now = time.time()
        method = record["method"]
        started = time.perf_counter()
        try:
            with self.ctx.budget:
                url, headers, body = self._render(node, record["substitutions"])
                self.ctx.budget.check()
        except StepError as exc:
            yield events.StepStart(
                eid, index + 1, index, node["id"], record["name"], method, node["url"]
            )
            self.failures[node["id"]] = OTHER
            return self._finish(record, node, started, error=str(exc))
        url = clean(url)  # a URL cannot carry a lone surrogate either
        record["url"] = url
        yield events.StepStart(
            eid, index + 1, index, node["id"], record["name"], method, url
        )
        data, shown_body = _encode_body(method, body, headers, node, self.defaults)
        record["request"] = {"headers": headers, "body": shown_body}
        reply, failure = self._send(node, record, method, url, _wire(headers), data)
        error = None
        if reply is not None:
            self._keep_reply(node, record, reply)
        if failure is not None:
            error = str(failure)
            unreachable = isinstance(failure, (TargetUnreachable, BlockedTarget))
            self.failures[node["id"]] = UNREACHABLE if unreachable else OTHER
        else:
            failed = [r["message"] for r in record["validations"] if not r["passed"]]
            if failed:
                error = "Validation failed: " + "; ".join(failed)
                self.failures[node["id"]] = FAILED_CHECK
        return self._finish(record, node, started, error=error)

    def _render(self, node: dict, subs: list[dict]) -> tuple[str, dict, object]:
        """The node's URL, headers and body with placeholders substituted.

        Raise RequestTooLarge as soon as they pass FLOWRUN_MAX_REQUEST_BYTES
        together, before the rest is built.
        """
        with self.ctx.rendering():
            return self._render_all(node, subs)

    def _render_all(self, node: dict, subs: list[dict]) -> tuple[str, dict, object]:
        ctx, defaults = self.ctx, self.defaults
        url = join_url(
            substitute(defaults.get("baseUrl", ""), ctx, "baseUrl", subs, False),
            substitute(node["url"], ctx, "url", subs, False),
        )
        headers = substitute(node_headers(node, defaults), ctx, "headers", subs, False)
        for name, value in headers.items():
            if not isinstance(value, str):
                headers[name] = paths.text(value)
        body = node.get("body")
        if body is not None:
            body = substitute(body, ctx, "body", subs)
        return url, headers, body

    def _send(self, node, record, method, url, headers, data):
        """Send and validate, again while ``retry`` allows; ``(reply, StepError)``.

        The last attempt's validation results are left in the record.
        """
        defaults = self.defaults
        timeout = float(node.get("timeout", defaults.get("timeout", DEFAULT_TIMEOUT)))
        retry = node.get("retry", defaults.get("retry")) or {}
        attempts_left = 1 + int(retry.get("count", 0) or 0)
        interval = (retry.get("intervalMs", 0) or 0) / 1000
        client = self._client_for()
        while True:
            attempts_left -= 1
            record["attempts"] += 1
            error, reply = None, None
            try:
                reply = client.send(method, url, headers, data, timeout)
            except StepError as exc:
                error = exc
            results = []
            if reply is not None:
                results = validate_response(
                    self._validations(node),
                    status=reply.status,
                    headers=reply.lower_headers,
                    body=reply.body,
                    duration_ms=reply.elapsed_ms,
                    ctx=self.ctx,
                )
            record["validations"] = results
            passed = error is None and all(r["passed"] for r in results)
            if passed or attempts_left <= 0 or self.ctx.budget.exhausted:
                return reply, error
            if self.controls.should_stop():
                return reply, error
            if interval and not self.controls.sleep(interval):
                return reply, error

    def _keep_reply(self, node: dict, record: dict, reply) -> None:
        """Put the response in the record, and where later steps can refer to it."""
        record["response"] = {
            "status": reply.status,
            "statusText": reply.status_text,
            "headers": reply.headers,
            "body": reply.shown_body,
            "size": reply.size,
            "truncated": reply.truncated,
        }
        self.ctx.results[node["id"]] = NodeResult(
            "completed", reply.body, reply.lower_headers, reply.status
        )
        if node.get("launchBrowser"):
            try:
                record["launchBrowser"] = paths.text(
                    paths.resolve(reply.body, node["launchBrowser"])
                )
            except (paths.Missing, ValueError):
                pass

    def _finish(self, record: dict, node: dict, started: float, error: str | None):
        record["duration"] = round(time.perf_counter() - started, 3)
        record["status"] = "failed" if error else "completed"
        record["error"] = error
        result = self.ctx.results.get(node["id"])
        if result is None:
            self.ctx.results[node["id"]] = NodeResult(record["status"])
        else:
            result.status = record["status"]
        self.log.append(record)
        return record

    def _validations(self, node: dict):
        return node_validations(node, self.defaults)

    def _client_for(self) -> Client:
        if self._client is None:
            s = self.settings
            self._client = Client(
                s.max_body_bytes,
                s.max_validate_bytes,
                s.guard,
                s.verify_tls,
                s.max_request_bytes,
            )
            # A forced stop aborts the request in flight (StepAborted).
            self.controls.on_force(self._client.abort)
        return self._client


def _internal(exc: Exception) -> str:
    return f"Internal error: {type(exc).__name__}: {exc}"


def _wire(headers: dict) -> dict:
    """Header values as sent: http.client would send other text than ASCII as
    latin-1 (or raise), so such values are sent as UTF-8 bytes (a lone surrogate,
    which UTF-8 cannot carry, as U+FFFD)."""
    if "".join(headers.values()).isascii():
        return headers
    return {k: v if v.isascii() else clean(v).encode() for k, v in headers.items()}


def _encode_body(method, body, headers, node, defaults):
    """Return ``(data to send, body as shown in the record)``; sets Content-Type."""
    if body is None or method in ("GET", "HEAD"):
        return None, None
    content_type = header(headers, "Content-Type") or ""
    fmt = node.get("bodyFormat") or defaults.get("bodyFormat")
    if "x-www-form-urlencoded" in content_type.lower():
        fmt = "form-urlencoded"
    # Text a target or a flow gave may hold lone surrogates, which UTF-8 cannot
    # carry: JSON sends them escaped, other text as U+FFFD.
    if isinstance(body, str):
        return clean(body).encode(), body
    if fmt == "form-urlencoded":
        if not content_type:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        encoded = form_urlencode(body)
        return encoded.encode(), encoded
    if fmt == "text":
        text = paths.text(body)
        return clean(text).encode(), text
    if not content_type:
        headers["Content-Type"] = "application/json"
    text = escape_surrogates(json.dumps(body, ensure_ascii=False))
    return text.encode(), body


def run_flow(flow, options=None, controls=None, settings=None, execution_id=None):
    """Run a validated, normalised flow; yield its events."""
    return Run(flow, options, controls, settings, execution_id).events()
