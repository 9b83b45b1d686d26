"""Hand-checked ledger states of the docs/ledger.md loan (ledger_helpers): every amount is worked out in the docstring.

Amounts are in fen. 1,000.00 of unpaid principal accrues 0.50 (50 fen) of penalty a day; penalty for a day is
charged on the principal left at the end of that day, from the day after due date + grace days.
"""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from duecourse.domain import frames as f
from duecourse.domain.conventions import AllocationMode, Bucket, ProductConventions
from duecourse.domain.errors import ConventionError
from duecourse.domain.money import RoundingMode
from duecourse.ledger.engine import effective_payments, ledger_state, transitions
from tests.unit.ledger.ledger_helpers import DUES, holds, instalments, loans, payments, state

FEB_20 = date(2026, 2, 20)


def test_an_early_payment_leaves_the_loan_current() -> None:
    """1,030.00 on 10 Feb pays instalment 1 (1,000 + 30) before it is due. On 20 Feb nothing is overdue; 2,000.00
    principal and 2,030.00 in all are outstanding; next due 15 Mar: 1,020.00."""
    s = state(FEB_20, payments((date(2026, 2, 10), 103_000)))
    assert (s["days_past_due"], s["bucket"], s["overdue_total"], s["due_principal"]) == (0, "current", 0, 0)
    assert (s["outstanding_principal"], s["outstanding_total"], s["paid_total"], s["credit_balance"]) == (
        200_000,
        203_000,
        103_000,
        0,
    )
    assert (s["next_due_date"], s["next_due_amount"], s["oldest_unpaid_due_date"]) == (date(2026, 3, 15), 102_000, None)


def test_an_on_time_payment_is_the_same_as_an_early_one() -> None:
    on_time = state(FEB_20, payments((DUES[0], 103_000)))
    assert on_time == state(FEB_20, payments((date(2026, 2, 10), 103_000)))


def test_an_instalment_due_today_is_due_but_not_past_due() -> None:
    """Unpaid on its due date 15 Feb: due 1,000.00 + 30.00, nothing overdue, 0 days past due."""
    s = state(DUES[0])
    assert (s["due_principal"], s["due_interest"], s["overdue_total"], s["days_past_due"], s["bucket"]) == (
        100_000,
        3_000,
        0,
        0,
        "current",
    )
    assert s["oldest_unpaid_due_date"] is None


def test_a_partial_payment_pays_interest_first_and_leaves_principal_accruing_penalty() -> None:
    """500.00 on 15 Feb: interest 30.00, principal 470.00; 530.00 principal left. Its daily penalty
    530.00 x 0.1825 / 365 = 0.265 -> 0.27 (half up); 16..20 Feb is 5 days: 1.35. 5 days past due: M1.
    Outstanding: 530.00 + 1.35 + 1,020.00 + 1,010.00 = 2,561.35."""
    s = state(FEB_20, payments((DUES[0], 50_000)))
    assert (s["days_past_due"], s["bucket"], s["oldest_unpaid_due_date"]) == (5, "M1", DUES[0])
    assert (s["overdue_principal"], s["overdue_interest"], s["overdue_penalty"], s["overdue_total"]) == (
        53_000,
        0,
        135,
        53_135,
    )
    assert (s["due_principal"], s["outstanding_total"]) == (53_000, 256_135)


@pytest.mark.parametrize(
    ("mode", "unit", "penalty"),
    [
        (RoundingMode.HALF_UP, 1, 5 * 27),  # 26.5 fen a day -> 27
        (RoundingMode.HALF_EVEN, 1, 5 * 26),  # -> 26, the even neighbour
        (RoundingMode.DOWN, 1, 5 * 26),
        (RoundingMode.UP, 1, 5 * 27),
        (RoundingMode.HALF_UP, 10, 5 * 30),  # in whole jiao: 2.65 jiao -> 3 jiao = 30 fen
    ],
)
def test_the_daily_penalty_is_rounded_once_by_the_products_mode_and_unit(
    mode: RoundingMode, unit: int, penalty: int
) -> None:
    """The partial-payment case: 26.5 fen a day on 530.00 for 5 days, rounded per day, then times 5."""
    s = state(FEB_20, payments((DUES[0], 50_000)), ProductConventions(rounding_mode=mode, rounding_unit=unit))
    assert s["overdue_penalty"] == penalty


