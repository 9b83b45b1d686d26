"""Repayment schedules, checked by hand (the arithmetic is in each docstring), and invariants every schedule keeps."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from duecourse.domain.conventions import DayCount, ProductConventions
from duecourse.domain.money import RoundingMode
from duecourse.ledger.schedule import METHODS, add_months, days_30_360, equal_payment, generate_schedule

PER_PERIOD = ProductConventions(day_count=DayCount.PER_PERIOD)


def amounts(
    principal: int, rate: str, term: int, start: date, method: str, conv: ProductConventions
) -> list[tuple[int, int]]:
    return [(i.principal, i.interest) for i in generate_schedule(principal, Decimal(rate), term, start, method, conv)]


def test_equal_instalment_12000_at_12_percent_over_12_months() -> None:
    """r = 12 % / 12 = 1 % a month. Payment = 12,000 x 0.01 / (1 - 1.01^-12); 1.01^12 = 1.1268250301, so
    1 - 1/1.1268250301 = 0.1125507747 and the payment is 120 / 0.1125507747 = 1,066.1855 -> 1,066.19.
    Month 1: interest 12,000.00 x 1 % = 120.00, principal 1,066.19 - 120.00 = 946.19, balance 11,053.81.
    Month 2: interest 110.5381 -> 110.54, principal 955.65. The last instalment repays what is left,
    1,055.58, with interest 1 % of it = 10.5558 -> 10.56. Due dates: the 31st, clamped to month end."""
    schedule = generate_schedule(1_200_000, Decimal("0.12"), 12, date(2026, 1, 31), "equal_instalment", PER_PERIOD)
    assert equal_payment(1_200_000, Decimal("0.12"), 12, PER_PERIOD) == 106_619
    assert [(i.principal, i.interest) for i in schedule[:2]] == [(94_619, 12_000), (95_565, 11_054)]
    assert (schedule[-1].principal, schedule[-1].interest) == (105_558, 1_056)
    assert all(i.principal + i.interest == 106_619 for i in schedule[:-1])
    assert sum(i.principal for i in schedule) == 1_200_000
    assert [i.due_date for i in schedule[:4]] == [
        date(2026, 2, 28),
        date(2026, 3, 31),
        date(2026, 4, 30),
        date(2026, 5, 31),
    ]
    assert schedule[-1].due_date == date(2027, 1, 31) and [i.seq for i in schedule] == list(range(1, 13))


def test_equal_principal_and_interest_only() -> None:
    """3,000.00 over 3 months at 1 % a month: principal 1,000.00 each; interest on the balance 3,000 / 2,000 /
    1,000 = 30.00, 20.00, 10.00. Interest-only 10,000.00: 100.00 interest each month, all principal at the end."""
    assert amounts(300_000, "0.12", 3, date(2026, 1, 15), "equal_principal", PER_PERIOD) == [
        (100_000, 3_000),
        (100_000, 2_000),
        (100_000, 1_000),
    ]
    assert amounts(1_000_000, "0.12", 3, date(2026, 1, 15), "interest_only", PER_PERIOD) == [
        (0, 10_000),
        (0, 10_000),
        (1_000_000, 10_000),
    ]


def test_equal_instalment_on_actual_365_uses_the_nominal_rate_for_the_payment() -> None:
    """Payment from r = 10 % / 12: 1,000 x r / (1 - (1 + r)^-3) = 338.8985 -> 338.90. Interest by actual days:
    15 Jan -> 15 Feb is 31 days: 1,000.00 x 0.10 x 31 / 365 = 8.4932 -> 8.49, principal 330.41, balance 669.59;
    28 days: 669.59 x 0.10 x 28 / 365 = 5.1366 -> 5.14, principal 333.76, balance 335.83;
    31 days: 335.83 x 0.10 x 31 / 365 = 2.8523 -> 2.85, and the last repays the 335.83 left."""
    assert equal_payment(100_000, Decimal("0.10"), 3, ProductConventions()) == 33_890
    assert amounts(100_000, "0.10", 3, date(2026, 1, 15), "equal_instalment", ProductConventions()) == [
        (33_041, 849),
        (33_376, 514),
        (33_583, 285),
    ]


def test_thirty_360_counts_month_ends_as_the_30th() -> None:
    """3,600.00 over 3 months at 12 % from 31 Jan, due 28 Feb, 31 Mar, 30 Apr. 30/360 days: 31 Jan counts as the
    30th, so to 28 Feb is 30 + (28 - 30) = 28 days: 3,600 x 0.12 x 28/360 = 33.60. 28 Feb -> 31 Mar: the start
    is before the 30th, so the 31st stays: 30 + 3 = 33 days on 2,400: 26.40. 31 Mar -> 30 Apr: 30 days on
    1,200: 12.00."""
    assert days_30_360(date(2026, 1, 31), date(2026, 2, 28)) == 28
    assert days_30_360(date(2026, 2, 28), date(2026, 3, 31)) == 33
    assert days_30_360(date(2026, 3, 31), date(2026, 4, 30)) == 30
    assert days_30_360(date(2026, 3, 30), date(2026, 5, 31)) == 60
    conv = ProductConventions(day_count=DayCount.THIRTY_360)
    assert amounts(360_000, "0.12", 3, date(2026, 1, 31), "equal_principal", conv) == [
        (120_000, 3_360),
        (120_000, 2_640),
        (120_000, 1_200),
    ]


def test_due_dates_count_from_the_start_day_not_from_the_previous_due_date() -> None:
    """31 Jan 2028 + 1 month = 29 Feb (a leap year), + 2 months = 31 Mar (not 29 Mar), + 3 = 30 Apr."""
    dues = [
        i.due_date
        for i in generate_schedule(360_000, Decimal("0.12"), 3, date(2028, 1, 31), "equal_principal", PER_PERIOD)
    ]
    assert dues == [date(2028, 2, 29), date(2028, 3, 31), date(2028, 4, 30)]
    assert add_months(date(2026, 11, 30), 3) == date(2027, 2, 28)
    assert add_months(date(2026, 1, 15), 12) == date(2027, 1, 15)


@pytest.mark.parametrize(
    ("mode", "interest"),
    [(RoundingMode.HALF_UP, 37), (RoundingMode.HALF_EVEN, 36), (RoundingMode.DOWN, 36), (RoundingMode.UP, 37)],
)
def test_an_exact_half_rounds_by_the_products_mode(mode: RoundingMode, interest: int) -> None:
    """24.00 at 18.25 % / 12 = 24 x 0.1825 / 12 = 4.38 / 12 = 0.365 exactly: 36.5 fen. Half up and up give 37,
    half even and down 36. (0.1825 / 12 is not a finite decimal: computed in Decimal it is 0.0152083..3 and
    the product 36.4999.., which would wrongly round down; the schedule keeps the fraction exact.)"""
    conv = ProductConventions(day_count=DayCount.PER_PERIOD, rounding_mode=mode)
    assert amounts(2_400, "0.1825", 1, date(2026, 1, 1), "interest_only", conv) == [(2_400, interest)]


def test_rounding_to_whole_yuan() -> None:
    """With a rounding unit of 100 fen the payment 1,066.1855 becomes 1,066.00 and interest is whole yuan:
    month 1 interest 120.00, principal 946.00; month 2 interest 110.54 -> 111.00, principal 955.00.
    Principal still sums to exactly 12,000.00: the last instalment takes the remainder."""
    conv = ProductConventions(day_count=DayCount.PER_PERIOD, rounding_unit=100)
    schedule = amounts(1_200_000, "0.12", 12, date(2026, 1, 31), "equal_instalment", conv)
    assert schedule[:2] == [(94_600, 12_000), (95_500, 11_100)]
    assert sum(p for p, _ in schedule) == 1_200_000 and all(i % 100 == 0 for _, i in schedule)


def test_a_zero_rate_annuity_splits_principal_evenly() -> None:
    """1,000.00 over 3 at 0 %: payment 1,000 / 3 = 333.33; the last takes the remaining 333.34."""
    assert amounts(100_000, "0", 3, date(2026, 1, 15), "equal_instalment", PER_PERIOD) == [
        (33_333, 0),
        (33_333, 0),
        (33_334, 0),
    ]


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="repayment method"):
        generate_schedule(100_000, Decimal("0.1"), 3, date(2026, 1, 1), "balloon", PER_PERIOD)
    with pytest.raises(ValueError, match="positive"):
        generate_schedule(0, Decimal("0.1"), 3, date(2026, 1, 1), "equal_principal", PER_PERIOD)
    with pytest.raises(ValueError, match="negative"):
        generate_schedule(100_000, Decimal("-0.1"), 3, date(2026, 1, 1), "equal_principal", PER_PERIOD)


CONVENTIONS = st.builds(
    ProductConventions,
    rounding_mode=st.sampled_from(list(RoundingMode)),
    rounding_unit=st.sampled_from([1, 10, 100]),
    day_count=st.sampled_from(list(DayCount)),
)


@given(
    principal=st.integers(100, 10**10),
    rate=st.decimals(min_value=0, max_value=Decimal("0.36"), places=4),
    term=st.integers(1, 60),
    start=st.dates(date(2020, 1, 1), date(2030, 12, 31)),
    method=st.sampled_from(METHODS),
    conv=CONVENTIONS,
)
def test_every_schedule_repays_the_principal_exactly(
    principal: int, rate: Decimal, term: int, start: date, method: str, conv: ProductConventions
) -> None:
    schedule = generate_schedule(principal, rate, term, start, method, conv)
    assert len(schedule) == term and sum(i.principal for i in schedule) == principal
    assert all(i.principal >= 0 and i.interest >= 0 and i.fee == 0 for i in schedule)
    assert all(a.due_date < b.due_date for a, b in pairwise(schedule))
    assert schedule[0].due_date - start <= timedelta(days=31)
    if method == "interest_only":
        assert all(i.principal == 0 for i in schedule[:-1])
    if method == "equal_instalment" and conv.day_count is DayCount.PER_PERIOD:
        payment = equal_payment(principal, rate, term, conv)
        balance = principal
        for i in schedule[:-1]:  # the constant payment, unless interest exceeds it or the balance runs out first
            assert i.principal == min(balance, max(payment - i.interest, 0))
            balance -= i.principal
