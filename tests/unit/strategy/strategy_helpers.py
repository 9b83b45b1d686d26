"""Builders shared by the strategy tests: FACTS rows with sensible defaults, small strategies as YAML text."""

from __future__ import annotations

import hashlib
import textwrap
from datetime import date
from typing import Any

import polars as pl

from duecourse.strategy.ladder import FACTS, STEP_HISTORY
from duecourse.strategy.loader import parse_strategy
from duecourse.strategy.model import Strategy

AS_OF = date(2026, 3, 31)

DEFAULT_ROW: dict[str, Any] = {
    "loan_id": "L1",
    "borrower_key": 1,
    "borrower_id": "B1",
    "product": "cash_loan",
    "currency": "CNY",
    "days_past_due": 0,
    "bucket": "current",
    "overdue_total": 0,
    "outstanding_total": 1_000_000,
    "days_to_next_due": 20,
    "next_due_amount": 100_000,
    "flags": [],
    "age": 35,
    "language": "zh",
    "has_outreach_hold": False,
    "has_active_promise": False,
    "has_active_plan": False,
}


def facts(*rows: dict[str, Any]) -> pl.DataFrame:
    """FACTS rows; each row overrides DEFAULT_ROW; loan_key defaults to the row's position + 1."""
    full = [{**DEFAULT_ROW, "loan_key": i + 1, "loan_id": f"L{i + 1}", **row} for i, row in enumerate(rows)]
    return pl.DataFrame(full, schema=FACTS)


def history(*rows: tuple[int, str, date]) -> pl.DataFrame:
    return pl.DataFrame(list(rows), schema=STEP_HISTORY, orient="row")


def strategy(yaml_text: str) -> Strategy:
    return parse_strategy(textwrap.dedent(yaml_text), "test.yaml")


def independent_bucket(salt: str, borrower_id: str) -> int:
    """The documented arm bucket, computed here with hashlib alone (not with the code under test)."""
    return int.from_bytes(hashlib.sha256(f"{salt}:{borrower_id}".encode()).digest()[:8], "big") % 10_000


def borrower_in(salt: str, lo: int, hi: int, prefix: str = "B") -> str:
    """The first borrower id `prefix<n>` whose bucket falls in [lo, hi)."""
    n = 0
    while not lo <= independent_bucket(salt, f"{prefix}{n}") < hi:
        n += 1
    return f"{prefix}{n}"