def test_a_late_payment_pays_the_penalty_first() -> None:
    """1,030.00 on 25 Feb, ten days late. Penalty for 16..24 Feb on 1,000.00: 9 x 0.50 = 4.50, paid first; then
    interest 30.00 and principal 995.50, so 4.50 principal is left and its penalty for 25 Feb (0.00225) rounds
    to 0. 10 days past due."""
    s = state(date(2026, 2, 25), payments((date(2026, 2, 25), 103_000)))
    assert (s["days_past_due"], s["bucket"], s["overdue_principal"], s["overdue_penalty"]) == (10, "M1", 450, 0)
    assert (s["overdue_total"], s["paid_total"], s["credit_balance"]) == (450, 103_000, 0)


def test_a_backdated_payment_gives_the_state_it_would_have_given_on_time() -> None:
    """Before the payment valued 15 Feb is known, 20 Feb shows 5 days past due and 5 x 0.50 penalty. It arrives on
    25 Feb, after a later payment was booked: from then on every day from 15 Feb on is exactly the on-time state."""
    before = state(FEB_20)
    assert (before["days_past_due"], before["overdue_penalty"]) == (5, 250)
    on_time = payments((DUES[0], 103_000), (DUES[1], 102_000))
    late_arrival = payments((DUES[1], 102_000), (DUES[0], 103_000))  # booked in this order: payment keys 1, 2
    for day in (DUES[0], FEB_20, DUES[1], date(2026, 3, 31)):
        assert state(day, late_arrival) == state(day, on_time)
    assert state(FEB_20, late_arrival)["bucket"] == "current"


def test_a_reversal_voids_the_payment_from_its_own_value_date() -> None:
    """1,030.00 paid 15 Feb bounces: the reversal is valued 18 Feb. On 17 Feb the loan is current; on 20 Feb it is as
    if never paid: 1,000.00 + 30.00 overdue and penalty for 16..20 Feb, 5 x 0.50 = 2.50, paid total 0."""
    pays = payments((DUES[0], 103_000), (date(2026, 2, 18), 103_000, 1))
    assert state(date(2026, 2, 17), pays)["bucket"] == "current"
    s = state(FEB_20, pays)
    assert (s["days_past_due"], s["overdue_principal"], s["overdue_interest"], s["overdue_penalty"]) == (
        5,
        100_000,
        3_000,
        250,
    )
    assert s["paid_total"] == 0
    assert s == state(FEB_20)
    assert effective_payments(pays, FEB_20).is_empty() and effective_payments(pays, date(2026, 2, 17)).height == 1


def test_a_clock_pausing_hold_is_subtracted_from_days_past_due_but_penalty_runs_unless_the_product_pauses_it() -> None:
    """Unpaid since 15 Feb; on 1 Mar that is 14 days, of which 20..24 Feb (5) were under a dispute hold: 9 days past
    due. Penalty 16 Feb..1 Mar = 14 x 0.50 = 7.00; with holds_pause_penalty only 9 x 0.50 = 4.50."""
    march_1 = date(2026, 3, 1)
    hold = holds((date(2026, 2, 20), date(2026, 2, 24), 1, True))
    s = state(march_1, hold_rows=hold)
    assert (s["days_past_due"], s["paused_days"], s["bucket"], s["overdue_penalty"]) == (9, 5, "M1", 700)
    assert state(march_1, hold_rows=hold, conv=ProductConventions(holds_pause_penalty=True))["overdue_penalty"] == 450


