"""What a fresh interpreter has imported: for tests that keep heavy modules out of
processes that do not need them."""

from __future__ import annotations

import json
import subprocess
import sys


def loaded_after(code: str, *names: str, cwd=None) -> list[str]:
    """Which of ``names`` (a module, or a package and everything under it) a fresh
    interpreter has imported once it has run ``code``."""
    probe = (
        f"{code}\n"
        "import sys as _sys, json as _json\n"
        f"_names = {names!r}\n"
        "print(_json.dumps(sorted(m for m in _sys.modules if any("
        "m == n or m.startswith(n + '.') for n in _names))))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])
