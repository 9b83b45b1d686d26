"""Helpers for the hold, opt-out and debt-term tests: patched base proposals and the one-vs-batch agreement."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from functools import cache
from pathlib import Path
from typing import Any

import hypothesis.strategies as st
import yaml

from duecourse.compliance.calendar import HolidayCalendar
from duecourse.compliance.checks.base import Check, CheckContext, Params
from duecourse.compliance.facts import Proposal, to_frames

ROOT = Path(__file__).resolve().parents[3]
CTX = CheckContext(calendar=HolidayCalendar.load(ROOT / "rules" / "calendars"))
PURPOSES = ("collect", "locate", "notify", "confirm_opt_out", "reply_to_debtor")
CHANNELS = ("call", "sms", "email", "letter", "app_push", "visit", "social_media")
COUNTERPARTS = ("debtor", "spouse", "family", "emergency_contact", "employer", "guarantor", "attorney", "other")
# Offsets on both sides of UTC, so that local dates and UTC dates differ around midnight.
OFFSETS = tuple(timezone(timedelta(hours=h)) for h in (-8, -5, -1, 0, 1, 8, 13))


@cache
def _base(country: str) -> dict[str, Any]:
    with (ROOT / "tests" / "rules" / "base" / f"{country}.yaml").open(encoding="utf-8") as f:
        data: dict[str, Any] = yaml.safe_load(f)
    return data


def proposal(country: str, pid: str, changes: dict[str, Any]) -> Proposal:
    """The country's base proposal with dotted-path `changes` applied (None deletes the key: unknown)."""
    doc = copy.deepcopy(_base(country))
    doc["id"] = pid
    for path, value in changes.items():
        *parents, leaf = path.split(".")
        node = doc
        for part in parents:
            node = node.setdefault(part, {})
        if value is None:
            node.pop(leaf, None)
        else:
            node[leaf] = value
    return Proposal.model_validate(doc)


def moments(start: datetime = datetime(2025, 12, 1), end: datetime = datetime(2026, 6, 1)) -> Any:
    """Aware moments at assorted UTC offsets, to the second (findings print minutes)."""
    return st.builds(
        lambda naive, tz: naive.replace(microsecond=0, tzinfo=tz),
        st.datetimes(min_value=start, max_value=end),
        st.sampled_from(OFFSETS),
    )


def iso(moment: datetime) -> str:
    return moment.isoformat()


def subsets(values: Sequence[str], *, min_size: int = 0) -> Any:
    return st.lists(st.sampled_from(values), min_size=min_size, max_size=len(values), unique=True).map(tuple)


def assert_paths_agree(check: Check, params: Params, proposals: Sequence[Proposal]) -> int:
    """`one` and `batch` block the same proposals with the same verdict and sentence; returns how many blocked."""
    frame, history = to_frames(proposals)
    found = check.batch(frame, history, params, CTX)
    rows = {r["proposal_id"]: (r["verdict"], r["facts"]) for r in found.iter_rows(named=True)}
    assert len(rows) == found.height, "one finding per proposal"
    for p in proposals:
        single = check.one(p, params, CTX)
        if single.blocks:
            assert rows.get(p.id) == (single.verdict, single.facts), (p.model_dump(mode="json"), single)
        else:
            assert p.id not in rows, (p.model_dump(mode="json"), single, rows.get(p.id))
    return len(rows)