def test_holds_on_the_borrower_overlapping_open_or_not_pausing() -> None:
    """Borrower-wide hold 20..24 Feb and a loan hold 22..26 Feb overlap: 20..26 Feb = 7 days count once (dpd 7 on
    1 Mar). An open hold from 27 Feb counts 27 Feb..1 Mar = 3 more. A hold that does not pause the clock: none."""
    march_1 = date(2026, 3, 1)
    overlapping = holds(
        (date(2026, 2, 20), date(2026, 2, 24), None, True), (date(2026, 2, 22), date(2026, 2, 26), 1, True)
    )
    assert (
        state(march_1, hold_rows=overlapping)["paused_days"],
        state(march_1, hold_rows=overlapping)["days_past_due"],
    ) == (7, 7)
    with_open = holds(
        (date(2026, 2, 20), date(2026, 2, 24), None, True),
        (date(2026, 2, 22), date(2026, 2, 26), 1, True),
        (date(2026, 2, 27), None, 1, True),
    )
    assert state(march_1, hold_rows=with_open)["paused_days"] == 10
    assert state(march_1, hold_rows=holds((date(2026, 2, 20), date(2026, 2, 24), 1, False)))["paused_days"] == 0
    other_loan = holds((date(2026, 2, 20), date(2026, 2, 24), 2, True))
    assert state(march_1, hold_rows=other_loan)["paused_days"] == 0


def test_grace_days_delay_delinquency_and_penalty() -> None:
    """3 grace days: unpaid since 15 Feb, on 18 Feb the loan is 3 days past due (reported as is) but still current
    and owes no penalty; on 19 Feb it is 4 days past due, M1, with one day of penalty (19 Feb): 0.50."""
    grace = ProductConventions(grace_days=3)
    on_18 = state(date(2026, 2, 18), conv=grace)
    assert (on_18["days_past_due"], on_18["bucket"], on_18["overdue_penalty"]) == (3, "current", 0)
    on_19 = state(date(2026, 2, 19), conv=grace)
    assert (on_19["days_past_due"], on_19["bucket"], on_19["overdue_penalty"]) == (4, "M1", 50)


MARCH_20 = date(2026, 3, 20)
HUNDRED_ON_MARCH_20 = payments((MARCH_20, 10_000))


def test_instalment_first_pays_the_oldest_instalment_in_full_order() -> None:
    """Nothing paid until 100.00 on 20 Mar. Before it, instalment 1 accrued 16 Feb..19 Mar = 32 x 0.50 = 16.00 and
    instalment 2 16..19 Mar = 4 x 0.50 = 2.00. Oldest first: penalty 16.00, interest 30.00, principal 54.00 of
    instalment 1 (946.00 left). End of 20 Mar: 946.00 accrues 0.473 -> 0.47, instalment 2 0.50.
    Overdue: principal 1,946.00, interest 20.00, penalty 0.47 + 2.50 = 2.97; 33 days past due (M2)."""
    s = state(MARCH_20, HUNDRED_ON_MARCH_20)
    assert (s["overdue_principal"], s["overdue_interest"], s["overdue_penalty"], s["overdue_total"]) == (
        194_600,
        2_000,
        297,
        196_897,
    )
    assert (s["days_past_due"], s["bucket"], s["outstanding_total"]) == (33, "M2", 196_897 + 101_000)


def test_component_first_pays_each_component_across_due_instalments() -> None:
    """Same book, component first: penalty of both due instalments (18.00), then their interest (50.00), then
    principal, oldest first: 32.00 of instalment 1 (968.00 left). End of 20 Mar: 968.00 -> 0.484 -> 0.48, and 0.50.
    Overdue: principal 1,968.00, interest 0, penalty 0.98."""
    conv = ProductConventions(allocation_mode=AllocationMode.COMPONENT_FIRST)
    s = state(MARCH_20, HUNDRED_ON_MARCH_20, conv)
    assert (s["overdue_principal"], s["overdue_interest"], s["overdue_penalty"], s["overdue_total"]) == (
        196_800,
        0,
        98,
        196_898,
    )


def test_a_custom_component_order() -> None:
    """Principal first: the 100.00 goes to instalment 1's principal (900.00 left), its 16.00 penalty and 30.00
    interest stay. End of 20 Mar: 900.00 -> 0.45. Overdue principal 1,900.00, interest 50.00, penalty
    16.45 + 2.50 = 18.95."""
    conv = ProductConventions(allocation_order=("principal", "interest", "fee", "penalty"))
    s = state(MARCH_20, HUNDRED_ON_MARCH_20, conv)
    assert (s["overdue_principal"], s["overdue_interest"], s["overdue_penalty"]) == (190_000, 5_000, 1_895)


