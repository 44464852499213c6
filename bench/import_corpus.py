"""Import every Postman, OpenAPI and curl input under DIR and count the outcomes.

Walks DIR (recursively) and sorts what it finds:

- a JSON file with Postman's ``info`` and ``item`` (or the Postman API's
  ``{"collection": …}`` wrapper) is a Postman collection;
- a JSON or YAML file with a top-level ``openapi`` or ``swagger`` key is an OpenAPI
  document (other JSON/YAML files, such as fragments its ``$ref``s point to or
  Postman environments, are counted as "other" and not imported);
- a ``.sh``, ``.bat``, ``.ps1``, ``.curl`` or ``.txt`` file is a file of curl commands,
  one input per block of lines separated by blank lines (each block is what a person
  would paste).

Each input goes through ``flowrun.importers.load`` in this process, with the file's
path so an OpenAPI document's ``$ref`` to a neighbouring file is followed. Outcomes:

- clean: imported, no note;
- with notes: imported, with notes saying what could not be carried over;
- refused: ``FlowInvalid`` (the input has nothing flowrun can import);
- crashed: any other exception, or slower than ``--timeout`` seconds.

It also checks the importer's own count of requests against an independent count
(Postman request items, OpenAPI operations, curl invocations): a difference is a
request that disappeared without a note, and is listed as a "count mismatch".

    .venv/bin/python bench/import_corpus.py /work/corpus
    .venv/bin/python bench/import_corpus.py DIR --slowest 10 --show refused,crashed
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import sys
import time
import traceback
from collections import Counter
from pathlib import Path

import yaml

from flowrun import importers
from flowrun.errors import FlowInvalid

CURL_SUFFIXES = {".sh", ".bat", ".ps1", ".curl", ".txt"}
_OPENAPI_YAML = re.compile(r"^(openapi|swagger)\s*:", re.M)
# A command line that runs curl: at the start of a line (after a "$ " prompt), or
# fed by a pipe. Shell scripts that only mention curl inside functions are not input.
_CURL_WORD = re.compile(
    r"(?:^[ \t]*(?:\$[ \t]+)?(?:\S*/)?|\|[ \t]*)curl(?:\.exe)?(?=\s|$)", re.M
)
OPERATIONS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


class Timeout(Exception):
    pass


def inputs(root: Path):
    """Yield ``(format, label, text, path, expected request count or None)``."""
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        suffix = path.suffix.lower()
        if suffix in CURL_SUFFIXES:
            text = path.read_text("utf-8", errors="replace")
            for number, block in _blocks(text):
                if _CURL_WORD.search(block):
                    count = len(_CURL_WORD.findall(block))
                    yield "curl", f"{path}:{number}", block, None, count
            continue
        if suffix not in (".json", ".yaml", ".yml"):
            continue
        raw = path.read_bytes()
        text = raw.decode("utf-8-sig", errors="replace")
        doc = None
        if suffix == ".json":
            try:
                doc = json.loads(text)
            except ValueError:
                yield "other", str(path), "", None, None
                continue
        elif _OPENAPI_YAML.search(text):
            doc = _yaml(text)
        if isinstance(doc, dict) and isinstance(doc.get("collection"), dict):
            doc = doc["collection"]
        if isinstance(doc, dict) and "info" in doc and "item" in doc:
            yield "postman", str(path), raw_text(raw), path, _postman_requests(doc)
        elif isinstance(doc, dict) and ("openapi" in doc or "swagger" in doc):
            yield "openapi", str(path), raw_text(raw), path, _operations(doc)
        else:
            yield "other", str(path), "", None, None


def raw_text(raw: bytes) -> str:
    """The file as the importer would be given it: byte-order mark and all."""
    for bom, codec in ((b"\xef\xbb\xbf", "utf-8"), (b"\xff\xfe", "utf-16")):
        if raw.startswith(bom):
            return raw.decode(codec)
    return raw.decode("utf-8", errors="replace")


def _yaml(text: str):
    try:
        return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError:
        return None


def _blocks(text: str):
    """``(first line number, block)`` for blocks separated by blank lines."""
    number, lines, start = 0, [], 1
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip():
            if not lines:
                start = number
            lines.append(line)
        elif lines:
            yield start, "\n".join(lines)
            lines = []
    if lines:
        yield start, "\n".join(lines)


def _postman_requests(doc) -> int:
    count = 0
    stack = [doc.get("item")]
    while stack:
        items = stack.pop()
        for item in items if isinstance(items, list) else []:
            if isinstance(item, dict) and "item" in item:
                stack.append(item["item"])
            elif isinstance(item, dict) and "request" in item:
                count += 1
    return count


def _operations(doc) -> int | None:
    paths = doc.get("paths")
    webhooks = doc.get("webhooks")
    if isinstance(paths, dict) and "$ref" in paths:
        return None  # the paths live in another document
    count = 0
    for group in (paths, webhooks):
        for item in (group if isinstance(group, dict) else {}).values():
            if not isinstance(item, dict):
                continue
            if "$ref" in item:
                return None  # the operations live in another document
            count += sum(1 for m in item if m in OPERATIONS)
    return count


def _alarm(signum, frame):
    raise Timeout()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dir", type=Path, help="folder to search for inputs")
    parser.add_argument("--slowest", type=int, default=5, help="slowest inputs shown")
    parser.add_argument(
        "--timeout",
        type=float,
        default=60,
        help="seconds before an input counts as crashed",
    )
    parser.add_argument(
        "--show",
        default="refused,crashed,mismatch",
        help="outcomes listed one by one (comma-separated: clean, notes, refused, "
        "crashed, mismatch)",
    )
    args = parser.parse_args()
    show = set(args.show.split(","))
    signal.signal(signal.SIGALRM, _alarm)
    outcomes: dict[str, Counter] = {}
    requests: dict[str, Counter] = {}
    timings: list[tuple[float, str]] = []
    listed: list[str] = []
    others = 0
    for fmt, label, text, path, expected in inputs(args.dir):
        if fmt == "other":
            others += 1
            continue
        counts = outcomes.setdefault(fmt, Counter())
        started = time.perf_counter()
        signal.setitimer(signal.ITIMER_REAL, args.timeout)
        try:
            result = importers.load(fmt, text, path=path)
        except FlowInvalid as exc:
            # An importer's own bug, turned into a message for the person.
            crash = importers.UNEXPECTED in exc.message
            outcome, detail = ("crashed" if crash else "refused"), exc.message
        except Timeout:
            outcome, detail = "crashed", f"still running after {args.timeout:g}s"
        except Exception as exc:  # noqa: BLE001 - counting every crash is the point
            frame = traceback.extract_tb(exc.__traceback__)[-1]
            outcome = "crashed"
            detail = f"{type(exc).__name__}: {exc} ({frame.filename}:{frame.lineno})"
        else:
            report = result.report
            outcome = "notes" if report.notes else "clean"
            detail = report.summary()
            tally = requests.setdefault(fmt, Counter())
            for key, value in report.counts().items():
                tally[key] += value
            if expected is not None and (
                # One curl invocation may send several requests (URLs, globs,
                # --next): fewer than invocations is what would be a loss.
                report.requests < expected
                if fmt == "curl"
                else report.requests != expected
            ):
                counts["mismatch"] += 1
                if "mismatch" in show:
                    listed.append(
                        f"mismatch  {label}: {expected} requests in the input, "
                        f"{report.requests} reported"
                    )
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        elapsed = time.perf_counter() - started
        timings.append((elapsed, label))
        counts[outcome] += 1
        if outcome in show:
            listed.append(f"{outcome:9} {label}: {detail}")

    for line in listed:
        print(line)
    if listed:
        print()
    print(
        f"{'format':8} {'inputs':>6} {'clean':>6} {'notes':>6} {'refused':>7} "
        f"{'crashed':>7} {'mismatch':>8}"
    )
    total = Counter()
    for fmt in ("postman", "openapi", "curl"):
        c = outcomes.get(fmt, Counter())
        n = sum(c[k] for k in ("clean", "notes", "refused", "crashed"))
        total.update(c)
        print(
            f"{fmt:8} {n:6} {c['clean']:6} {c['notes']:6} {c['refused']:7} "
            f"{c['crashed']:7} {c['mismatch']:8}"
        )
    n = sum(total[k] for k in ("clean", "notes", "refused", "crashed"))
    print(
        f"{'all':8} {n:6} {total['clean']:6} {total['notes']:6} "
        f"{total['refused']:7} {total['crashed']:7} {total['mismatch']:8}"
    )
    print(f"(other files, not imported: {others})")
    print()
    print("requests in the imported inputs:")
    for fmt, tally in requests.items():
        print(f"  {fmt:8} " + ", ".join(f"{k} {v}" for k, v in tally.items()))
    print()
    print(f"slowest {args.slowest}:")
    for elapsed, label in sorted(timings, reverse=True)[: args.slowest]:
        print(f"  {elapsed * 1000:9.1f} ms  {label}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
