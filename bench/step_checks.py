"""CPU per call of an ordinary step's validations, budget included.

Three validations (status, ``.id`` equals, ``Content-Type`` contains) on a small
body through ``checks.validate_response``, with a fresh step budget each call, as
the engine does per step. Prints the least of ``--repeat`` timings of
``--number`` calls, in µs of this process's CPU (``time.process_time``, steadier
than the wall clock on a shared machine).

    .venv/bin/python bench/step_checks.py
"""

from __future__ import annotations

import argparse
import time
import timeit

from flowrun.engine.budget import Budget
from flowrun.engine.checks import validate_response
from flowrun.engine.placeholders import Context

VALIDATIONS = [
    {"httpStatusCode": 200},
    {"jsonpath": ".id", "equals": 7},
    {"header": "Content-Type", "contains": "application/json"},
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=25)
    parser.add_argument("--number", type=int, default=5000)
    args = parser.parse_args()
    ctx = Context(vars={}, inputs={})
    headers = {"content-type": "application/json"}

    def step() -> None:
        ctx.budget = Budget()
        validate_response(
            VALIDATIONS,
            status=200,
            headers=headers,
            body={"id": 7, "name": "x"},
            duration_ms=1.0,
            ctx=ctx,
        )

    times = timeit.repeat(
        step, number=args.number, repeat=args.repeat, timer=time.process_time
    )
    print(f"3 validations + budget: {min(times) / args.number * 1e6:.2f} µs CPU")


if __name__ == "__main__":
    main()
