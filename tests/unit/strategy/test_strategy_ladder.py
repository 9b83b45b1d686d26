"""Ladder evaluation: first match wins, stop conditions, cadence, arms, reasons — and agreement with a plain
row-by-row reference implementation on a random book."""

from __future__ import annotations

import random
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from strategy_helpers import AS_OF, borrower_in, facts, history, independent_bucket, strategy

from duecourse.domain.money import MINOR_UNIT_EXPONENT
from duecourse.strategy import predicates as p
from duecourse.strategy.ladder import PROPOSALS, propose
from duecourse.strategy.loader import load_strategy
from duecourse.strategy.model import Step, StepKind, StopCondition, Strategy

ROOT = Path(__file__).resolve().parents[3]

S = strategy(
    """
    name: ladder-test
    version: 1
    split:
      salt: s1
      arms: {champion: 50, challenger: 50}
    segments:
      - id: vulnerable
        when: [{flag_present: elderly}]
        ladder: gentle
      - id: big
        when: [{outstanding_balance_at_least: 5000}]
        ladder: {champion: standard, challenger: early}
      - id: rest
        when: [{product_in: [cash_loan]}]
        ladder: standard
    ladders:
      standard:
        steps:
          - {id: visit, kind: door_visit_candidate, channel: visit, template: visit.t, priority: 10,
             when: [{days_past_due_at_least: 60}, {overdue_amount_at_least: 1000}], repeat: {every_days: 14}}
          - {id: call_1, kind: call, channel: call, template: call.t, priority: 40,
             when: [{days_past_due_at_least: 8}], repeat: {every_days: 3}}
          - {id: sms_1, kind: sms, channel: sms, template: sms.t, priority: 60,
             when: [{days_past_due_at_least: 1}], repeat: once, stop_if: [paid, hold]}
          - {id: pre_due, kind: pre_due_reminder, channel: sms, template: pre.t, priority: 80,
             when: [{days_past_due_at_most: 0}, {days_to_next_due_at_most: 3}], repeat: {every_days: 20}}
      early:
        steps:
          - {id: call_1, kind: call, channel: call, template: call.t, priority: 40,
             when: [{days_past_due_at_least: 4}], repeat: {every_days: 3}}
          - {id: sms_1, kind: sms, channel: sms, template: sms.t, priority: 60,
             when: [{days_past_due_at_least: 1}], repeat: once}
      gentle:
        steps:
          - {id: sms_1, kind: sms, channel: sms, template: sms.gentle, priority: 60,
             when: [{days_past_due_at_least: 1}], repeat: once}
    """
)

NO_HISTORY = history()
CHAMPION = borrower_in("s1", 0, 5000)
CHALLENGER = borrower_in("s1", 5000, 10_000)


def steps_of(frame: pl.DataFrame) -> dict[int, str]:
    return dict(zip(frame["loan_key"].to_list(), frame["step"].to_list(), strict=True))


def test_the_first_matching_segment_wins() -> None:
    book = facts(
        {"flags": ["elderly"], "outstanding_total": 900_000, "days_past_due": 10, "overdue_total": 50_000},  # both
        {"outstanding_total": 900_000, "days_past_due": 10, "overdue_total": 50_000, "borrower_id": CHAMPION},
        {"outstanding_total": 100_000, "days_past_due": 10, "overdue_total": 50_000},
        {"outstanding_total": 100_000, "days_past_due": 10, "overdue_total": 50_000, "product": "card"},  # none
    )
    out = propose(book, NO_HISTORY, S, AS_OF)
    assert dict(zip(out["loan_key"], out["segment"], strict=True)) == {1: "vulnerable", 2: "big", 3: "rest"}
    assert dict(zip(out["loan_key"], out["template"], strict=True)) == {1: "sms.gentle", 2: "call.t", 3: "call.t"}


def test_the_first_matching_step_wins() -> None:
    book = facts(
        {"days_past_due": 70, "overdue_total": 200_000, "bucket": "M3"},  # visit and call_1 and sms_1 all match
        {"days_past_due": 70, "overdue_total": 50_000, "bucket": "M3"},  # below the visit threshold: call_1
        {"days_past_due": 3, "overdue_total": 50_000, "bucket": "M1"},
        {"days_past_due": 0, "days_to_next_due": 2},
        {"days_past_due": 0, "days_to_next_due": 10},  # nothing to do
    )
    out = propose(book, NO_HISTORY, S, AS_OF)
    assert steps_of(out) == {1: "visit", 2: "call_1", 3: "sms_1", 4: "pre_due"}
    first = out.row(0, named=True)
    assert (first["action"], first["channel"], first["priority"], first["ladder"]) == (
        "door_visit_candidate", "visit", 10, "standard"
    )


