"""What a written notice announces is the ladder's own next serious step for the loan, never a guess."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest

from duecourse.adapters.channels.letters import Debt
from duecourse.services.letters import coming_measure
from duecourse.strategy import load_strategy

STRATEGY = load_strategy(Path(__file__).resolve().parents[3] / "strategies" / "default.yaml")
DAY = date(2026, 3, 31)


def _debt(days_past_due: int, yuan: int) -> Debt:
    return Debt("L-1", "CNY", yuan * 100, 0, 0, 0, DAY - timedelta(days=days_past_due), days_past_due)


@pytest.mark.parametrize(
    ("ladder", "dpd", "yuan", "kind", "in_days"),
    [
        # standard: a door visit from day 68 needs 5,000 overdue; the court pack from day 121 needs 3,000;
        # the agency from day 151 needs nothing.
        ("standard", 46, 6_000, "door_visit", 22),
        ("standard", 46, 5_000, "door_visit", 22),  # the floor is inclusive
        ("standard", 46, 4_999, "legal_referral", 75),
        ("standard", 46, 1_000, "outsourcing", 105),
        ("standard", 62, 6_000, "door_visit", 6),  # after the pre-visit notice, before the visit window
        ("standard", 100, 6_000, "door_visit", 1),  # inside the visit window (to day 120): from tomorrow
        ("standard", 130, 6_000, "outsourcing", 21),  # the visit and court windows have passed
        # gentle: no visit; court from day 151 only above 10,000; calls every week until day 180.
        ("gentle", 31, 20_000, "legal_referral", 120),
        ("gentle", 31, 2_000, "calls", None),
    ],
)
def test_the_measure_is_the_next_serious_step_the_loan_can_reach(ladder, dpd, yuan, kind, in_days):
    measure = coming_measure(STRATEGY.ladders[ladder], _debt(dpd, yuan), DAY)
    assert measure.kind == kind
    assert measure.not_before == (None if in_days is None else DAY + timedelta(days=in_days))


def test_after_every_step_the_letter_offers_a_plan():
    measure = coming_measure(STRATEGY.ladders["gentle"], _debt(200, 2_000), DAY)
    assert (measure.kind, measure.not_before) == ("repayment_plan", None)
