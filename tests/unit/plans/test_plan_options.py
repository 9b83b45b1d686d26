"""Plan options: hand-checked schedules to the fen, conservation of money on random debts, ranking, authority."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from duecourse.domain.conventions import DayCount, ProductConventions
from duecourse.plans.affordability import Affordability, Finances, Sourced, assess
from duecourse.plans.authority import check_authority
from duecourse.plans.options import Outstanding, PlanOption, plan_options
from duecourse.plans.policy import load_plan_policy

ROOT = Path(__file__).resolve().parents[3]
POLICY = load_plan_policy(ROOT / "policy" / "plans.yaml")
PER_PERIOD = ProductConventions(day_count=DayCount.PER_PERIOD)
START = date(2026, 12, 1)
DEBT = Outstanding(
    loan_id="L-1",
    product="consumer_loan",
    currency="CNY",
    days_past_due=120,
    principal=1_000_000,
    interest=20_000,
    penalty=5_000,
    fee=3_000,
    remaining_months=4,
)


def _finances(income: int, essentials: int = 300_000, savings: int = 0, source: str = "evidenced") -> Finances:
    return Finances(
        currency="CNY",
        monthly_income=Sourced(income, "stated"),
        essential_expenses=Sourced(essentials, source),  # type: ignore[arg-type]
        other_debt_payments=Sourced(0, "stated"),
        savings=Sourced(savings, "stated"),
        household_size=2,
        dependants=1,
        region="CN-11",
    )


def _option(options: list[PlanOption], kind: str, months: int) -> PlanOption:
    return next(o for o in options if o.kind == kind and o.months == months)


def test_restructure_over_twelve_months_matches_the_hand_computed_schedule() -> None:
    options = plan_options(DEBT, assess(_finances(500_000), POLICY), POLICY, PER_PERIOD, START)
    o = _option(options, "restructure", 12)
    # 1,020,000 fen (penalty and fee waived) at 8 % a year, 12 equal instalments: payment
    # P r / (1 - (1 + r)^-12) with r = 0.08 / 12 is 88,728.1977 -> 88,728; interest on the balance each month.
    expected = [
        (81_928, 6_800), (82_474, 6_254), (83_024, 5_704), (83_578, 5_150), (84_135, 4_593), (84_696, 4_032),
        (85_260, 3_468), (85_829, 2_899), (86_401, 2_327), (86_977, 1_751), (87_557, 1_171), (88_141, 588),
    ]  # fmt: skip
    assert [(i.principal, i.interest) for i in o.instalments] == expected
    assert o.instalments[0].due_date == date(2027, 1, 1) and o.instalments[-1].due_date == date(2027, 12, 1)
    assert o.restructured == 1_020_000 and o.waived == {"penalty": 5_000, "fee": 3_000}
    assert o.monthly_payment == 88_729  # the last instalment takes the remainder
    assert o.total_paid == 1_064_737 and o.plan_interest == 44_737


def test_suspension_is_principal_only_with_the_remainder_last() -> None:
    options = plan_options(DEBT, assess(_finances(500_000), POLICY), POLICY, PER_PERIOD, START)
    o = _option(options, "suspension", 6)
    assert [i.principal for i in o.instalments] == [166_667] * 5 + [166_665]
    assert all(i.interest == 0 for i in o.instalments)
    assert o.waived == {"interest": 20_000, "penalty": 5_000, "fee": 3_000} and o.total_paid == 1_000_000


def test_a_holiday_adds_its_interest_then_re_amortises_over_the_minimum_months() -> None:
    options = plan_options(DEBT, assess(_finances(500_000), POLICY), POLICY, PER_PERIOD, START)
    o = _option(options, "holiday", 2 + 6)
    # 1,020,000 x 8 % x 2/12 = 13,600 accrued in the holiday; the first payment falls three months out.
    assert o.instalments[0].due_date == date(2027, 3, 1) and len(o.instalments) == 6
    assert sum(i.principal for i in o.instalments) == 1_020_000
    assert o.plan_interest == o.total_paid - 1_020_000 and o.plan_interest > 13_600


def test_settlement_after_ninety_days_waives_a_fifth_non_principal_first() -> None:
    options = plan_options(DEBT, assess(_finances(500_000, savings=900_000), POLICY), POLICY, PER_PERIOD, START)
    o = next(o for o in options if o.kind == "settlement")
    assert o.discount == Decimal("0.20") and o.total_paid == 822_400
    assert o.waived == {"fee": 3_000, "penalty": 5_000, "interest": 20_000, "principal": 177_600}
    assert o.instalments[0].due_date == date(2026, 12, 31) and o.affordable


def test_the_best_affordable_option_comes_first_with_its_reason() -> None:
    options = plan_options(DEBT, assess(_finances(450_000), POLICY), POLICY, PER_PERIOD, START)
    first = options[0]
    affordable = [o for o in options if o.affordable]
    assert first.affordable and first.expected_recovery == max(o.expected_recovery for o in affordable)
    assert first.reason.startswith("best: affordable")
    assert all(not o.affordable for o in options[len(affordable) :])
    assert all(o.share is not None and o.share > POLICY.max_share_of_disposable for o in options if not o.affordable)


def test_when_nothing_is_affordable_the_lightest_burden_comes_first() -> None:
    options = plan_options(DEBT, assess(_finances(320_000), POLICY), POLICY, PER_PERIOD, START)
    assert not any(o.affordable for o in options)
    shares = [o.share for o in options if o.share is not None]
    assert options[0].share == min(shares) and "no option is affordable" in options[0].reason


def test_product_limits_cap_the_term() -> None:
    card = Outstanding(**{**DEBT.__dict__, "product": "credit_card"})
    loan_terms = {o.months for o in plan_options(DEBT, assess(_finances(500_000), POLICY), POLICY, PER_PERIOD, START)}
    card_terms = {o.months for o in plan_options(card, assess(_finances(500_000), POLICY), POLICY, PER_PERIOD, START)}
    assert max(loan_terms) <= 36 and 60 in card_terms  # five years for credit cards (2011 rules, art. 70)


def test_understated_essentials_are_replaced_by_the_house_standard_unless_evidenced() -> None:
    stated = assess(_finances(600_000, essentials=100_000, source="stated"), POLICY)
    assert stated.essentials == 380_000 + 170_000 and "house standard" in stated.essentials_basis
    evidenced = assess(_finances(600_000, essentials=100_000, source="evidenced"), POLICY)
    assert evidenced.essentials == 100_000 and evidenced.disposable == 500_000
    assert evidenced.share(250_000) == Decimal("0.5000") and evidenced.affords(400_000)
    assert not evidenced.affords(400_001) and evidenced.max_monthly_payment == 400_000
    broke = assess(_finances(200_000, essentials=300_000), POLICY)
    assert broke.disposable == -100_000 and broke.share(1) is None and not broke.affords(1)


def test_authority_limits_send_bigger_offers_to_a_supervisor() -> None:
    options = plan_options(DEBT, assess(_finances(500_000, savings=900_000), POLICY), POLICY, PER_PERIOD, START)
    short = _option(options, "restructure", 12)
    assert check_authority(short, DEBT.total, "agent", POLICY).within  # waiver 0.78 % of the balance
    long = _option(options, "restructure", 36)
    check = check_authority(long, DEBT.total, "agent", POLICY)
    assert not check.within and "term 36 months" in check.reasons[0]
    settle = next(o for o in options if o.kind == "settlement")
    agent = check_authority(settle, DEBT.total, "agent", POLICY)
    assert not agent.within and any("discount 20%" in r for r in agent.reasons)
    assert any("waiver 20.00%" in r for r in agent.reasons)
    assert check_authority(settle, DEBT.total, "team_lead", POLICY).within
    with pytest.raises(ValueError, match="unknown role"):
        check_authority(settle, DEBT.total, "intern", POLICY)


amounts = st.integers(min_value=0, max_value=50_000_000)


@settings(max_examples=150, deadline=None)
@given(
    principal=st.integers(min_value=1, max_value=50_000_000),
    interest=amounts,
    penalty=amounts,
    fee=st.integers(min_value=0, max_value=1_000_000),
    dpd=st.integers(min_value=1, max_value=400),
    remaining=st.integers(min_value=0, max_value=48),
    income=st.integers(min_value=0, max_value=10_000_000),
    savings=st.integers(min_value=0, max_value=100_000_000),
    product=st.sampled_from(["consumer_loan", "credit_card"]),
    day_count=st.sampled_from(list(DayCount)),
)
def test_every_schedule_repays_exactly_the_restructured_balance_plus_the_plan_interest(
    principal: int,
    interest: int,
    penalty: int,
    fee: int,
    dpd: int,
    remaining: int,
    income: int,
    savings: int,
    product: str,
    day_count: DayCount,
) -> None:
    debt = Outstanding("L", product, "CNY", dpd, principal, interest, penalty, fee, remaining)
    aff: Affordability = assess(_finances(income, savings=savings), POLICY)
    options = plan_options(debt, aff, POLICY, ProductConventions(day_count=day_count), START)
    assert {o.kind for o in options} >= {"restructure", "suspension", "settlement"}
    for o in options:
        assert all(i.principal >= 0 and i.interest >= 0 for i in o.instalments)
        assert sum(i.principal for i in o.instalments) == o.restructured
        assert sum(i.amount for i in o.instalments) == o.total_paid == o.restructured + o.plan_interest
        assert o.restructured + o.waived_total == debt.total  # nothing lost, nothing invented
        assert o.monthly_payment == max(i.amount for i in o.instalments)
        assert [i.due_date for i in o.instalments] == sorted({i.due_date for i in o.instalments})
        assert o.months <= POLICY.max_term_for(product)
        assert o.expected_recovery <= o.total_paid
    ranked_affordable = [o.expected_recovery for o in options if o.affordable]
    assert ranked_affordable == sorted(ranked_affordable, reverse=True)
    assert [o.affordable for o in options] == sorted((o.affordable for o in options), reverse=True)
