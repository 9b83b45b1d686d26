"""Asking compliance from outside the daily cycle: one proposal (live) or a batch, each decision audited.

`duecourse compliance check` and the live API use this service. Input validation is errors-as-data:
every invalid proposal is reported with the field at fault and the others are still decided. Each
decision is written to the audit chain in the same transaction as nothing else — a decision changes no
state, but who asked what and what the engine answered is evidence.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Engine

from duecourse.audit import log as audit_log
from duecourse.audit.chain import AuditRecord
from duecourse.compliance.checks.base import CheckContext
from duecourse.compliance.engine import CONFLICT, NO_PACK, NO_RULE, decide_batch
from duecourse.compliance.facts import Proposal, to_frames
from duecourse.compliance.rulebook import Rulebook

ENGINE_RULES = {
    NO_PACK: "no rule pack for the jurisdiction",
    NO_RULE: "no applicable rule of law",
    CONFLICT: "rules in conflict",
}


@dataclass(frozen=True)
class InvalidInput:
    line: int  # 1-based line (JSON Lines) or 1 for a single document
    field: str  # dotted path of the field at fault, "(document)" when not JSON at all
    reason: str

    def to_json(self) -> dict[str, object]:
        return {"line": self.line, "error": {"field": self.field, "reason": self.reason}}


def parse_proposal(data: Any, line: int = 1) -> Proposal | InvalidInput:
    try:
        return Proposal.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(document)"
        return InvalidInput(line, where, first["msg"])


def parse_json(text: str, line: int = 1) -> Proposal | InvalidInput:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        return InvalidInput(line, "(document)", f"not JSON: {exc.msg} at column {exc.colno}")
    return parse_proposal(data, line)


def parse_json_lines(lines: Iterable[str]) -> list[Proposal | InvalidInput]:
    return [parse_json(text, n) for n, text in enumerate(lines, start=1) if text.strip()]


def violation_json(book: Rulebook, rule_id: str, verdict: str, facts: str, day: date) -> dict[str, object]:
    """A blocking finding with the rule's titles and the citations of the version in force on `day`."""
    out: dict[str, object] = {"rule": rule_id, "verdict": verdict, "facts": facts}
    if rule_id in ENGINE_RULES:
        out["title"] = {"en": ENGINE_RULES[rule_id]}
        return out
    rule = book.get(rule_id)
    version = rule.version_on(day)
    out["title"] = rule.title.model_dump(exclude_none=True)
    out["kind"] = rule.kind
    out["pack"] = rule.pack
    if version is not None:
        out["effective_from"] = version.effective_from.isoformat()
        out["citations"] = [c.model_dump(exclude_none=True) for c in version.citations]
    return out


def decide_many(book: Rulebook, proposals: Sequence[Proposal], ctx: CheckContext) -> list[dict[str, object]]:
    """Decisions for many proposals through the vectorised path, rendered as JSON objects in input order."""
    frame, history = to_frames(proposals)
    decided = decide_batch(book, frame, history, ctx)
    out = []
    for p, row in zip(proposals, decided.iter_rows(named=True), strict=True):
        day = p.moment.date()
        out.append(
            {
                "proposal_id": row["proposal_id"],
                "decision": row["decision"],
                "rulebook_version": book.version,
                "next_allowed_at": None if row["next_allowed_at"] is None else row["next_allowed_at"].isoformat(),
                "violations": [
                    violation_json(book, v["rule"], v["verdict"], v["facts"], day) for v in row["violations"]
                ],
            }
        )
    return out


def audit_decisions(
    engine: Engine, decisions: Sequence[dict[str, Any]], actor: str, origin: str, now: datetime
) -> None:
    records = [
        AuditRecord(
            actor=actor,
            origin=origin,
            action=f"compliance.{d['decision']}",
            entity="proposal",
            entity_id=str(d["proposal_id"]),
            reason="; ".join(str(v["rule"]) for v in d["violations"]) or "every applicable rule allows",
            payload={
                "rulebook_version": d["rulebook_version"],
                "violations": [
                    {"rule": v["rule"], "verdict": v["verdict"], "facts": v["facts"]} for v in d["violations"]
                ],
            },
        )
        for d in decisions
    ]
    with engine.begin() as conn:
        audit_log.append(conn, records, now)
