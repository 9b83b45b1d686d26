"""Importing a book into a real store: good rows in, bad rows reported, idempotent, atomic, personal data encrypted.

`engine` (tests/conftest.py) runs each test on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import json
import shutil
import stat
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest
from sqlalchemy import Engine, func, select, text

from duecourse.adapters.crypto import FieldCipher
from duecourse.adapters.db import migrate
from duecourse.adapters.db import tables as t
from duecourse.adapters.db.engine import make_engine
from duecourse.audit import log as audit_log
from duecourse.domain.errors import BookFormatError, RowError
from duecourse.services.importer import ImportReport, import_book

HERE = Path(__file__).parent
BROKEN = HERE / "books" / "broken"
EXAMPLE = HERE.parents[1] / "examples" / "book"
NOW = datetime(2025, 11, 20, 9, 0, tzinfo=UTC)
TABLES = ("product", "borrower", "contact_point", "loan", "instalment", "payment", "hold", "import_run",
          "rejected_row", "audit_entry")

# Every bad row of the broken book, with the reason a user reads to fix it.
BROKEN_ERRORS = [
    RowError("products.yaml", 2, "currency", "unknown currency 'RMB'; known: CNY, EUR, GBP, HKD, JPY, TWD, USD"),
    RowError("borrowers.csv", 3, "birth_date", "not a date '1985-13-01' (expected YYYY-MM-DD)"),
    RowError("borrowers.csv", 4, "borrower_id", "required"),
    RowError("borrowers.csv", 5, "flags", "unknown flag(s) vip; known: elderly, disabled, deceased, vulnerable,"
                                          " bankrupt, attorney, military"),
    RowError("borrowers.csv", 6, "borrower_id", "duplicate borrower_id in this file (rows 6, 7)"),
    RowError("borrowers.csv", 7, "borrower_id", "duplicate borrower_id in this file (rows 6, 7)"),
    RowError("contact_points.csv", 2, "value",
             "not a phone number (6-15 digits, optionally starting with +, e.g. +8613800138000)"),
    RowError("contact_points.csv", 3, "time_zone",
             "unknown time zone 'Asia/Beijing' (an IANA name such as Asia/Shanghai)"),
    RowError("contact_points.csv", 4, "borrower_id", "borrower 'B0003' was rejected (borrowers.csv row 3)"),
    RowError("contact_points.csv", 5, "borrower_id", "unknown borrower 'B0009' (neither in the store nor in this"
                                                     " import)"),
    RowError("contact_points.csv", 6, "owner", "unknown owner 'friend'; expected one of borrower, spouse, family,"
                                               " emergency, employer, guarantor"),
    RowError("loans.csv", 2, "loan_id", "its schedule was rejected (instalments.csv rows 4, 5, 6)"),
    RowError("loans.csv", 3, "product", "unknown product 'NOPE' (neither in the store nor in this import)"),
    RowError("loans.csv", 4, "principal", "must not be negative, got -500.00"),
    RowError("loans.csv", 5, "currency", "currency USD differs from product CASH03's currency CNY"),
    RowError("loans.csv", 6, "principal", "1000.005 has more decimals than CNY allows (2)"),
    RowError("loans.csv", 7, "annual_rate", "18.25 is above 1: rates are yearly fractions (0.1825 means 18.25%)"),
    *[RowError("instalments.csv", n, "principal", "instalment principals of loan L0002 sum to 5999.99, not the loan"
                                                  " principal 6000.00") for n in (4, 5, 6)],
    RowError("instalments.csv", 7, "loan_id", "unknown loan 'L0099' (neither in the store nor in this import)"),
    RowError("payments.csv", 3, "amount", "1000.00 differs from the reversed payment P0001's amount 1034.52"),
    RowError("payments.csv", 5, "reverses_payment_id", "payment P0002 is already reversed by P0004 (row 4)"),
    RowError("payments.csv", 6, "loan_id", "loan 'L0002' was rejected (loans.csv row 2)"),
    RowError("payments.csv", 7, "amount", "must be greater than zero"),
    RowError("payments.csv", 8, "booked_at", "not an instant with a UTC offset '2025-04-15 10:00' (e.g."
                                             " 2025-03-01T10:15:00+08:00)"),
    RowError("holds.csv", 2, "loan_id", "loan L0001 belongs to borrower B0001, not B0002"),
    RowError("holds.csv", 3, "end_date", "2025-04-01 is before start_date 2025-05-01"),
    RowError("holds.csv", 4, "kind", "unknown kind 'vacation'; expected one of dispute, hardship, legal, deceased"),
]


@pytest.fixture
def cipher(tmp_path: Path) -> FieldCipher:
    return FieldCipher.from_key_file(tmp_path / "data.key")


def run(engine: Engine, book: Path, tmp_path: Path, cipher: FieldCipher, now: datetime = NOW) -> ImportReport:
    return import_book(engine, book, tmp_path / "rejects", cipher, "user:tester", now)


def counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {name: int(conn.execute(select(func.count()).select_from(t.metadata.tables[name])).scalar_one())
                for name in TABLES}


def ids(engine: Engine, table: str, column: str) -> list[str]:
    with engine.connect() as conn:
        return sorted(conn.execute(text(f"SELECT {column} FROM {table}")).scalars())


def test_broken_book_imports_the_good_rows_and_reports_every_bad_one(engine: Engine, tmp_path: Path,
                                                                     cipher: FieldCipher) -> None:
    report = run(engine, BROKEN, tmp_path, cipher)

    assert report.errors == BROKEN_ERRORS
    assert report.exit_status == 1
    assert [(f.file, f.accepted, f.rejected) for f in report.files] == [
        ("products.yaml", 1, 1), ("borrowers.csv", 2, 5), ("contact_points.csv", 2, 5), ("loans.csv", 1, 6),
        ("instalments.csv", 3, 4), ("payments.csv", 3, 5), ("holds.csv", 1, 3)]
    assert ids(engine, "product", "code") == ["CASH03"]
    assert ids(engine, "borrower", "borrower_id") == ["B0001", "B0002"]
    assert ids(engine, "contact_point", "contact_id") == ["C0001", "C0007"]
    assert ids(engine, "loan", "loan_id") == ["L0001"]
    assert ids(engine, "payment", "payment_id") == ["P0001", "P0002", "P0004"]
    assert ids(engine, "hold", "hold_id") == ["H0001"]
    with engine.connect() as conn:
        schedule = conn.execute(select(t.instalment.c.seq, t.instalment.c.principal).order_by("seq")).all()
        reversal = conn.execute(text("SELECT r.payment_id, p.payment_id, r.amount FROM payment r JOIN payment p"
                                     " ON r.reverses_payment_key = p.payment_key")).all()
        stored = conn.execute(select(t.rejected_row.c.file, t.rejected_row.c.row, t.rejected_row.c.field,
                                     t.rejected_row.c.reason, t.rejected_row.c.raw).order_by("rejected_key")).all()
    assert [tuple(r) for r in schedule] == [(1, 98889), (2, 99394), (3, 101717)]
    assert [tuple(r) for r in reversal] == [("P0004", "P0002", 102452)]

    # The user sees each rejected row, as read, in the store and in the rejects file.
    assert [RowError(*r[:4]) for r in stored] == BROKEN_ERRORS
    assert stored[12][4]["product"] == "NOPE"
    assert report.rejects_path is not None and report.rejects_path.parent == tmp_path / "rejects"
    assert stat.S_IMODE(report.rejects_path.stat().st_mode) == 0o600  # it holds personal data in clear
    rejects = pl.read_csv(report.rejects_path, infer_schema=False)
    assert rejects.columns[:4] == ["file", "row", "field", "reason"]
    assert [RowError(f, int(r), fi, why) for f, r, fi, why in rejects.select("file", "row", "field", "reason").rows()
            ] == BROKEN_ERRORS
    row = rejects.filter((pl.col("file") == "loans.csv") & (pl.col("row") == "6")).row(0, named=True)
    assert (row["loan_id"], row["principal"], row["currency"]) == ("L0006", "1000.005", "CNY")


def test_one_audit_entry_per_file_with_counts_and_digest(engine: Engine, tmp_path: Path, cipher: FieldCipher) -> None:
    import hashlib

    report = run(engine, BROKEN, tmp_path, cipher)
    with engine.connect() as conn:
        entries = list(audit_log.entries(conn))
        assert audit_log.verify(conn) == (7, None)
    assert [(e["action"], e["entity_id"]) for e in entries] == [
        ("import.rejected", f"{report.import_key}:{name}") for name in
        ("products.yaml", "borrowers.csv", "contact_points.csv", "loans.csv", "instalments.csv", "payments.csv",
         "holds.csv")]
    loans = json.loads(entries[3]["payload"])
    assert loans == {"file": "loans.csv", "sha256": hashlib.sha256((BROKEN / "loans.csv").read_bytes()).hexdigest(),
                     "rows": 7, "accepted": 1, "rejected": 6, "inserted": 1, "updated": 0, "unchanged": 0,
                     "import_key": report.import_key}
    assert entries[3]["actor"] == "user:tester" and entries[3]["origin"] == "import"


def test_a_second_import_of_the_same_book_adds_nothing(engine: Engine, tmp_path: Path, cipher: FieldCipher) -> None:
    run(engine, BROKEN, tmp_path, cipher)
    before = counts(engine)
    again = run(engine, BROKEN, tmp_path, cipher, NOW.replace(hour=10))
    after = counts(engine)

    assert all(f.inserted == 0 and f.updated == 0 for f in again.files)
    assert [f.unchanged for f in again.files] == [1, 2, 2, 1, 3, 3, 1]
    assert {k: after[k] - before[k] for k in TABLES} == {
        **dict.fromkeys(TABLES, 0), "import_run": 1, "rejected_row": len(BROKEN_ERRORS), "audit_entry": 7}
    # The one rejection that changes: the second reversal of P0002 now meets the stored one.
    assert RowError("payments.csv", 5, "reverses_payment_id", "payment P0002 is already reversed by P0004") in (
        again.errors)


@pytest.mark.parametrize("damage", ["not utf-8", "missing column", "products yaml"])
def test_a_file_that_cannot_be_read_changes_nothing(engine: Engine, tmp_path: Path, cipher: FieldCipher,
                                                    damage: str) -> None:
    book = tmp_path / "book"
    shutil.copytree(BROKEN, book)
    if damage == "not utf-8":
        (book / "holds.csv").write_bytes((book / "holds.csv").read_text(encoding="utf-8").replace(
            "H0001", "H0001\u5f20").encode("gb18030"))
    elif damage == "missing column":
        (book / "payments.csv").write_text("payment_id,loan_id,amount\nP1,L0001,1.00\n", encoding="utf-8")
    else:
        (book / "products.yaml").write_text("products:\n  - CASH03\n", encoding="utf-8")
    before = counts(engine)
    with pytest.raises(BookFormatError) as exc:
        run(engine, book, tmp_path, cipher)
    assert exc.value.path == {"not utf-8": "holds.csv", "missing column": "payments.csv",
                              "products yaml": "products.yaml"}[damage]
    assert counts(engine) == before == dict.fromkeys(TABLES, 0)
    assert not (tmp_path / "rejects").exists()


def test_personal_data_is_not_stored_in_clear(tmp_path: Path, cipher: FieldCipher) -> None:
    db = tmp_path / "pii.db"
    eng = make_engine(f"sqlite:///{db}")
    migrate.upgrade(eng)
    run(eng, BROKEN, tmp_path, cipher)  # its rejected rows carry personal data too
    eng.dispose()  # checkpoint the WAL into the file
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("pii.db*"))
    secrets = []
    for name in ("borrowers", "contact_points"):
        frame = pl.read_csv(BROKEN / f"{name}.csv", infer_schema=False)
        for column in ("name", "national_id", "value"):
            if column in frame.columns:
                secrets += frame[column].drop_nulls().to_list()
    assert len(secrets) == 7 + 7 + 7
    leaked = [s for s in secrets if s.encode("utf-8") in raw or s.replace(" ", "").encode("utf-8") in raw]
    assert leaked == []
    assert b"B0001" in raw and b"Asia/Shanghai" in raw  # the test would see clear text if it were there


def test_changed_borrower_contact_and_hold_are_updated_and_audited(engine: Engine, tmp_path: Path,
                                                                  cipher: FieldCipher) -> None:
    run(engine, BROKEN, tmp_path, cipher)
    book = tmp_path / "book"
    shutil.copytree(BROKEN, book)
    for name, old, new in (("borrowers.csv", "B0002,王芳", "B0002,王芳芳"),
                           ("contact_points.csv", "+8613800138001,,,Asia/Shanghai,true", "+8613800138001,,,"
                                                                                         "Asia/Shanghai,false"),
                           ("holds.csv", "2025-05-01,,true,true", "2025-05-01,2025-06-30,true,true")):
        path = book / name
        path.write_text(path.read_text(encoding="utf-8").replace(old, new, 1), encoding="utf-8")
    report = run(engine, book, tmp_path, cipher, NOW.replace(hour=10))

    assert report.updated_ids == {"borrowers": ["B0002"], "contact_points": ["C0001"], "holds": ["H0001"]}
    with engine.connect() as conn:
        name = conn.execute(select(t.borrower.c.name_enc).where(t.borrower.c.borrower_id == "B0002")).scalar_one()
        valid = conn.execute(select(t.contact_point.c.valid).where(t.contact_point.c.contact_id == "C0001")
                             ).scalar_one()
        end = conn.execute(select(t.hold.c.end_date).where(t.hold.c.hold_id == "H0001")).scalar_one()
        updates = [(e["action"], e["entity_id"], json.loads(e["payload"])["fields"]) for e in audit_log.entries(conn)
                   if e["action"].endswith(".updated")]
    assert cipher.decrypt(name, "borrower.name_enc") == "王芳芳"
    assert (valid, str(end)) == (False, "2025-06-30")
    assert updates == [("borrower.updated", "B0002", ["name"]), ("contact_point.updated", "C0001", ["valid"]),
                       ("hold.updated", "H0001", ["end_date"])]


def test_changed_loan_is_rejected_and_the_store_keeps_the_first_version(engine: Engine, tmp_path: Path,
                                                                       cipher: FieldCipher) -> None:
    run(engine, BROKEN, tmp_path, cipher)
    book = tmp_path / "book"
    book.mkdir()
    (book / "loans.csv").write_text((BROKEN / "loans.csv").read_text(encoding="utf-8").splitlines()[0] + "\n"
                                    "L0001,B0001,CASH03,CNY,3000.00,0.1925,0.2738,3,2025-01-15,equal_instalment\n",
                                    encoding="utf-8")
    report = run(engine, book, tmp_path, cipher, NOW.replace(hour=10))
    assert report.errors == [RowError("loans.csv", 1, "annual_rate", "loan L0001 already imported with a different"
                                      " annual_rate; loans are not changed by an import (payments are corrected by a"
                                      " reversal)")]
    with engine.connect() as conn:
        assert conn.execute(select(t.loan.c.annual_rate)).scalar_one() == 18_250_000


def _to_parquet(source: Path, target: Path) -> None:
    """The same book with real Parquet types (dates, exact decimals, booleans, integers, instants, lists).

    A column keeps its text only where some value has no typed form ("-500.00" as a decimal does, "2025-13-01" as
    a date does not): the bad value must reach validation as it was written.
    """
    target.mkdir()
    shutil.copy(source / "products.yaml", target / "products.yaml")
    dates = {"birth_date", "start_date", "due_date", "value_date", "end_date"}
    money = {"principal", "interest", "fee", "amount"}
    for csv in source.glob("*.csv"):
        frame = pl.read_csv(csv, infer_schema=False)
        typed = []
        for c in frame.columns:
            col = pl.col(c)
            if c in dates:
                expr = col.str.to_date("%Y-%m-%d", strict=False)
            elif c in money:
                expr = col.cast(pl.Decimal(18, 2), strict=False)
            elif c in ("valid", "consent", "pauses_clock", "pauses_outreach"):
                expr = col.replace_strict({"true": True, "false": False}, default=None, return_dtype=pl.Boolean)
            elif c in ("latitude", "longitude"):
                expr = col.cast(pl.Float64, strict=False)
            elif c in ("seq", "term"):
                expr = col.cast(pl.Int32, strict=False)
            elif c == "flags":
                expr = col.str.split(";")
            elif c == "booked_at":
                expr = col.str.to_datetime("%Y-%m-%dT%H:%M:%S%#z", strict=False, time_zone="Asia/Shanghai")
            else:
                expr = col
            lossless = frame.select((expr.is_null() == col.is_null()).all()).item()
            exact = c not in money or frame.select(
                (expr.cast(pl.String).str.strip_chars_end("0").str.strip_chars_end(".")
                 == col.str.strip_chars_end("0").str.strip_chars_end(".")).all()).item()
            typed.append(expr if lossless and exact else col)
        frame.select(typed).write_parquet(target / f"{csv.stem}.parquet")


def _snapshot(engine: Engine) -> dict[str, list[tuple[object, ...]]]:
    """Every stored row, typed (SQLAlchemy Core), except ciphertexts and import instants."""
    skip = {"name_enc", "national_id_enc", "value_enc", "booked_at"}
    with engine.connect() as conn:
        return {name: [tuple(r) for r in conn.execute(select(*[c for c in t.metadata.tables[name].c
                                                               if c.name not in skip]).order_by(
            *t.metadata.tables[name].primary_key.columns))]
            for name in ("product", "borrower", "contact_point", "loan", "instalment", "payment", "hold")}


def test_parquet_and_csv_give_the_same_result(engine: Engine, sqlite_engine: Engine, tmp_path: Path,
                                              cipher: FieldCipher) -> None:
    """CSV into the backend under test, Parquet into SQLite: the same rows are stored (and on PostgreSQL, the
    same as on SQLite)."""
    parquet_book = tmp_path / "parquet"
    _to_parquet(BROKEN, parquet_book)
    other = sqlite_engine

    from_csv = run(engine, BROKEN, tmp_path, cipher)
    from_parquet = run(other, parquet_book, tmp_path, cipher)

    types = pl.read_parquet_schema(parquet_book / "instalments.parquet")
    assert (types["due_date"], types["principal"], types["seq"]) == (pl.Date, pl.Decimal(18, 2), pl.Int32)
    assert [RowError(e.file.replace(".parquet", ".csv"), e.row, e.field, e.reason.replace(".parquet", ".csv"))
            for e in from_parquet.errors] == from_csv.errors
    assert _snapshot(engine) == _snapshot(other)


def test_the_example_book_imports_cleanly_with_generated_schedules(engine: Engine, tmp_path: Path,
                                                                  cipher: FieldCipher) -> None:
    report = run(engine, EXAMPLE, tmp_path, cipher)
    assert (report.exit_status, report.errors, report.rejects_path) == (0, [], None)
    given = set(pl.read_csv(EXAMPLE / "instalments.csv", infer_schema=False)["loan_id"])
    loans = pl.read_csv(EXAMPLE / "loans.csv", infer_schema=False)
    assert report.generated_schedules == loans.height - len(given) == 4
    with engine.connect() as conn:
        per_loan = {r.loan_id: (r.n, r.total, r.principal, r.term) for r in conn.execute(text(
            "SELECT l.loan_id, count(*) AS n, sum(i.principal) AS total, l.principal, l.term FROM loan l"
            " JOIN instalment i ON i.loan_key = l.loan_key GROUP BY l.loan_id, l.principal, l.term"))}
        reversal = conn.execute(text("SELECT r.payment_id, p.payment_id FROM payment r JOIN payment p"
                                     " ON r.reverses_payment_key = p.payment_key")).all()
    # Every loan, given a schedule or not, has `term` instalments whose principal adds up to the loan's.
    assert {k: (n == term, total == principal) for k, (n, total, principal, term) in per_loan.items()} == {
        k: (True, True) for k in loans["loan_id"]}
    assert [tuple(r) for r in reversal] == [("P0016", "P0015")]


def test_a_failure_while_writing_leaves_no_rows_and_no_rejects_file(engine: Engine, tmp_path: Path,
                                                                    cipher: FieldCipher,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    import duecourse.services.importer as importer

    def broken_audit(*_: object) -> int:
        raise RuntimeError("audit log unavailable")

    # Fails last, after every row and the rejects file have been written.
    monkeypatch.setattr(importer, "append", broken_audit)
    with pytest.raises(RuntimeError):
        run(engine, BROKEN, tmp_path, cipher)
    assert counts(engine) == dict.fromkeys(TABLES, 0)
    assert (tmp_path / "rejects").is_dir() and list((tmp_path / "rejects").iterdir()) == []


def test_personal_data_of_a_rejected_row_is_stored_encrypted_and_readable_with_the_key(
        engine: Engine, tmp_path: Path, cipher: FieldCipher) -> None:
    import base64

    run(engine, BROKEN, tmp_path, cipher)
    with engine.connect() as conn:
        raw = conn.execute(select(t.rejected_row.c.raw).where(t.rejected_row.c.file == "borrowers.csv",
                                                               t.rejected_row.c.row == 3)).scalar_one()
    assert raw["borrower_id"] == "B0003" and raw["birth_date"] == "1985-13-01"  # the rest stays readable
    clear = {c: cipher.decrypt(base64.b64decode(raw[c].removeprefix("enc:")), f"rejected_row.raw.{c}")
             for c in ("name", "national_id")}
    assert clear == {"name": "李娜", "national_id": "440305197811020681"}


def test_with_the_verification_signer_the_identity_index_follows_the_import(
    engine: Engine, tmp_path: Path, cipher: FieldCipher
) -> None:
    from duecourse.domain.verification import CodeSigner

    signer = CodeSigner(b"k" * 32)
    book = EXAMPLE
    import_book(engine, book, tmp_path / "rejects", cipher, "user:tester", NOW, signer=signer)
    with engine.connect() as conn:
        indexed = conn.execute(select(t.identity_index.c.borrower_key, t.identity_index.c.kind)).all()
        borrowers = conn.execute(select(func.count()).select_from(t.borrower)).scalar_one()
    kinds = {kind for _, kind in indexed}
    assert {k for k, _ in indexed} and len({k for k, _ in indexed}) == borrowers  # everyone has a national id
    assert kinds == {"national_id", "phone"}
    # A second import of the same book writes no borrower and no contact point: the index stays as it was.
    import_book(engine, book, tmp_path / "rejects", cipher, "user:tester", NOW, signer=signer)
    with engine.connect() as conn:
        assert sorted(conn.execute(select(t.identity_index.c.borrower_key, t.identity_index.c.kind)).all()) == sorted(
            indexed
        )
