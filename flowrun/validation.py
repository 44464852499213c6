"""Flow validation: JSON Schema structure, then value checks. (Stub: being built.)"""

from __future__ import annotations

from .errors import FlowInvalid
from .flow import normalize


def check(doc, max_steps: int = 1000) -> tuple[list[dict], list[dict]]:
    """Return ``(errors, warnings)``, each ``{"path", "nodeId", "message", "hint"}``."""
    errors: list[dict] = []
    if not isinstance(doc, dict):
        return [
            {
                "path": "",
                "nodeId": None,
                "message": "flow must be an object",
                "hint": "",
            }
        ], []
    flow = normalize(doc)
    nodes = flow.get("nodes")
    if not isinstance(nodes, list) or not nodes:
        errors.append(
            {
                "path": "nodes",
                "nodeId": None,
                "message": "nodes must be a non-empty array",
                "hint": "",
            }
        )
    return errors, []


def load(doc, max_steps: int = 1000) -> dict:
    """Return the normalised flow, or raise FlowInvalid with every error found."""
    errors, _ = check(doc, max_steps)
    if errors:
        raise FlowInvalid(errors)
    return normalize(doc)