@pytest.mark.parametrize(
    ("row", "stopped"),
    [
        ({"has_outreach_hold": True}, True),
        ({"has_active_promise": True}, True),
        ({"has_active_plan": True}, True),
        ({"overdue_total": 0}, True),  # paid, for a post-due step
        ({}, False),
    ],
)
def test_a_stop_condition_means_no_treatment_today_not_the_next_step(row: dict[str, Any], stopped: bool) -> None:
    # dpd 10: call_1 matches first; sms_1 (dpd >= 1) would match too but must not be reached
    book = facts({"days_past_due": 10, "overdue_total": 50_000, **row})
    out = propose(book, NO_HISTORY, S, AS_OF)
    assert steps_of(out) == ({} if stopped else {1: "call_1"})


def test_only_the_listed_stop_conditions_stop_a_step() -> None:
    # sms_1 lists only paid and hold: a promise or a plan does not stop it
    book = facts(
        {"days_past_due": 2, "overdue_total": 50_000, "has_active_promise": True},
        {"days_past_due": 2, "overdue_total": 50_000, "has_active_plan": True},
        {"days_past_due": 2, "overdue_total": 50_000, "has_outreach_hold": True},
    )
    assert steps_of(propose(book, NO_HISTORY, S, AS_OF)) == {1: "sms_1", 2: "sms_1"}


@pytest.mark.parametrize(("next_due_amount", "stopped"), [(0, True), (None, True), (1, False)])
def test_paid_for_a_pre_due_reminder_means_the_next_instalment_is_paid(
    next_due_amount: int | None, stopped: bool
) -> None:
    book = facts({"days_past_due": 0, "days_to_next_due": 1, "next_due_amount": next_due_amount})
    assert steps_of(propose(book, NO_HISTORY, S, AS_OF)) == ({} if stopped else {1: "pre_due"})


def test_once_fires_only_if_never_proposed_in_the_case() -> None:
    book = facts(*[{"days_past_due": 2, "overdue_total": 50_000}] * 3)
    past = history(
        (1, "sms_1", AS_OF - timedelta(days=40)),  # proposed long ago: still never again
        (2, "call_1", AS_OF - timedelta(days=1)),  # another step's history does not count
        (99, "sms_1", AS_OF - timedelta(days=1)),  # another loan's history does not count
    )
    assert steps_of(propose(book, past, S, AS_OF)) == {2: "sms_1", 3: "sms_1"}


@pytest.mark.parametrize(("days_ago", "fires"), [(None, True), (3, True), (4, True), (2, False), (0, False)])
def test_every_n_days_fires_when_last_proposed_n_or_more_days_ago(days_ago: int | None, fires: bool) -> None:
    book = facts({"days_past_due": 10, "overdue_total": 50_000})
    past = history() if days_ago is None else history((1, "call_1", AS_OF - timedelta(days=days_ago)))
    # a cadence miss gives no treatment today: sms_1 below is not proposed instead
    assert steps_of(propose(book, past, S, AS_OF)) == ({1: "call_1"} if fires else {})


def test_several_history_rows_for_one_step_count_the_latest() -> None:
    book = facts({"days_past_due": 10, "overdue_total": 50_000}, {"days_past_due": 10, "overdue_total": 50_000})
    past = history(
        (1, "call_1", AS_OF - timedelta(days=10)),
        (1, "call_1", AS_OF - timedelta(days=1)),
        (2, "call_1", AS_OF - timedelta(days=10)),
    )
    out = propose(book, past, S, AS_OF)
    assert steps_of(out) == {2: "call_1"}
    assert out.height == 1


