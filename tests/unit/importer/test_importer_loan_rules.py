"""Rules for loans.csv and instalments.csv: one test per rule, each asserting the exact RowError."""

from __future__ import annotations

from collections.abc import Callable

from importer_helpers import INSTALMENTS, LOANS, Checker

from duecourse.domain.errors import RowError
from duecourse.services.importer_validation import StoreView

L = "loans.csv"
INST = "instalments.csv"
LOAN = LOANS[0]


def loans(check: Checker, *rows: str) -> list[RowError]:
    """Loans without instalment rows: their schedule would be generated, so only the loan rules apply."""
    return check.errors(loans=list(rows), instalments=None)


def test_loan_accepted_with_exact_minor_units_and_scaled_rates(check: Checker) -> None:
    book = check.book()
    assert book.row_errors() == []
    assert book.files["loans"].accepted.select("principal", "annual_rate", "penalty_rate", "term").row(0) == (
        300000, 18_250_000, 27_380_000, 3)


def test_loan_unknown_borrower(check: Checker) -> None:
    assert loans(check, LOAN.replace(",B1,", ",B9,")) == [
        RowError(L, 1, "borrower_id", "unknown borrower 'B9' (neither in the store nor in this import)")]


def test_loan_unknown_product(check: Checker) -> None:
    assert loans(check, LOAN.replace("CASH03", "NOPE")) == [
        RowError(L, 1, "product", "unknown product 'NOPE' (neither in the store nor in this import)")]


def test_loan_unknown_currency(check: Checker) -> None:
    assert loans(check, LOAN.replace(",CNY,", ",RMB,")) == [
        RowError(L, 1, "currency", "unknown currency 'RMB'; known: CNY, EUR, GBP, HKD, JPY, TWD, USD")]


def test_loan_currency_must_be_the_products(check: Checker) -> None:
    assert loans(check, LOAN.replace(",CNY,", ",USD,")) == [
        RowError(L, 1, "currency", "currency USD differs from product CASH03's currency CNY")]


def test_loan_negative_principal(check: Checker) -> None:
    assert loans(check, LOAN.replace("3000.00", "-3000.00")) == [
        RowError(L, 1, "principal", "must not be negative, got -3000.00")]


def test_loan_principal_finer_than_the_minor_unit(check: Checker) -> None:
    assert loans(check, LOAN.replace("3000.00", "3000.001")) == [
        RowError(L, 1, "principal", "3000.001 has more decimals than CNY allows (2)")]


def test_loan_zero_principal(check: Checker) -> None:
    assert loans(check, LOAN.replace("3000.00", "0.00")) == [RowError(L, 1, "principal", "must be greater than zero")]


def test_loan_principal_not_a_number(check: Checker) -> None:
    assert loans(check, LOAN.replace("3000.00", "3e3")) == [
        RowError(L, 1, "principal", "not an amount '3e3' (digits with an optional decimal point, e.g. 12000.00)")]


def test_loan_rate_given_as_a_percentage(check: Checker) -> None:
    assert loans(check, LOAN.replace("0.1825", "18.25")) == [
        RowError(L, 1, "annual_rate", "18.25 is above 1: rates are yearly fractions (0.1825 means 18.25%)")]


def test_loan_rate_with_more_than_eight_decimals(check: Checker) -> None:
    assert loans(check, LOAN.replace("0.2738", "0.273800001")) == [
        RowError(L, 1, "penalty_rate", "0.273800001 has more than 8 decimals")]


def test_loan_term_range(check: Checker) -> None:
    assert loans(check, LOAN.replace(",3,2025", ",0,2025")) == [
        RowError(L, 1, "term", "must be between 1 and 600, got 0")]


def test_loan_start_date(check: Checker) -> None:
    assert loans(check, LOAN.replace("2025-01-15", "15/01/2025")) == [
        RowError(L, 1, "start_date", "not a date '15/01/2025' (expected YYYY-MM-DD)")]


def test_loan_repayment_method(check: Checker) -> None:
    assert loans(check, LOAN.replace("equal_instalment", "bullet")) == [RowError(
        L, 1, "method", "unknown method 'bullet'; expected one of equal_instalment, equal_principal, interest_only")]


def test_loan_duplicate_id(check: Checker) -> None:
    assert loans(check, LOAN, LOAN) == [RowError(L, 1, "loan_id", "duplicate loan_id in this file (rows 1, 2)"),
                                        RowError(L, 2, "loan_id", "duplicate loan_id in this file (rows 1, 2)")]


def test_loan_in_yen_has_no_decimals(check: Checker) -> None:
    errors = check.errors(products="products:\n  JP: {currency: JPY}\n",
                          loans=["L1,B1,JP,JPY,300000.5,0.1,0.1,3,2025-01-15,equal_instalment"], instalments=None)
    assert errors == [RowError(L, 1, "principal", "300000.5 has more decimals than JPY allows (0)")]


def test_loan_already_imported_is_same(check: Checker, base_store: Callable[..., StoreView]) -> None:
    book = check.on_store(base_store(), loans=[LOAN])
    assert book.row_errors() == []
    assert book.files["loans"].accepted["_status"].to_list() == ["same"]


