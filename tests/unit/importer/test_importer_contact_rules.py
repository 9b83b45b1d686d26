"""Rules for contact_points.csv: one test per rule, each asserting the exact RowError."""

from __future__ import annotations

from collections.abc import Callable

from importer_helpers import BORROWERS, Checker, stored

from duecourse.domain.errors import RowError
from duecourse.services.importer_validation import StoreView

C = "contact_points.csv"
OK = "C1,B1,phone,borrower,+8613800138001,,,Asia/Shanghai,true,true"


def contacts(check: Checker, *rows: str) -> list[RowError]:
    return check.errors(False, borrowers=BORROWERS, contact_points=list(rows))


def test_valid_contact_points_of_every_owner_are_accepted(check: Checker) -> None:
    rows = [f"C{i},B1,phone,{owner},+86138001380{i:02d},,,Asia/Shanghai,true,false"
            for i, owner in enumerate(["borrower", "spouse", "family", "emergency", "employer", "guarantor"])]
    assert contacts(check, *rows) == []


def test_contact_unknown_borrower(check: Checker) -> None:
    assert contacts(check, OK.replace("B1", "B9")) == [
        RowError(C, 1, "borrower_id", "unknown borrower 'B9' (neither in the store nor in this import)")]


def test_contact_of_a_rejected_borrower_names_the_borrowers_row(check: Checker) -> None:
    errors = check.errors(False, borrowers=["B1,张伟,1,1985-13-01,zh-CN,,"], contact_points=[OK])
    assert errors[-1] == RowError(C, 1, "borrower_id", "borrower 'B1' was rejected (borrowers.csv row 1)")


def test_contact_of_a_stored_borrower_needs_no_borrowers_file(check: Checker,
                                                              base_store: Callable[..., StoreView]) -> None:
    assert check.store_errors(base_store(), contact_points=[OK]) == []


def test_contact_kind(check: Checker) -> None:
    assert contacts(check, OK.replace(",phone,", ",wechat,")) == [
        RowError(C, 1, "kind", "unknown kind 'wechat'; expected one of phone, email, address, app")]


def test_contact_owner(check: Checker) -> None:
    assert contacts(check, OK.replace(",borrower,", ",friend,")) == [RowError(
        C, 1, "owner",
        "unknown owner 'friend'; expected one of borrower, spouse, family, emergency, employer, guarantor")]


def test_contact_phone_number_format_without_echoing_it(check: Checker) -> None:
    assert contacts(check, OK.replace("+8613800138001", "138-abc")) == [
        RowError(C, 1, "value", "not a phone number (6-15 digits, optionally starting with +, e.g. +8613800138000)")]


def test_contact_phone_separators_are_removed(check: Checker) -> None:
    book = check.book(False, borrowers=BORROWERS, contact_points=[OK.replace("+8613800138001", "+86 (755) 2688-0000")])
    assert book.files["contact_points"].accepted["value"].to_list() == ["+8675526880000"]


def test_contact_email_format(check: Checker) -> None:
    assert contacts(check, "C1,B1,email,borrower,zhang.example.cn,,,Asia/Shanghai,true,true") == [
        RowError(C, 1, "value", "not an e-mail address")]


def test_contact_value_required(check: Checker) -> None:
    assert contacts(check, "C1,B1,app,borrower,,,,Asia/Shanghai,true,true") == [RowError(C, 1, "value", "required")]


def test_contact_latitude_range(check: Checker) -> None:
    assert contacts(check, "C1,B1,address,borrower,北京市,139.9,116.4,Asia/Shanghai,true,true") == [
        RowError(C, 1, "latitude", "not a latitude between -90 and 90: '139.9'")]


def test_contact_coordinates_come_in_pairs(check: Checker) -> None:
    assert contacts(check, "C1,B1,address,borrower,北京市,39.9,,Asia/Shanghai,true,true") == [
        RowError(C, 1, "longitude", "required when latitude is given")]


def test_contact_unknown_time_zone(check: Checker) -> None:
    assert contacts(check, OK.replace("Asia/Shanghai", "Asia/Beijing")) == [
        RowError(C, 1, "time_zone", "unknown time zone 'Asia/Beijing' (an IANA name such as Asia/Shanghai)")]


def test_contact_booleans(check: Checker) -> None:
    assert contacts(check, OK.replace("true,true", "yes,")) == [
        RowError(C, 1, "valid", "not true or false: 'yes'"), RowError(C, 1, "consent", "required")]


def test_contact_duplicate_id(check: Checker) -> None:
    assert contacts(check, OK, OK.replace("+8613800138001", "+8613800138002")) == [
        RowError(C, 1, "contact_id", "duplicate contact_id in this file (rows 1, 2)"),
        RowError(C, 2, "contact_id", "duplicate contact_id in this file (rows 1, 2)")]


def _stored_contact(base_store: Callable[..., StoreView]) -> StoreView:
    return base_store(contact_points=stored("contact_points", [
        {"contact_id": "C1", "borrower_id": "B1", "kind": "phone", "owner": "borrower", "value": "+8613800138001",
         "latitude": None, "longitude": None, "time_zone": "Asia/Shanghai", "valid": True, "consent": True}]))


def test_contact_update_of_validity_is_accepted(check: Checker, base_store: Callable[..., StoreView]) -> None:
    book = check.on_store(_stored_contact(base_store), contact_points=[OK.replace("true,true", "false,true")])
    assert book.row_errors() == []
    assert book.files["contact_points"].accepted.select("_status", "_changed").row(0) == ("changed", "valid")


def test_contact_cannot_move_to_another_borrower(check: Checker, base_store: Callable[..., StoreView]) -> None:
    errors = check.store_errors(_stored_contact(base_store), contact_points=[OK.replace(",B1,", ",B2,")])
    assert errors == [RowError(C, 1, "borrower_id", "contact C1 is stored with a different borrower_id: a contact"
                                                    " point cannot move to another borrower; add a new contact point"
                                                    " instead")]
