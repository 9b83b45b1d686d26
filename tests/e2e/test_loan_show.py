"""Hand-checked loans agree with `duecourse loan show` (book: tests/e2e/handbook).

Every loan below is 3,000.00 over three monthly instalments of 1,000.00 principal (interest 30.00,
20.00, 10.00) due 15 Feb, 15 Mar and 15 Apr 2026, with penalty at 18.25 % a year on an actual/365
basis: 1,000.00 x 0.1825 / 365 = exactly 0.50 a day. Penalty for a day accrues on the principal left
at the end of that day, from the day after the due date.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.conftest import Cli

BOOK = "tests/e2e/handbook"


@pytest.fixture(scope="module")
def book(tmp_path_factory: pytest.TempPathFactory) -> Cli:
    cli = Cli(tmp_path_factory.mktemp("handbook"))
    cli("import", BOOK)
    return cli


def show(cli: Cli, loan: str, day: str) -> dict[str, Any]:
    return dict(cli.json("loan", "show", loan, "--as-of", day))


def test_early_payment_leaves_the_loan_current(book: Cli) -> None:
    s = show(book, "A1-early", "2026-02-20")  # paid 1,030.00 on 10 Feb, five days early
    assert (s["days_past_due"], s["bucket"], s["overdue_total"]) == (0, "current", "0.00")
    assert (s["outstanding_principal"], s["outstanding_total"]) == ("2000.00", "2030.00")
    assert (s["next_due_date"], s["next_due_amount"]) == ("2026-03-15", "1020.00")


def test_on_time_payment_equals_early_payment(book: Cli) -> None:
    early, on_time = show(book, "A1-early", "2026-02-20"), show(book, "A2-ontime", "2026-02-20")
    keep = ("days_past_due", "bucket", "overdue_total", "outstanding_total", "paid_total", "next_due_amount")
    assert {k: early[k] for k in keep} == {k: on_time[k] for k in keep}


def test_partial_payment_pays_interest_first_and_accrues_penalty_on_the_rest(book: Cli) -> None:
    # 500.00 on the due date: interest 30.00, principal 470.00 -> 530.00 principal left.
    # Daily penalty 530.00 x 0.0005 = 0.265 -> 0.27 (half up); 16..20 Feb = 5 days = 1.35.
    s = show(book, "A3-partial", "2026-02-20")
    assert (s["days_past_due"], s["bucket"]) == (5, "M1")
    assert (s["overdue_principal"], s["overdue_interest"], s["overdue_penalty"], s["overdue_total"]) == (
        "530.00",
        "0.00",
        "1.35",
        "531.35",
    )
    assert s["due_principal"] == "530.00" and s["outstanding_total"] == "2561.35"


def test_late_payment_pays_penalty_first_and_leaves_a_shortfall(book: Cli) -> None:
    # 1,030.00 on 25 Feb: penalty 16..24 Feb = 9 x 0.50 = 4.50 first, interest 30.00, principal 995.50;
    # 4.50 principal stays unpaid, whose daily penalty (0.00225) rounds to 0.00.
    s = show(book, "A4-late", "2026-02-25")
    assert (s["days_past_due"], s["bucket"]) == (10, "M1")
    assert (s["overdue_principal"], s["overdue_penalty"], s["overdue_total"]) == ("4.50", "0.00", "4.50")
    assert s["paid_total"] == "1030.00"


def test_backdated_payment_gives_the_state_it_would_have_given_on_time(book: Cli) -> None:
    before = show(book, "A5-backdated", "2026-02-20")
    assert (before["days_past_due"], before["overdue_penalty"]) == (5, "2.50")
    book("import", f"{BOOK}/later")  # the payment dated 15 Feb arrives on 25 Feb
    after = show(book, "A5-backdated", "2026-02-20")
    on_time = show(book, "A2-ontime", "2026-02-20")
    keep = ("days_past_due", "bucket", "overdue_total", "outstanding_total", "paid_total", "next_due_amount")
    assert {k: after[k] for k in keep} == {k: on_time[k] for k in keep}


def test_reversal_voids_the_payment_from_its_value_date(book: Cli) -> None:
    assert show(book, "A6-reversed", "2026-02-17")["bucket"] == "current"  # before the bounce
    s = show(book, "A6-reversed", "2026-02-20")  # reversed on 18 Feb: as if never paid
    assert (s["days_past_due"], s["overdue_principal"], s["overdue_interest"], s["overdue_penalty"]) == (
        5,
        "1000.00",
        "30.00",
        "2.50",
    )
    assert s["paid_total"] == "0.00"
    assert [p["kind"] for p in s["payments"]] == ["payment (reversed)", "reversal"]


def test_a_clock_pausing_hold_is_subtracted_from_days_past_due(book: Cli) -> None:
    # Unpaid since 15 Feb; on 1 Mar that is 14 days, of which 20..24 Feb (5 days) were under a dispute hold.
    # The product does not pause penalty for holds: 14 x 0.50 = 7.00.
    s = show(book, "A7-hold", "2026-03-01")
    assert (s["days_past_due"], s["paused_days"], s["bucket"], s["overdue_penalty"]) == (9, 5, "M1", "7.00")


def test_equal_instalment_schedule(book: Cli) -> None:
    # 12,000.00 at 12 %/12 = 1 % a month: payment 12,000 x 0.01 / (1 - 1.01^-12) = 1,066.1855 -> 1,066.19.
    # First: interest 120.00, principal 946.19. Last takes the remainder: principal 1,055.58, interest 10.56.
    sched = show(book, "M1-annuity", "2026-01-31")["schedule"]
    assert len(sched) == 12
    assert (sched[0]["due_date"], sched[0]["principal"], sched[0]["interest"]) == ("2026-02-28", "946.19", "120.00")
    assert (sched[-1]["due_date"], sched[-1]["principal"], sched[-1]["interest"]) == ("2027-01-31", "1055.58", "10.56")
    assert sum(int(r["principal"].replace(".", "")) for r in sched) == 1_200_000
    assert all(
        int(r["principal"].replace(".", "")) + int(r["interest"].replace(".", "")) == 106_619 for r in sched[:-1]
    )


def test_equal_principal_schedule(book: Cli) -> None:
    sched = show(book, "M2-equal-principal", "2026-01-20")["schedule"]
    assert [(r["principal"], r["interest"]) for r in sched] == [
        ("1000.00", "30.00"),
        ("1000.00", "20.00"),
        ("1000.00", "10.00"),
    ]


def test_interest_only_schedule_repays_principal_at_maturity(book: Cli) -> None:
    sched = show(book, "M3-bullet", "2026-01-20")["schedule"]
    assert [(r["principal"], r["interest"]) for r in sched] == [
        ("0.00", "100.00"),
        ("0.00", "100.00"),
        ("10000.00", "100.00"),
    ]


def test_equal_instalment_on_actual_365(book: Cli) -> None:
    # Payment from the nominal monthly rate: 1,000 x r / (1 - (1 + r)^-3), r = 0.10/12 -> 338.90.
    # Interest by actual days: 1,000.00 x 0.10 x 31/365 = 8.49; 669.59 x 0.10 x 28/365 = 5.14;
    # 335.83 x 0.10 x 31/365 = 2.85. Principal 330.41, 333.76 and the remainder 335.83.
    sched = show(book, "M4-annuity-act365", "2026-01-20")["schedule"]
    assert [(r["principal"], r["interest"]) for r in sched] == [
        ("330.41", "8.49"),
        ("333.76", "5.14"),
        ("335.83", "2.85"),
    ]
