"""What both engines share: the rule's message template, and findings built from it."""

from __future__ import annotations

import re
from typing import Any

from audits.model import Finding
from audits.rulebook import Rule

_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def render_message(template: str, context: dict[str, Any]) -> str:
    """`{name}` → the value; nothing else of str.format (no attribute or index access)."""
    return _PLACEHOLDER.sub(lambda m: _text(context.get(m.group(1), m.group(0))), template)


def _text(value: Any) -> str:
    if isinstance(value, float):
        if value != value:  # NaN
            return "空"
        return str(int(value)) if value == int(value) else f"{value:g}"
    return "空" if value is None else str(value)


def finding(
    rule: Rule,
    doc: dict[str, Any],
    context: dict[str, Any],
    evidence: str,
    *,
    severity: str | None = None,
    cells: tuple[str, ...] = (),
    line: int | None = None,
) -> Finding:
    return Finding(
        source=doc["source"],
        agency=doc.get("agency") or "",
        report_year=doc.get("report_year"),
        rule_id=rule.id,
        category=rule.category,
        severity=severity or rule.severity,
        message=render_message(rule.message, context),
        evidence=evidence,
        cells=cells,
        line=line,
    )


def number(value: Any) -> str:
    return _text(value)