def test_each_arm_gets_its_own_ladder_and_the_arm_is_recorded() -> None:
    assert independent_bucket("s1", CHAMPION) < 5000 <= independent_bucket("s1", CHALLENGER)
    big = {"outstanding_total": 1_000_000, "days_past_due": 5, "overdue_total": 50_000}
    book = facts({**big, "borrower_id": CHAMPION}, {**big, "borrower_id": CHALLENGER, "borrower_key": 2})
    out = propose(book, NO_HISTORY, S, AS_OF)
    rows = {r["loan_key"]: r for r in out.iter_rows(named=True)}
    assert (rows[1]["arm"], rows[1]["ladder"], rows[1]["step"]) == ("champion", "standard", "sms_1")
    assert (rows[2]["arm"], rows[2]["ladder"], rows[2]["step"]) == ("challenger", "early", "call_1")
    # a step id shared by two ladders is one step: the challenger's call_1 sees call_1's history
    past = history((2, "call_1", AS_OF - timedelta(days=1)))
    assert steps_of(propose(book, past, S, AS_OF)) == {1: "sms_1"}


def test_the_arm_is_recorded_for_segments_with_one_ladder_too() -> None:
    book = facts(
        {"days_past_due": 10, "overdue_total": 50_000, "borrower_id": CHAMPION},
        {"days_past_due": 10, "overdue_total": 50_000, "borrower_id": CHALLENGER, "borrower_key": 2},
    )
    out = propose(book, NO_HISTORY, S, AS_OF)
    assert out["arm"].to_list() == ["champion", "challenger"]


def test_the_reason_names_segment_arm_step_and_the_facts_that_matched() -> None:
    book = facts(
        {"outstanding_total": 1_000_000, "days_past_due": 5, "overdue_total": 50_000, "borrower_id": CHALLENGER},
        {"days_past_due": 70, "overdue_total": 123_456, "borrower_id": CHAMPION, "outstanding_total": 400_000},
    )
    out = propose(book, NO_HISTORY, S, AS_OF)
    assert out["reason"].to_list() == [
        "segment big/challenger (outstanding 10,000.00 CNY >= 5,000.00), step call_1: days past due 5 >= 4",
        (
            "segment rest/champion (product cash_loan in [cash_loan]), step visit: days past due 70 >= 60; "
            "overdue 1,234.56 CNY >= 1,000.00"
        ),
    ]


def test_output_contract_one_row_per_loan_sorted_by_loan() -> None:
    book = facts(*[{"days_past_due": d, "overdue_total": 10_000 * d, "loan_key": 100 - d} for d in range(90)])
    out = propose(book, NO_HISTORY, S, AS_OF)
    assert out.schema == PROPOSALS
    assert out["loan_key"].is_sorted() and out["loan_key"].n_unique() == out.height
    assert out.height == 89  # every delinquent loan; the current one is 20 days from its due date


def test_no_facts_gives_no_proposals_with_the_contract_schema() -> None:
    out = propose(facts(), NO_HISTORY, S, AS_OF)
    assert out.is_empty() and out.schema == PROPOSALS


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="currencies"):
        propose(facts({"currency": "XYZ"}), NO_HISTORY, S, AS_OF)
    with pytest.raises(ValueError, match="lacks columns"):
        propose(facts({}).drop("bucket"), NO_HISTORY, S, AS_OF)
    with pytest.raises(ValueError, match="one row per loan_key"):
        propose(facts({"loan_key": 7}, {"loan_key": 7}), NO_HISTORY, S, AS_OF)


# ---------------------------------------------------------------------------------------------------------------
# A plain row-by-row reference, written from the documented semantics, compared with the engine on a random book.


def _holds(pred: p.Predicate, row: dict[str, Any]) -> bool:
    def number(column: str) -> Any:
        return row[column]

    if isinstance(pred, p.DaysPastDueAtLeast | p.DaysPastDueAtMost | p.DaysToNextDueAtLeast | p.DaysToNextDueAtMost
                  | p.AgeAtLeast | p.AgeBelow):
        value = number(pred.column)
        if value is None:
            return False
        return {">=": value >= pred.value, "<=": value <= pred.value, "<": value < pred.value}[pred.op]
    if isinstance(pred, p.OverdueAmountAtLeast | p.OverdueAmountBelow | p.OutstandingBalanceAtLeast
                  | p.OutstandingBalanceBelow):
        major = Decimal(row[pred.column]).scaleb(-MINOR_UNIT_EXPONENT[row["currency"]])
        return major >= pred.amount if pred.op == ">=" else major < pred.amount
    if isinstance(pred, p.BucketIn | p.ProductIn | p.LanguageIn):
        return row[pred.column] in pred.values
    if isinstance(pred, p.FlagPresent):
        return pred.flag in (row["flags"] or [])
    if isinstance(pred, p.FlagAbsent):
        return pred.flag not in (row["flags"] or [])
    raise AssertionError(pred)


