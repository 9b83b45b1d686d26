"""What every obligation check is: one question asked two ways (one proposal, or a frame of them).

A check is code for one *kind* of obligation (contact window, frequency cap, ...). The packs under
`rules/` say which checks apply where and with which parameters; a check never hard-codes a figure
from a law. Each check answers for one `Proposal` (`one`, the readable reference used by the live
path and by `explain`) and for a frame of proposals (`batch`, the vectorised path of the daily cycle);
tests prove both give the same verdicts.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Final, Literal

import polars as pl
from pydantic import BaseModel, ConfigDict

from duecourse.compliance.calendar import HolidayCalendar
from duecourse.compliance.facts import PROPOSALS, Proposal

Verdict = Literal["pass", "not_applicable", "violation", "missing_facts"]
BLOCKING: Final = ("violation", "missing_facts")

# The frame `batch` returns: one row per proposal the check blocks; proposals absent from it pass.
FINDINGS = pl.Schema({"proposal_id": pl.String, "verdict": pl.String, "facts": pl.String})


class Params(BaseModel):
    """Base of every check's parameters: parsed strictly from a rule version's `values`."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class Finding:
    verdict: Verdict
    facts: str  # one sentence on the facts that decided it, e.g. "21:30 Asia/Shanghai is inside 22:00–08:00"

    @property
    def blocks(self) -> bool:
        return self.verdict in BLOCKING


@dataclass(frozen=True)
class CheckContext:
    """What a check may consult besides the proposal: the project-owned holiday calendars."""

    calendar: HolidayCalendar


class Check(ABC):
    """One obligation kind. Subclasses set `kind`, `params` and `time_only`, and implement both paths."""

    kind: ClassVar[str]  # the name rules use in `check:`
    params: ClassVar[type[Params]]
    # True when only the moment decides (hours, holidays): a proposal blocked only by such checks is
    # rescheduled to the next allowed moment instead of dropped.
    time_only: ClassVar[bool] = False
    # The proposal columns `batch` reads (besides proposal_id, and with what `precompute` adds): the engine
    # hands each rule only these, so a rule's subset copies a handful of the frame's sixty columns.
    reads: ClassVar[tuple[str, ...]] = tuple(PROPOSALS.names())

    def precompute(self, proposals: pl.DataFrame) -> pl.DataFrame:
        """Columns derived once per batch for every rule of this check (e.g. normalised message text).

        The engine calls it once before the rules run; `batch` must also work on an unprepared frame."""
        return proposals

    @abstractmethod
    def one(self, proposal: Proposal, params: Any, ctx: CheckContext) -> Finding:
        """The verdict for one proposal, with a sentence on the facts (also for pass / not applicable)."""

    @abstractmethod
    def batch(self, proposals: pl.DataFrame, history: pl.DataFrame, params: Any, ctx: CheckContext) -> pl.DataFrame:
        """The blocking findings (schema `FINDINGS`) for a frame of proposals and their history.

        `proposals` has the `facts.PROPOSALS` schema, `history` the `facts.HISTORY` schema (rows keyed by
        `proposal_id`). Set-based: no Python loop over rows.
        """


STAMP: Final = "%Y-%m-%d %H:%M"  # UTC instants in findings, the same on both paths


def among(column: str, values: Sequence[str]) -> pl.Expr:
    """`column` is one of `values` (False for null), typed so that an empty list works."""
    return pl.col(column).is_in(pl.Series(list(values), dtype=pl.String).implode()).fill_null(False)


def blocking(frame: pl.LazyFrame) -> pl.DataFrame:
    """A check's lazy findings collected as `FINDINGS`: the optimiser reads only the columns the check uses."""
    return findings(frame.collect())


def findings(frame: pl.DataFrame) -> pl.DataFrame:
    """Select and type a check's output as `FINDINGS`, keeping only blocking rows."""
    return frame.select(
        pl.col("proposal_id").cast(pl.String),
        pl.col("verdict").cast(pl.String),
        pl.col("facts").cast(pl.String),
    ).filter(pl.col("verdict").is_in(BLOCKING))
