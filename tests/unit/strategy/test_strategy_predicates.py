"""Each predicate on both sides of its threshold, with missing facts, and the per-row text it gives to reasons."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import polars as pl
import pytest
from strategy_helpers import facts

from duecourse.domain.money import format_money
from duecourse.strategy import predicates as p

# (predicate, fact overrides, expected match)
CASES: list[tuple[p.Predicate, dict[str, Any], bool]] = [
    (p.DaysPastDueAtLeast(8), {"days_past_due": 7}, False),
    (p.DaysPastDueAtLeast(8), {"days_past_due": 8}, True),
    (p.DaysPastDueAtMost(30), {"days_past_due": 30}, True),
    (p.DaysPastDueAtMost(30), {"days_past_due": 31}, False),
    (p.DaysToNextDueAtMost(3), {"days_to_next_due": 3}, True),
    (p.DaysToNextDueAtMost(3), {"days_to_next_due": 4}, False),
    (p.DaysToNextDueAtMost(3), {"days_to_next_due": None}, False),  # no future instalment
    (p.DaysToNextDueAtLeast(1), {"days_to_next_due": 0}, False),
    (p.DaysToNextDueAtLeast(1), {"days_to_next_due": 1}, True),
    (p.DaysToNextDueAtLeast(1), {"days_to_next_due": None}, False),
    # 100.00 CNY = 10,000 fen
    (p.OverdueAmountAtLeast(Decimal("100.00")), {"overdue_total": 9_999}, False),
    (p.OverdueAmountAtLeast(Decimal("100.00")), {"overdue_total": 10_000}, True),
    (p.OverdueAmountBelow(Decimal("100.00")), {"overdue_total": 9_999}, True),
    (p.OverdueAmountBelow(Decimal("100.00")), {"overdue_total": 10_000}, False),
    # the same threshold in yen (no minor unit): 100 yen
    (p.OverdueAmountAtLeast(Decimal("100.00")), {"overdue_total": 99, "currency": "JPY"}, False),
    (p.OverdueAmountAtLeast(Decimal("100.00")), {"overdue_total": 100, "currency": "JPY"}, True),
    # a threshold finer than the currency's unit is still compared exactly: 100.5 yen
    (p.OverdueAmountAtLeast(Decimal("100.5")), {"overdue_total": 100, "currency": "JPY"}, False),
    (p.OverdueAmountAtLeast(Decimal("100.5")), {"overdue_total": 101, "currency": "JPY"}, True),
    (p.OverdueAmountBelow(Decimal("100.5")), {"overdue_total": 100, "currency": "JPY"}, True),
    (p.OverdueAmountBelow(Decimal("100.5")), {"overdue_total": 101, "currency": "JPY"}, False),
    (p.OutstandingBalanceAtLeast(Decimal(2000)), {"outstanding_total": 199_999}, False),
    (p.OutstandingBalanceAtLeast(Decimal(2000)), {"outstanding_total": 200_000}, True),
    (p.OutstandingBalanceBelow(Decimal(2000)), {"outstanding_total": 199_999}, True),
    (p.OutstandingBalanceBelow(Decimal(2000)), {"outstanding_total": 200_000}, False),
    (p.BucketIn(("M2", "M3")), {"bucket": "M1"}, False),
    (p.BucketIn(("M2", "M3")), {"bucket": "M3"}, True),
    (p.ProductIn(("cash_loan",)), {"product": "card"}, False),
    (p.ProductIn(("cash_loan",)), {"product": "cash_loan"}, True),
    (p.LanguageIn(("en",)), {"language": "zh"}, False),
    (p.LanguageIn(("en",)), {"language": "en"}, True),
    (p.LanguageIn(("en",)), {"language": None}, False),
    (p.FlagPresent("elderly"), {"flags": ["disabled"]}, False),
    (p.FlagPresent("elderly"), {"flags": ["disabled", "elderly"]}, True),
    (p.FlagPresent("elderly"), {"flags": None}, False),
    (p.FlagAbsent("elderly"), {"flags": ["elderly"]}, False),
    (p.FlagAbsent("elderly"), {"flags": ["disabled"]}, True),
    (p.FlagAbsent("elderly"), {"flags": None}, True),  # no flags at all: the flag is absent
    (p.AgeAtLeast(70), {"age": 69}, False),
    (p.AgeAtLeast(70), {"age": 70}, True),
    (p.AgeAtLeast(70), {"age": None}, False),  # unknown age never matches
    (p.AgeBelow(70), {"age": 69}, True),
    (p.AgeBelow(70), {"age": 70}, False),
    (p.AgeBelow(70), {"age": None}, False),
]


@pytest.mark.parametrize(("predicate", "row", "expected"), CASES, ids=[f"{c[0]}|{c[1]}" for c in CASES])
def test_predicate_on_each_side_of_its_threshold(predicate: p.Predicate, row: dict[str, Any], expected: bool) -> None:
    result = facts(row).select(predicate.expr()).to_series()
    assert result.to_list() == [expected]


def test_every_predicate_in_the_vocabulary_is_covered_above() -> None:
    assert {type(c[0]).name for c in CASES} == set(p.VOCABULARY)


@pytest.mark.parametrize(
    ("predicate", "row", "text"),
    [
        (p.DaysPastDueAtLeast(8), {"days_past_due": 12}, "days past due 12 >= 8"),
        (p.DaysToNextDueAtMost(3), {"days_to_next_due": 2}, "days to next due 2 <= 3"),
        (p.OverdueAmountAtLeast(Decimal(100)), {"overdue_total": 123_456}, "overdue 1,234.56 CNY >= 100.00"),
        (p.OutstandingBalanceBelow(Decimal(2000)), {"outstanding_total": 80_000}, "outstanding 800.00 CNY < 2,000.00"),
        (
            p.OverdueAmountAtLeast(Decimal("100.5")),
            {"overdue_total": 1_234, "currency": "JPY"},
            "overdue 1,234 JPY >= 100.5",
        ),
        (p.BucketIn(("M2", "M3")), {"bucket": "M2"}, "bucket M2 in [M2, M3]"),
        (p.FlagAbsent("visit_refused"), {}, "flag visit_refused absent"),
        (p.AgeAtLeast(70), {"age": 74}, "age 74 >= 70"),
    ],
)
def test_describe_states_the_fact_and_the_threshold(predicate: p.Predicate, row: dict[str, Any], text: str) -> None:
    assert facts(row).select(predicate.describe()).item() == text


@pytest.mark.parametrize(
    "minor", [0, 5, 99, 100, 999_99, 1_000_00, 123_456, 12_345_678_901, -100_000_099, 9_223_372_036_854_775_807]
)
@pytest.mark.parametrize("currency", ["CNY", "JPY"])
def test_money_text_agrees_with_the_scalar_formatter(minor: int, currency: str) -> None:
    frame = pl.DataFrame({"amount": [minor], "currency": [currency]})
    assert frame.select(p.money_text("amount")).item() == format_money(minor, currency)


def test_amount_thresholds_convert_per_currency_exactly() -> None:
    thresholds = p.OverdueAmountAtLeast(Decimal("1234.56")).minor_thresholds()
    assert thresholds["CNY"] == 123_456 and thresholds["USD"] == 123_456
    assert thresholds["JPY"] == 1_235  # 1234.56 yen: the first whole yen amount that is >= it


@pytest.mark.parametrize(
    ("cls", "raw"),
    [
        (p.DaysPastDueAtLeast, True),
        (p.DaysPastDueAtLeast, "8"),
        (p.DaysPastDueAtLeast, -1),
        (p.OverdueAmountAtLeast, "lots"),
        (p.OverdueAmountAtLeast, -1),
        (p.OverdueAmountAtLeast, Decimal("Infinity")),
        (p.BucketIn, []),
        (p.BucketIn, "M1"),
        (p.BucketIn, ["M1", "M1"]),
        (p.FlagPresent, ""),
        (p.FlagPresent, 3),
    ],
)
def test_bad_values_are_refused_when_parsed(cls: type[p.Predicate], raw: object) -> None:
    with pytest.raises((TypeError, ValueError)):
        cls.parse(raw)
