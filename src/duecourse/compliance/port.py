"""The port through which the daily cycle (and later the dispatcher) asks compliance about proposals.

The rulebook-backed implementation is `services.compliance_gate.RulebookGate`. `NoComplianceEngine`
is the cycle without a rulebook: it marks every proposal `pending`, because nothing may be allowed
without a real check (compliance blocks by default).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Final, Protocol

import polars as pl

STATUSES: Final = ("pending", "allowed", "rescheduled", "blocked")
# The columns `review` adds to the proposals it is given.
DECISION_COLUMNS: Final = pl.Schema(
    {
        "compliance_status": pl.String(),  # one of STATUSES
        "compliance_reason": pl.String(),  # every blocking rule with the facts that triggered it
        "compliance_rules": pl.String(),  # comma-separated ids of the blocking rules
        "rulebook_version": pl.String(),
        "scheduled_at": pl.Datetime("us", "UTC"),  # allowed: the planned moment; rescheduled: the next allowed one
    }
)


class CompliancePort(Protocol):
    def review(self, proposals: pl.DataFrame, as_of: date, at: datetime | None = None) -> pl.DataFrame:
        """`proposals` (the ladder's, joined with the cycle's facts) with the `DECISION_COLUMNS` added: planned
        for `as_of`, or decided at the instant `at` (a send-time or before-dial check)."""
        ...


class NoComplianceEngine:
    """No rulebook is configured: every proposal stays pending and may not be sent."""

    REASON: Final = "no compliance engine configured: not allowed until checked against a rulebook"

    def review(self, proposals: pl.DataFrame, as_of: date, at: datetime | None = None) -> pl.DataFrame:
        return proposals.with_columns(
            compliance_status=pl.lit("pending"),
            compliance_reason=pl.lit(self.REASON),
            compliance_rules=pl.lit(None, pl.String),
            rulebook_version=pl.lit(None, pl.String),
            scheduled_at=pl.lit(None, pl.Datetime("us", "UTC")),
        )