def test_loan_changed_after_import_is_rejected(check: Checker, base_store: Callable[..., StoreView]) -> None:
    assert check.store_errors(base_store(), loans=[LOAN.replace("3000.00", "3500.00")]) == [RowError(
        L, 1, "principal", "loan L1 already imported with a different principal; loans are not changed by an import"
                           " (payments are corrected by a reversal)")]


# ---------------------------------------------------------------------------------------------- instalments


def test_instalment_unknown_loan(check: Checker) -> None:
    assert check.errors(instalments=[*INSTALMENTS, "L9,1,2025-02-15,1.00,0.00,0.00"]) == [
        RowError(INST, 4, "loan_id", "unknown loan 'L9' (neither in the store nor in this import)")]


def test_instalment_of_a_rejected_loan_names_the_loans_row(check: Checker) -> None:
    errors = check.errors(loans=[LOAN.replace("equal_instalment", "bullet")])
    assert errors[1:] == [RowError(INST, n, "loan_id", "loan 'L1' was rejected (loans.csv row 1)") for n in (1, 2, 3)]


def test_instalment_principals_must_sum_to_the_loan_principal_and_the_loan_falls_with_them(check: Checker) -> None:
    rows = [INSTALMENTS[0], INSTALMENTS[1], INSTALMENTS[2].replace("1017.17", "1017.16")]
    reason = "instalment principals of loan L1 sum to 2999.99, not the loan principal 3000.00"
    assert check.errors(instalments=rows) == [
        RowError(L, 1, "loan_id", "its schedule was rejected (instalments.csv rows 1, 2, 3)"),
        *[RowError(INST, n, "principal", reason) for n in (1, 2, 3)]]


def test_instalments_must_number_one_to_term(check: Checker) -> None:
    reason = "loan L1's schedule must number its instalments 1..3 (its term); found 2 rows up to seq 2"
    short = "instalment principals of loan L1 sum to 1982.83, not the loan principal 3000.00"
    assert check.errors(instalments=INSTALMENTS[:2])[1:] == [
        RowError(INST, 1, "seq", reason), RowError(INST, 1, "principal", short),
        RowError(INST, 2, "seq", reason), RowError(INST, 2, "principal", short)]


def test_instalment_due_dates_must_rise(check: Checker) -> None:
    rows = [INSTALMENTS[0], INSTALMENTS[1].replace("2025-03-15", "2025-02-15"), INSTALMENTS[2]]
    assert check.errors(instalments=rows) == [
        RowError(L, 1, "loan_id", "its schedule was rejected (instalments.csv row 2)"),
        RowError(INST, 1, "loan_id", "the schedule of loan L1 is rejected as a whole: see row 2"),
        RowError(INST, 2, "due_date", "2025-02-15 is not after the previous instalment's due_date 2025-02-15"),
        RowError(INST, 3, "loan_id", "the schedule of loan L1 is rejected as a whole: see row 2")]


def test_instalment_due_after_the_loan_start(check: Checker) -> None:
    rows = [INSTALMENTS[0].replace("2025-02-15", "2025-01-15"), *INSTALMENTS[1:]]
    assert check.errors(instalments=rows)[1] == RowError(
        INST, 1, "due_date", "2025-01-15 is not after the loan's start_date 2025-01-15")


def test_instalment_negative_interest(check: Checker) -> None:
    rows = [INSTALMENTS[0].replace("45.63", "-45.63"), *INSTALMENTS[1:]]
    assert check.errors(instalments=rows)[1] == RowError(INST, 1, "interest", "must not be negative, got -45.63")


def test_instalment_duplicate_seq(check: Checker) -> None:
    errors = check.errors(instalments=[*INSTALMENTS, INSTALMENTS[2]])
    assert [e for e in errors if e.field == "seq"] == [
        RowError(INST, 3, "seq", "duplicate instalment (loan_id, seq) in this file (rows 3, 4)"),
        RowError(INST, 4, "seq", "duplicate instalment (loan_id, seq) in this file (rows 3, 4)")]


def test_instalments_of_a_stored_loan_are_same_when_equal(check: Checker,
                                                          base_store: Callable[..., StoreView]) -> None:
    book = check.on_store(base_store(), instalments=INSTALMENTS)
    assert book.row_errors() == []
    assert book.files["instalments"].accepted["_status"].to_list() == ["same"] * 3


def test_instalment_of_a_stored_loan_cannot_change(check: Checker, base_store: Callable[..., StoreView]) -> None:
    rows = [INSTALMENTS[0].replace("0.00", "5.00"), "L1,4,2025-05-15,1.00,0.00,0.00"]
    assert check.store_errors(base_store(), instalments=rows) == [
        RowError(INST, 1, "seq", "instalment 1 of loan L1 already imported with different values (fee); schedules are"
                              " not changed by an import"),
        RowError(INST, 2, "seq", "loan L1's stored schedule has no instalment 4; schedules are not changed by an"
                              " import")]