def test_a_catch_up_payment_clears_all_arrears() -> None:
    """On 20 Mar the arrears are 1,046.00 (instalment 1 with 16.00 penalty) + 1,022.00 (instalment 2 with 2.00):
    2,068.00 paid that day clears them; no principal is left overdue, so no penalty for 20 Mar."""
    s = state(MARCH_20, payments((MARCH_20, 206_800)))
    assert (s["overdue_total"], s["days_past_due"], s["bucket"], s["credit_balance"]) == (0, 0, "current", 0)
    assert (s["outstanding_total"], s["next_due_date"], s["next_due_amount"]) == (101_000, DUES[2], 101_000)


def test_prepayment_and_overpayment() -> None:
    """1,530.00 on 10 Feb: instalment 1 (1,030.00) and of instalment 2 its interest 20.00 and 480.00 principal, so
    next due 15 Mar is 520.00. 3,100.00 pays all 3,060.00 scheduled: 40.00 credit, nothing outstanding."""
    prepaid = state(FEB_20, payments((date(2026, 2, 10), 153_000)))
    assert (prepaid["next_due_date"], prepaid["next_due_amount"], prepaid["outstanding_principal"]) == (
        DUES[1],
        52_000,
        152_000,
    )
    over = state(FEB_20, payments((date(2026, 2, 10), 310_000)))
    assert (over["credit_balance"], over["outstanding_total"], over["next_due_date"], over["next_due_amount"]) == (
        4_000,
        0,
        None,
        0,
    )


def test_payments_on_the_same_day_act_as_their_sum() -> None:
    """Two payments on 25 Feb (600.00 + 430.00) are the late 1,030.00 of 25 Feb: 4.50 principal left."""
    two = state(date(2026, 2, 25), payments((date(2026, 2, 25), 60_000), (date(2026, 2, 25), 43_000)))
    assert two == state(date(2026, 2, 25), payments((date(2026, 2, 25), 103_000)))
    assert two["overdue_principal"] == 450


def test_an_interest_only_loan_owes_its_principal_at_maturity() -> None:
    """10,000.00 interest-only at 12 % (100.00 interest a month), interest paid on each due date, principal never.
    On 20 Apr: 10,000.00 overdue since 15 Apr, 5 days of penalty at 10,000.00 x 0.1825 / 365 = 5.00: 25.00."""
    schedule = ((0, 10_000, 0), (0, 10_000, 0), (1_000_000, 10_000, 0))
    pays = payments(*((due, 10_000) for due in DUES))
    s = state(date(2026, 4, 20), pays, inst_rows=instalments(schedule=schedule))
    assert (s["overdue_principal"], s["overdue_interest"], s["overdue_penalty"], s["days_past_due"]) == (
        1_000_000,
        0,
        2_500,
        5,
    )
    before = state(FEB_20, pays, inst_rows=instalments(schedule=schedule))
    assert (before["next_due_date"], before["next_due_amount"], before["outstanding_principal"]) == (
        DUES[1],
        10_000,
        1_000_000,
    )


def test_fees_are_paid_in_waterfall_order() -> None:
    """A 15.00 fee on instalment 1: 25.00 paid on 15 Feb meets penalty (none), fee 15.00, then interest 10.00."""
    schedule = ((100_000, 3_000, 1_500), (100_000, 2_000, 0), (100_000, 1_000, 0))
    s = state(DUES[0], payments((DUES[0], 2_500)), inst_rows=instalments(schedule=schedule))
    assert (s["due_fee"], s["due_interest"], s["due_principal"]) == (0, 2_000, 100_000)


def test_loans_not_started_are_left_out_and_products_need_conventions() -> None:
    two = loans({}, {"start_date": date(2026, 3, 1)})
    frame = ledger_state(
        two, instalments(), payments(), pl.DataFrame(schema=f.HOLDS), {"HC": ProductConventions()}, FEB_20
    )
    assert frame.get_column("loan_key").to_list() == [1] and frame.schema == f.LEDGER_STATE
    with pytest.raises(ConventionError, match="HC"):
        ledger_state(
            two, instalments(), payments(), pl.DataFrame(schema=f.HOLDS), {"OTHER": ProductConventions()}, FEB_20
        )


