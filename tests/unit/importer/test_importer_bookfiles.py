"""A book file is read whole or refused whole: each unusable-file rule raises BookFormatError naming the file."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl
import pytest
from importer_helpers import HEADERS, write_book

from duecourse.adapters.bookfiles import read_book
from duecourse.domain.errors import BookFormatError


def _refused(directory: Path) -> BookFormatError:
    with pytest.raises(BookFormatError) as exc:
        read_book(directory)
    return exc.value


def test_missing_required_column_names_file_and_column(tmp_path: Path) -> None:
    (tmp_path / "loans.csv").write_text("loan_id,borrower_id\nL1,B1\n", encoding="utf-8")
    err = _refused(tmp_path)
    assert err.path == "loans.csv"
    assert err.reason.startswith("missing required column(s) product, currency, principal")


def test_unknown_column_is_refused_so_a_misspelt_optional_column_is_not_silently_dropped(tmp_path: Path) -> None:
    (tmp_path / "payments.csv").write_text(HEADERS["payments"] + ",bookedat\n", encoding="utf-8")
    err = _refused(tmp_path)
    assert (err.path, err.reason.split(";")[0]) == ("payments.csv", "unknown column(s) bookedat")


def test_text_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    (tmp_path / "borrowers.csv").write_bytes((HEADERS["borrowers"] + "\nB1,张伟,1,,zh-CN,,\n").encode("gbk"))
    err = _refused(tmp_path)
    assert err.path == "borrowers.csv"
    assert err.reason.startswith("not UTF-8 text")


def test_duplicate_header_column_is_refused(tmp_path: Path) -> None:
    (tmp_path / "holds.csv").write_text(HEADERS["holds"] + ",kind\n", encoding="utf-8")
    assert _refused(tmp_path).reason == "column(s) kind appear more than once in the header"


def test_ragged_row_is_refused(tmp_path: Path) -> None:
    (tmp_path / "holds.csv").write_text(HEADERS["holds"] + "\nH1,B1,,dispute,2025-01-01,,true,true,extra\n",
                                        encoding="utf-8")
    err = _refused(tmp_path)
    assert err.path == "holds.csv" and err.reason.startswith("cannot be read as CSV")


def test_empty_csv_is_refused(tmp_path: Path) -> None:
    (tmp_path / "loans.csv").write_text("", encoding="utf-8")
    assert _refused(tmp_path).reason.startswith("empty file")


def test_a_file_that_is_not_parquet_is_refused(tmp_path: Path) -> None:
    (tmp_path / "loans.parquet").write_text("loan_id\nL1\n", encoding="utf-8")
    err = _refused(tmp_path)
    assert err.path == "loans.parquet" and err.reason.startswith("cannot be read as Parquet")


def test_same_table_as_csv_and_parquet_is_ambiguous(tmp_path: Path) -> None:
    (tmp_path / "holds.csv").write_text(HEADERS["holds"] + "\n", encoding="utf-8")
    pl.DataFrame({c: [] for c in HEADERS["holds"].split(",")}, schema={c: pl.String for c in HEADERS["holds"].split(
        ",")}).write_parquet(tmp_path / "holds.parquet")
    assert _refused(tmp_path).reason == "both holds.csv and holds.parquet exist: keep one"


def test_unrecognised_file_name_is_refused(tmp_path: Path) -> None:
    (tmp_path / "loan.csv").write_text("x\n", encoding="utf-8")
    assert _refused(tmp_path).path == "loan.csv"


def test_directory_without_book_files_is_refused(tmp_path: Path) -> None:
    assert _refused(tmp_path).reason.startswith("no book files found")


def test_products_yaml_must_be_a_products_mapping(tmp_path: Path) -> None:
    (tmp_path / "products.yaml").write_text("- CASH03\n", encoding="utf-8")
    err = _refused(tmp_path)
    assert err.path == "products.yaml" and "products" in err.reason


def test_products_yaml_syntax_error_is_refused(tmp_path: Path) -> None:
    (tmp_path / "products.yaml").write_text("products: {CASH03: [\n", encoding="utf-8")
    assert _refused(tmp_path).reason.startswith("not valid UTF-8 YAML")


def test_values_are_trimmed_blank_is_missing_and_bom_is_ignored(tmp_path: Path) -> None:
    text = HEADERS["holds"] + "\n H1 ,B1,  ,dispute,2025-01-01,,true,true\n"
    (tmp_path / "holds.csv").write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    frame = read_book(tmp_path).files["holds"].frame
    assert frame.row(0, named=True) == {"hold_id": "H1", "borrower_id": "B1", "loan_id": None, "kind": "dispute",
                                        "start_date": "2025-01-01", "end_date": None, "pauses_clock": "true",
                                        "pauses_outreach": "true"}


def test_missing_optional_columns_are_present_as_nulls(tmp_path: Path) -> None:
    (tmp_path / "payments.csv").write_text("payment_id,loan_id,value_date,amount\nP1,L1,2025-01-01,1.00\n",
                                           encoding="utf-8")
    frame = read_book(tmp_path).files["payments"].frame
    assert frame.columns == HEADERS["payments"].split(",")
    assert frame["reverses_payment_id"].to_list() == [None]


def test_typed_parquet_columns_read_as_the_text_a_csv_would_carry(tmp_path: Path) -> None:
    pl.DataFrame({
        "payment_id": ["P1"], "loan_id": ["L1"], "value_date": [date(2025, 3, 1)],
        "amount": pl.Series([Decimal("1034.50")], dtype=pl.Decimal(12, 2)),
        "booked_at": pl.Series([datetime(2025, 3, 1, 10, 15, tzinfo=ZoneInfo("Asia/Shanghai"))],
                               dtype=pl.Datetime("us", "Asia/Shanghai")),
    }).write_parquet(tmp_path / "payments.parquet")
    pl.DataFrame({"borrower_id": ["B1"], "name": ["张伟"], "national_id": ["1"], "language": ["zh-CN"],
                  "flags": [["elderly", "disabled"]], "birth_date": [date(1950, 1, 2)]}).write_parquet(
        tmp_path / "borrowers.parquet")
    pl.DataFrame({"hold_id": ["H1"], "borrower_id": ["B1"], "kind": ["legal"], "start_date": ["2025-01-01"],
                  "pauses_clock": [True], "pauses_outreach": [False]}).write_parquet(tmp_path / "holds.parquet")
    book = read_book(tmp_path)
    pay = book.files["payments"].frame.row(0, named=True)
    assert (pay["value_date"], pay["amount"], pay["booked_at"]) == ("2025-03-01", "1034.50",
                                                                     "2025-03-01T10:15:00+08:00")
    bor = book.files["borrowers"].frame.row(0, named=True)
    assert (bor["flags"], bor["birth_date"]) == ("elderly;disabled", "1950-01-02")
    hold = book.files["holds"].frame.row(0, named=True)
    assert (hold["pauses_clock"], hold["pauses_outreach"]) == ("true", "false")


def test_file_digest_is_the_sha256_of_its_bytes(tmp_path: Path) -> None:
    import hashlib

    directory = write_book(tmp_path, {"holds": []})
    assert read_book(directory).files["holds"].sha256 == hashlib.sha256(
        (directory / "holds.csv").read_bytes()).hexdigest()


def test_empty_text_in_parquet_is_missing_too(tmp_path: Path) -> None:
    pl.DataFrame({"hold_id": ["H1", "H2"], "borrower_id": ["B1", "B1"], "loan_id": ["", None], "kind": ["legal"] * 2,
                  "start_date": ["2025-01-01"] * 2, "pauses_clock": ["true"] * 2,
                  "pauses_outreach": ["false"] * 2}).write_parquet(tmp_path / "holds.parquet")
    assert read_book(tmp_path).files["holds"].frame["loan_id"].to_list() == [None, None]
