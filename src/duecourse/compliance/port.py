"""The port through which the daily cycle (and later the dispatcher) asks compliance about proposals.

Until the rule engine exists (issue 3), the only implementation is `NoComplianceEngine`, which
marks every proposal `pending`: nothing is allowed without a real check (compliance blocks by default).
"""

from __future__ import annotations

from datetime import date
from typing import Final, Protocol

import polars as pl

STATUSES: Final = ("pending", "allowed", "blocked")


class CompliancePort(Protocol):
    def review(self, proposals: pl.DataFrame, as_of: date) -> pl.DataFrame:
        """Return `proposals` with `compliance_status` (one of STATUSES) and `compliance_reason` added."""
        ...


class NoComplianceEngine:
    """No rulebook is configured: every proposal stays pending and may not be sent."""

    REASON: Final = "no compliance engine configured: not allowed until checked against a rulebook"

    def review(self, proposals: pl.DataFrame, as_of: date) -> pl.DataFrame:
        return proposals.with_columns(compliance_status=pl.lit("pending"), compliance_reason=pl.lit(self.REASON))
