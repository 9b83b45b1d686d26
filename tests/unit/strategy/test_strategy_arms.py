"""Champion/challenger assignment: a pure function of salt and borrower id, with the configured shares."""

from __future__ import annotations

from decimal import Decimal

import polars as pl
import pytest
from strategy_helpers import independent_bucket

from duecourse.strategy.arms import arm_of, assign_arms, hash_buckets
from duecourse.strategy.model import Arm, Split

SPLIT = Split("default-cn-2026a", (Arm("champion", Decimal(80)), Arm("challenger", Decimal(20))))


def expected_arm(split: Split, borrower_id: str) -> str:
    bucket = independent_bucket(split.salt, borrower_id)
    for name, upper in split.upper_bounds():
        if bucket < upper:
            return name
    raise AssertionError("bounds end at 10,000")


def test_a_fixed_borrower_always_gets_the_arm_hashlib_gives() -> None:
    ids = ["B000123", "借款人-42", "0", "a" * 200]
    assigned = assign_arms(pl.Series(ids), SPLIT).to_list()
    assert assigned == [expected_arm(SPLIT, b) for b in ids]
    assert [arm_of(b, SPLIT) for b in ids] == assigned
    # Pinned once from SHA-256("cc2026:B000000000"): an existing borrower's bucket must never move between releases.
    assert hash_buckets(pl.Series(["B000000000"]), "cc2026").to_list() == [9042]
    assert independent_bucket("cc2026", "B000000000") == 9042


def test_the_assignment_keeps_input_order_and_repeats_for_repeated_ids() -> None:
    ids = [f"B{n}" for n in range(500)]
    forward = assign_arms(pl.Series(ids), SPLIT).to_list()
    backward = assign_arms(pl.Series(ids[::-1]), SPLIT).to_list()
    assert backward == forward[::-1]
    doubled = assign_arms(pl.Series(ids + ids), SPLIT).to_list()
    assert doubled == forward + forward


def test_shares_hold_within_tolerance_on_100k_borrowers() -> None:
    ids = pl.Series([f"B{n:08d}" for n in range(100_000)])
    counts = assign_arms(ids, SPLIT).value_counts().sort("arm")
    share = dict(zip(counts["arm"].to_list(), (c / 100_000 for c in counts["count"].to_list()), strict=True))
    # binomial sd at p=0.2, n=100k is 0.13 %: 0.6 % is more than four sd
    assert share["champion"] == pytest.approx(0.80, abs=0.006)
    assert share["challenger"] == pytest.approx(0.20, abs=0.006)


def test_three_arms_with_fractional_shares() -> None:
    split = Split("s", (Arm("a", Decimal("87.5")), Arm("b", Decimal(10)), Arm("c", Decimal("2.5"))))
    ids = pl.Series([f"B{n}" for n in range(100_000)])
    arms = assign_arms(ids, split)
    assert arms.to_list()[:200] == [expected_arm(split, f"B{n}") for n in range(200)]
    share = arms.value_counts().to_dict(as_series=False)
    got = dict(zip(share["arm"], share["count"], strict=True))
    assert got["c"] / 100_000 == pytest.approx(0.025, abs=0.003)
    assert got["a"] / 100_000 == pytest.approx(0.875, abs=0.006)


def test_another_salt_reshuffles_borrowers() -> None:
    ids = pl.Series([f"B{n}" for n in range(2_000)])
    other = Split("another-salt", SPLIT.arms)
    moved = (assign_arms(ids, SPLIT) != assign_arms(ids, other)).sum()
    # with independent 80/20 draws about 32 % differ
    assert 0.25 < moved / 2_000 < 0.40


def test_a_single_arm_takes_everyone_and_nulls_are_refused() -> None:
    only = Split("s", (Arm("champion", Decimal(100)),))
    assert assign_arms(pl.Series(["x", "y"]), only).to_list() == ["champion", "champion"]
    with pytest.raises(ValueError, match="borrower_id"):
        assign_arms(pl.Series(["x", None]), SPLIT)
    assert assign_arms(pl.Series([], dtype=pl.String), SPLIT).to_list() == []