def _reference(book: pl.DataFrame, past: pl.DataFrame, s: Strategy, as_of: date) -> dict[int, tuple[str, str, str]]:
    last: dict[tuple[int, str], date] = {}
    for loan, step_id, day in past.iter_rows():
        last[(loan, step_id)] = max(day, last.get((loan, step_id), day))
    out = {}
    for row in book.iter_rows(named=True):
        segment = next((seg for seg in s.segments if all(_holds(c, row) for c in seg.when)), None)
        if segment is None:
            continue
        bucket = independent_bucket(s.split.salt, row["borrower_id"])
        arm = next(name for name, upper in s.split.upper_bounds() if bucket < upper)
        ladder = s.ladders[segment.ladder_for(arm)]
        step: Step | None = next((st for st in ladder.steps if all(_holds(c, row) for c in st.when)), None)
        if step is None:
            continue
        if step.kind is StepKind.PRE_DUE_REMINDER:
            paid = not row["next_due_amount"]
        else:
            paid = row["overdue_total"] == 0
        facts_true = {
            StopCondition.PAID: paid,
            StopCondition.HOLD: row["has_outreach_hold"],
            StopCondition.ACTIVE_PROMISE: row["has_active_promise"],
            StopCondition.ACTIVE_PLAN: row["has_active_plan"],
        }
        if any(facts_true[c] for c in step.stop_if):
            continue
        before = last.get((row["loan_key"], step.id))
        every = step.repeat.every_days
        if before is not None and (every is None or (as_of - before).days < every):
            continue
        out[row["loan_key"]] = (segment.id, arm, step.id)
    return out


def _random_book(n: int, seed: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    rnd = random.Random(seed)
    rows = []
    for i in range(n):
        dpd = 0 if rnd.random() < 0.3 else rnd.randint(1, 220)
        rows.append({
            "loan_key": i + 1,
            "borrower_key": i // 2,
            "borrower_id": f"B{i // 2}",
            "currency": rnd.choice(["CNY", "CNY", "JPY"]),
            "days_past_due": dpd,
            "bucket": "current" if dpd == 0 else "M1",
            "overdue_total": 0 if dpd == 0 or rnd.random() < 0.05 else rnd.randint(1, 2_000_000),
            "outstanding_total": rnd.randint(1, 3_000_000),
            "days_to_next_due": rnd.choice([None, 0, 1, 2, 3, 4, 10]),
            "next_due_amount": rnd.choice([None, 0, 150_000]),
            "flags": rnd.choice([[], [], ["elderly"], ["disabled"], ["visit_refused_by_supervisor"], None]),
            "age": rnd.choice([None, 30, 69, 70, 85]),
            "has_outreach_hold": rnd.random() < 0.1,
            "has_active_promise": rnd.random() < 0.1,
            "has_active_plan": rnd.random() < 0.05,
        })
    steps = ["call_1", "second_call", "sms_overdue_1", "app_push_1", "written_notice", "pre_due_sms", "write_off"]
    past = [
        (rnd.randint(1, n), rnd.choice(steps), AS_OF - timedelta(days=rnd.randint(0, 30)))
        for _ in range(n)
    ]
    return facts(*rows), history(*past)


@pytest.mark.parametrize("seed", [1, 2])
def test_the_engine_agrees_with_the_row_by_row_reference_on_the_default_strategy(seed: int) -> None:
    s = load_strategy(ROOT / "strategies" / "default.yaml")
    book, past = _random_book(3_000, seed)
    out = propose(book, past, s, AS_OF)
    engine = {r["loan_key"]: (r["segment"], r["arm"], r["step"]) for r in out.iter_rows(named=True)}
    expected = _reference(book, past, s, AS_OF)
    assert len(expected) > 300, "the random book must exercise the ladder"
    assert engine == expected
    assert {step for _, _, step in expected.values()} >= {"write_off", "call_1", "second_call", "pre_due_sms"}