def test_transitions_between_two_days() -> None:
    """new: current -> delinquent (also a loan absent yesterday); cure: back to current; roll forward / back between
    delinquent buckets; steady otherwise."""
    buckets = {
        1: ("current", "M1"),
        2: ("M1", "current"),
        3: ("M1", "M2"),
        4: ("M3", "M2"),
        5: ("M2", "M2"),
        6: ("current", "current"),
    }
    yesterday = pl.DataFrame({"loan_key": list(buckets), "bucket": [b[0] for b in buckets.values()]})
    today = pl.DataFrame({"loan_key": [*buckets, 7, 8], "bucket": [b[1] for b in buckets.values()] + ["M1", "current"]})
    moves = dict(transitions(today, yesterday).iter_rows())
    assert moves == {
        1: "new",
        2: "cure",
        3: "roll_forward",
        4: "roll_back",
        5: "steady",
        6: "steady",
        7: "new",
        8: "steady",
    }


def test_transitions_follow_the_products_bucket_order() -> None:
    """Custom buckets ok (0), late (1-9), lost (10+): 'lost' -> 'late' rolls back even though 'late' sorts after it."""
    conv = ProductConventions(buckets=(Bucket("ok", 0, 0), Bucket("late", 1, 9), Bucket("lost", 10, None)))
    moves = transitions(
        pl.DataFrame({"loan_key": [1, 2], "bucket": ["late", "ok"]}),
        pl.DataFrame({"loan_key": [1, 2], "bucket": ["lost", "late"]}),
        {"X": conv},
    )
    assert dict(moves.iter_rows()) == {1: "roll_back", 2: "cure"}
    with pytest.raises(ConventionError):
        transitions(
            pl.DataFrame({"loan_key": [1], "bucket": ["M1"]}),
            pl.DataFrame({"loan_key": [1], "bucket": ["ok"]}),
            {"X": conv},
        )


def test_a_missed_instalment_is_new_delinquency_the_day_after_its_due_date() -> None:
    today, yesterday = (
        ledger_state(
            loans(), instalments(), payments(), pl.DataFrame(schema=f.HOLDS), {"HC": ProductConventions()}, day
        )
        for day in (date(2026, 2, 16), DUES[0])
    )
    assert transitions(today, yesterday).row(0) == (1, "new")
    assert (today.row(0, named=True)["as_of"], yesterday.row(0, named=True)["bucket"]) == (date(2026, 2, 16), "current")


def test_the_worked_example_of_docs_ledger_md() -> None:
    """500.00 on 15 Feb and 600.00 on 25 Feb; the table in docs/ledger.md, row by row."""
    pays = payments((DUES[0], 50_000), (date(2026, 2, 25), 60_000))
    feb_15 = state(DUES[0], pays)
    assert (feb_15["due_principal"], feb_15["overdue_total"], feb_15["days_past_due"], feb_15["bucket"]) == (
        53_000,
        0,
        0,
        "current",
    )
    feb_20 = state(FEB_20, pays)
    assert (feb_20["overdue_total"], feb_20["overdue_penalty"], feb_20["days_past_due"], feb_20["bucket"]) == (
        53_135,
        135,
        5,
        "M1",
    )
    feb_25 = state(date(2026, 2, 25), pays)
    assert (feb_25["overdue_total"], feb_25["bucket"], feb_25["outstanding_principal"]) == (0, "current", 195_243)
    assert (feb_25["next_due_date"], feb_25["next_due_amount"]) == (DUES[1], 95_243)
    mar_16 = state(date(2026, 3, 16), pays)
    assert (mar_16["overdue_principal"], mar_16["overdue_penalty"], mar_16["days_past_due"], mar_16["bucket"]) == (
        95_243,
        48,
        1,
        "M1",
    )
    assert (mar_16["next_due_date"], mar_16["next_due_amount"]) == (DUES[2], 101_000)
