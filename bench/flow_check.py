"""Cost of checking a flow document (``validation.load``) for 10- and 100-node flows.

Every call checks a document in full (no ``source`` bytes): the schema, then the
value checks. Two cases: ``new`` documents whose every node differs from all
before (named apart), and ``again``, one document checked over and over (its nodes
known valid). Prints the median of ``--repeat`` timings of ``--number`` calls, in
µs per call.

    .venv/bin/python bench/flow_check.py
    .venv/bin/python bench/flow_check.py --jq 3   # and 3 jq validations per node
"""

from __future__ import annotations

import argparse
import statistics
import timeit

from flowrun.engine import validation


def make_flow(steps: int, jq: int, tag: str = "") -> dict:
    """login, then ``steps - 1`` checked item fetches (as bench/engine_overhead.py)."""
    nodes = [
        {
            "id": "login",
            "name": f"Log in{tag}",
            "method": "POST",
            "url": "/login",
            "body": {"username": "{{ .vars.user }}", "password": "secret"},
            "validations": [
                {"httpStatusCode": 200},
                {"jsonpath": ".sessionId", "exists": True},
            ],
        }
    ]
    for i in range(1, steps):
        nodes.append(
            {
                "id": f"item{i}",
                "name": f"Item {i}{tag}",
                "method": "GET",
                "url": f"/items/{i}",
                "headers": {"Authorization": "Bearer {{ .responses.login.sessionId }}"},
                "validations": [
                    {"httpStatusCode": 200},
                    {"jsonpath": ".id", "equals": i},
                    {"header": "Content-Type", "contains": "application/json"},
                    *({"jq": f".items[{j}].id", "exists": True} for j in range(jq)),
                ],
            }
        )
    return {
        "name": "flow check",
        "variables": {"user": "bench"},
        "defaults": {"baseUrl": "http://127.0.0.1:9", "timeout": 10},
        "nodes": nodes,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--number", type=int, default=0, help="calls per timing")
    parser.add_argument("--jq", type=int, default=0, help="jq validations per node")
    args = parser.parse_args()
    for steps in (10, 100):
        doc = make_flow(steps, args.jq)
        validation.load(doc)  # warm up (and start what starts on first use)
        number = args.number or max(1, 2000 // steps)
        fresh = iter(
            [make_flow(steps, args.jq, f" #{k}") for k in range(args.repeat * number)]
        )
        for case, call in (
            ("new", lambda fresh=fresh: validation.load(next(fresh))),
            ("again", lambda doc=doc: validation.load(doc)),
        ):
            times = timeit.repeat(call, repeat=args.repeat, number=number)
            per_call = statistics.median(times) / number * 1e6
            print(f"{steps:4d} nodes, {case:5s}: {per_call:9.1f} µs per load()")


if __name__ == "__main__":
    main()
