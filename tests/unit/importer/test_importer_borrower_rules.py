"""Rules for products.yaml and borrowers: one test per rule, each asserting the exact RowError."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from importer_helpers import BORROWERS, Checker

from duecourse.domain.errors import RowError
from duecourse.services.importer_validation import StoreView

B = "borrowers.csv"


def test_the_base_book_is_valid(check: Checker) -> None:
    assert check.errors() == []


# ---------------------------------------------------------------------------------------------- products


def test_product_unknown_currency(check: Checker) -> None:
    errors = check.errors(products="products:\n  P1: {currency: RMB}\n", borrowers=None, loans=None, instalments=None)
    assert errors == [RowError("products.yaml", 1, "currency",
                               "unknown currency 'RMB'; known: CNY, EUR, GBP, HKD, JPY, TWD, USD")]


def test_product_invalid_convention_names_the_key(check: Checker) -> None:
    errors = check.errors(products="products:\n  P1: {currency: CNY, conventions: {grace_days: -1}}\n",
                          borrowers=None, loans=None, instalments=None)
    assert errors == [RowError("products.yaml", 1, "conventions.grace_days", "must not be negative")]


def test_product_unknown_key(check: Checker) -> None:
    errors = check.errors(products="products:\n  P1: {currency: CNY, rate: 0.2}\n", borrowers=None, loans=None,
                          instalments=None)
    assert errors == [RowError("products.yaml", 1, "rate", "unknown key; expected currency, description, conventions")]


def test_product_conventions_cannot_change_once_stored(check: Checker,
                                                       base_store: Callable[..., StoreView]) -> None:
    errors = check.store_errors(base_store(), products="products:\n  CASH03:\n    currency: CNY\n"
                                "    description: 现金分期 3 期\n    conventions: {day_count: actual/365}\n")
    assert errors == [RowError("products.yaml", 1, "conventions",
                               "product CASH03 already exists with a different conventions: that would rewrite the"
                               " ledger of its loans; give the changed product a new code")]


def test_product_description_may_change(check: Checker, base_store: Callable[..., StoreView]) -> None:
    book = check.on_store(base_store(), products="products:\n  CASH03:\n    currency: CNY\n"
                          "    description: renamed\n    conventions: {day_count: per_period}\n")
    assert book.row_errors() == []
    assert book.files["products"].accepted.select("_status", "_changed").row(0) == ("changed", "description")


def test_loan_of_a_rejected_product_is_rejected_with_the_products_row(check: Checker) -> None:
    errors = check.errors(products="products:\n  CASH03: {currency: CNY, conventions: {day_count: weekly}}\n",
                          instalments=None)
    assert [e for e in errors if e.file == "loans.csv"] == [
        RowError("loans.csv", 1, "product", "product 'CASH03' was rejected (products.yaml row 1)")]


# ---------------------------------------------------------------------------------------------- borrowers


def test_borrower_id_required(check: Checker) -> None:
    assert check.errors(False, borrowers=[",张伟,1,,zh-CN,,"]) == [RowError(B, 1, "borrower_id", "required")]


def test_borrower_id_format(check: Checker) -> None:
    assert check.errors(False, borrowers=["B 1,张伟,1,,zh-CN,,"]) == [RowError(
        B, 1, "borrower_id",
        "not a valid id (1-64 letters, digits, '.', '_', '/' or '-', starting with a letter or digit)")]


def test_borrower_duplicate_ids_reject_every_copy(check: Checker) -> None:
    errors = check.errors(False, borrowers=[*BORROWERS, "B2,王芳,1,,zh-CN,,"], loans=None, instalments=None)
    assert errors == [RowError(B, 2, "borrower_id", "duplicate borrower_id in this file (rows 2, 3)"),
                      RowError(B, 3, "borrower_id", "duplicate borrower_id in this file (rows 2, 3)")]


def test_borrower_name_required(check: Checker) -> None:
    assert check.errors(False, borrowers=["B1,,1,,zh-CN,,"]) == [RowError(B, 1, "name", "required")]


def test_borrower_national_id_required(check: Checker) -> None:
    assert check.errors(False, borrowers=["B1,张伟,,,zh-CN,,"]) == [RowError(B, 1, "national_id", "required")]


def test_borrower_birth_date_format(check: Checker) -> None:
    assert check.errors(False, borrowers=["B1,张伟,1,1985-3-12,zh-CN,,"]) == [
        RowError(B, 1, "birth_date", "not a date '1985-3-12' (expected YYYY-MM-DD)")]


def test_borrower_birth_date_must_exist_in_the_calendar(check: Checker) -> None:
    assert check.errors(False, borrowers=["B1,张伟,1,1985-02-29,zh-CN,,"]) == [
        RowError(B, 1, "birth_date", "not a date '1985-02-29' (expected YYYY-MM-DD)")]


def test_borrower_birth_date_not_in_the_future(check: Checker) -> None:
    assert check.errors(False, borrowers=["B1,张伟,1,2025-11-21,zh-CN,,"]) == [
        RowError(B, 1, "birth_date", "2025-11-21 is in the future")]


def test_borrower_language_tag(check: Checker) -> None:
    assert check.errors(False, borrowers=["B1,张伟,1,,Chinese,,"]) == [
        RowError(B, 1, "language", "not a language tag 'Chinese' (e.g. zh-CN, en)")]


def test_borrower_unknown_flag(check: Checker) -> None:
    assert check.errors(False, borrowers=["B1,张伟,1,,zh-CN,elderly;vip,"]) == [RowError(
        B, 1, "flags",
        "unknown flag(s) vip; known: elderly, disabled, deceased, vulnerable, bankrupt, attorney, military")]


def test_borrower_flags_are_normalised_sorted_and_unique(check: Checker) -> None:
    book = check.book(False, borrowers=["B1,张伟,1,,zh-CN, Disabled ;elderly;disabled,"])
    assert book.files["borrowers"].accepted["flags"].to_list() == ["disabled,elderly"]


def test_borrower_region_code(check: Checker) -> None:
    assert check.errors(False, borrowers=["B1,张伟,1,,zh-CN,,Beijing"]) == [
        RowError(B, 1, "region", "not a region 'Beijing' (ISO 3166: CN, CN-31, US-CA, GB-ENG)")]


def test_a_row_with_several_problems_lists_each(check: Checker) -> None:
    assert check.errors(False, borrowers=["B1,,1,19850312,zh-CN,vip,"]) == [
        RowError(B, 1, "name", "required"),
        RowError(B, 1, "birth_date", "not a date '19850312' (expected YYYY-MM-DD)"),
        RowError(B, 1, "flags", "unknown flag(s) vip; known: elderly, disabled, deceased, vulnerable, bankrupt,"
                                " attorney, military"),
    ]


def test_borrower_personal_data_is_never_repeated_in_a_reason(check: Checker) -> None:
    name = "张" * 201
    errors = check.errors(False, borrowers=[f"B1,{name},{'9' * 65},,zh-CN,,"])
    assert errors == [RowError(B, 1, "name", "longer than 200 characters"),
                      RowError(B, 1, "national_id", "longer than 64 characters")]


def test_borrower_unchanged_is_same_and_changed_is_an_update(check: Checker,
                                                             base_store: Callable[..., StoreView]) -> None:
    book = check.on_store(base_store(), borrowers=[BORROWERS[0], ("B2,王芳,310104199007230429,1990-07-23,zh-CN,"
                                                                 "elderly;disabled,CN-SH")])
    assert book.row_errors() == []
    acc = book.files["borrowers"].accepted.sort("_row")
    assert acc.select("borrower_id", "_status", "_changed", "borrower_key").rows() == [
        ("B1", "same", "", 1), ("B2", "changed", "flags", 2)]
    assert acc["birth_date"].to_list() == [date(1985, 3, 12), date(1990, 7, 23)]
