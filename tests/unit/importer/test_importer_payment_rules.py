"""Rules for payments.csv (reversals included) and holds.csv: one test per rule, each asserting the exact RowError."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime

from importer_helpers import NOW, Checker, stored

from duecourse.domain.errors import RowError
from duecourse.services.importer_validation import StoreView

P = "payments.csv"
H = "holds.csv"
PAY = "P1,L1,2025-02-15,1034.52,,2025-02-15T09:30:00+08:00"
REV = "R1,L1,2025-02-17,1034.52,P1,"


def payments(check: Checker, *rows: str) -> list[RowError]:
    return check.errors(payments=list(rows))


def test_payment_and_its_reversal_are_accepted(check: Checker) -> None:
    book = check.book(payments=[PAY, REV])
    assert book.row_errors() == []
    acc = book.files["payments"].accepted.sort("_row")
    assert acc.select("payment_id", "amount", "reverses_payment_id").rows() == [("P1", 103452, None),
                                                                                ("R1", 103452, "P1")]
    assert acc["booked_at"].to_list() == [datetime(2025, 2, 15, 1, 30, tzinfo=UTC), NOW]


def test_payment_unknown_loan(check: Checker) -> None:
    assert payments(check, PAY.replace(",L1,", ",L9,")) == [
        RowError(P, 1, "loan_id", "unknown loan 'L9' (neither in the store nor in this import)")]


def test_payment_zero_amount(check: Checker) -> None:
    assert payments(check, PAY.replace("1034.52", "0")) == [RowError(P, 1, "amount", "must be greater than zero")]


def test_payment_negative_amount_is_not_a_reversal(check: Checker) -> None:
    assert payments(check, PAY.replace("1034.52", "-1034.52")) == [
        RowError(P, 1, "amount", "must not be negative, got -1034.52")]


def test_payment_value_date_before_the_loan_started(check: Checker) -> None:
    assert payments(check, PAY.replace("2025-02-15,", "2025-01-14,")) == [
        RowError(P, 1, "value_date", "2025-01-14 is before the loan's start_date 2025-01-15")]


def test_payment_booked_at_needs_an_offset(check: Checker) -> None:
    assert payments(check, PAY.replace("+08:00", "")) == [RowError(
        P, 1, "booked_at", "not an instant with a UTC offset '2025-02-15T09:30:00' (e.g. 2025-03-01T10:15:00+08:00)")]


def test_payment_duplicate_id(check: Checker) -> None:
    assert payments(check, PAY, PAY) == [RowError(P, 1, "payment_id", "duplicate payment_id in this file (rows 1, 2)"),
                                         RowError(P, 2, "payment_id", "duplicate payment_id in this file (rows 1, 2)")]


def test_reversal_amount_must_equal_the_reversed_payment(check: Checker) -> None:
    assert payments(check, PAY, REV.replace("1034.52", "1000.00")) == [
        RowError(P, 2, "amount", "1000.00 differs from the reversed payment P1's amount 1034.52")]


def test_reversal_of_an_unknown_payment(check: Checker) -> None:
    assert payments(check, REV) == [
        RowError(P, 1, "reverses_payment_id", "unknown payment 'P1' (neither in the store nor in this import)")]


def test_reversal_of_a_rejected_payment_names_its_row(check: Checker) -> None:
    assert payments(check, PAY.replace("2025-02-15,", "2025-02-30,"), REV) == [
        RowError(P, 1, "value_date", "not a date '2025-02-30' (expected YYYY-MM-DD)"),
        RowError(P, 2, "reverses_payment_id", "payment 'P1' was rejected (payments.csv row 1)")]


def test_reversal_must_be_on_the_same_loan(check: Checker) -> None:
    errors = check.errors(loans=["L1,B1,CASH03,CNY,3000.00,0.1825,0.2738,3,2025-01-15,equal_instalment",
                                 "L2,B2,CASH03,CNY,3000.00,0.1825,0.2738,3,2025-01-15,equal_instalment"],
                          instalments=None, payments=[PAY, REV.replace(",L1,", ",L2,")])
    assert errors == [RowError(P, 2, "loan_id", "reverses payment P1 of loan L1: a reversal must be on the same loan")]


def test_reversal_cannot_take_value_before_the_payment(check: Checker) -> None:
    assert payments(check, PAY, REV.replace("2025-02-17", "2025-02-14")) == [
        RowError(P, 2, "value_date", "2025-02-14 is before the reversed payment P1's value_date 2025-02-15")]


def test_payment_cannot_reverse_itself(check: Checker) -> None:
    assert payments(check, "P1,L1,2025-02-15,10.00,P1,") == [
        RowError(P, 1, "reverses_payment_id", "a payment cannot reverse itself")]


def test_a_reversal_cannot_be_reversed(check: Checker) -> None:
    assert payments(check, PAY, REV, "R2,L1,2025-02-18,1034.52,R1,") == [RowError(
        P, 3, "reverses_payment_id",
        "payment R1 is itself a reversal: book a new payment instead of reversing a reversal")]


def test_payment_reversed_twice_in_one_file_keeps_the_first_reversal(check: Checker) -> None:
    assert payments(check, PAY, REV, "R2,L1,2025-02-18,1034.52,P1,") == [
        RowError(P, 3, "reverses_payment_id", "payment P1 is already reversed by R1 (row 2)")]


def _stored_payments(base_store: Callable[..., StoreView]) -> StoreView:
    return base_store(payments=stored("payments", [
        {"payment_id": "P1", "loan_id": "L1", "value_date": date(2025, 2, 15), "amount": 103452,
         "reverses_payment_id": None, "booked_at": datetime(2025, 2, 15, 1, 30, tzinfo=UTC)},
        {"payment_id": "R1", "loan_id": "L1", "value_date": date(2025, 2, 17), "amount": 103452,
         "reverses_payment_id": "P1", "booked_at": datetime(2025, 2, 17, 1, 30, tzinfo=UTC)}]))


def test_payment_reversed_twice_across_imports(check: Checker, base_store: Callable[..., StoreView]) -> None:
    assert check.store_errors(_stored_payments(base_store), payments=["R2,L1,2025-02-18,1034.52,P1,"]) == [
        RowError(P, 1, "reverses_payment_id", "payment P1 is already reversed by R1")]


def test_reimported_payments_are_same_even_without_booked_at(check: Checker,
                                                             base_store: Callable[..., StoreView]) -> None:
    book = check.on_store(_stored_payments(base_store), payments=[PAY, REV])
    assert book.row_errors() == []
    assert book.files["payments"].accepted["_status"].to_list() == ["same", "same"]


def test_payment_changed_after_import_is_rejected(check: Checker, base_store: Callable[..., StoreView]) -> None:
    errors = check.store_errors(_stored_payments(base_store), payments=[PAY.replace("1034.52", "1043.52")])
    assert errors == [RowError(P, 1, "amount", "payment P1 already imported with a different amount; payments are"
                                               " corrected by a reversal")]


# ---------------------------------------------------------------------------------------------- holds

HOLD = "H1,B1,L1,dispute,2025-05-01,,true,true"


def holds(check: Checker, *rows: str) -> list[RowError]:
    return check.errors(holds=list(rows))


def test_hold_on_every_loan_of_a_borrower(check: Checker) -> None:
    book = check.book(holds=["H1,B1,,deceased,2025-05-01,,false,true"])
    assert book.row_errors() == []
    assert book.files["holds"].accepted.select("loan_id", "pauses_clock", "pauses_outreach").row(0) == (
        None, False, True)


def test_hold_unknown_borrower(check: Checker) -> None:
    assert holds(check, HOLD.replace(",B1,", ",B9,")) == [
        RowError(H, 1, "borrower_id", "unknown borrower 'B9' (neither in the store nor in this import)"),
        RowError(H, 1, "loan_id", "loan L1 belongs to borrower B1, not B9")]


def test_hold_unknown_loan(check: Checker) -> None:
    assert holds(check, HOLD.replace(",L1,", ",L9,")) == [
        RowError(H, 1, "loan_id", "unknown loan 'L9' (neither in the store nor in this import)")]


def test_hold_loan_of_another_borrower(check: Checker) -> None:
    assert holds(check, HOLD.replace(",B1,", ",B2,")) == [
        RowError(H, 1, "loan_id", "loan L1 belongs to borrower B1, not B2")]


def test_hold_kind(check: Checker) -> None:
    assert holds(check, HOLD.replace("dispute", "vacation")) == [
        RowError(H, 1, "kind", "unknown kind 'vacation'; expected one of dispute, hardship, legal, deceased")]


def test_hold_ends_before_it_starts(check: Checker) -> None:
    assert holds(check, HOLD.replace("2025-05-01,,", "2025-05-01,2025-04-30,")) == [
        RowError(H, 1, "end_date", "2025-04-30 is before start_date 2025-05-01")]


def test_hold_pause_flags_are_required(check: Checker) -> None:
    assert holds(check, HOLD.replace("true,true", "true,")) == [RowError(H, 1, "pauses_outreach", "required")]


def _stored_hold(base_store: Callable[..., StoreView]) -> StoreView:
    return base_store(holds=stored("holds", [
        {"hold_id": "H1", "borrower_id": "B1", "loan_id": "L1", "kind": "dispute", "start_date": date(2025, 5, 1),
         "end_date": None, "pauses_clock": True, "pauses_outreach": True}]))


def test_hold_ended_by_a_later_import_is_an_update(check: Checker, base_store: Callable[..., StoreView]) -> None:
    book = check.on_store(_stored_hold(base_store), holds=[HOLD.replace("2025-05-01,,", "2025-05-01,2025-06-30,")])
    assert book.row_errors() == []
    assert book.files["holds"].accepted.select("_status", "_changed", "hold_key").row(0) == ("changed", "end_date", 1)


def test_hold_cannot_move_to_another_loan(check: Checker, base_store: Callable[..., StoreView]) -> None:
    assert check.store_errors(_stored_hold(base_store), holds=[HOLD.replace(",L1,", ",,")]) == [
        RowError(H, 1, "loan_id", "hold H1 is stored with a different loan_id: a hold cannot move to another borrower"
                                  " or loan; end it and add a new hold instead")]
