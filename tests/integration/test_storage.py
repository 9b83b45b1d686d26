"""Storage on both backends: migrations up and down, and bulk frame I/O that returns exactly what it stored.

Every test runs on SQLite and on PostgreSQL (the `engine` / `db_url` fixtures in tests/conftest.py).
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta, timezone

import polars as pl
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, exc, func, insert, inspect, select

from duecourse.adapters.db import tables as t
from duecourse.adapters.db.bulk import read_frame, write_frame
from duecourse.adapters.db.engine import make_engine
from duecourse.adapters.db.migrate import downgrade, upgrade
from duecourse.domain import frames as f

I64_MIN, I64_MAX = -(2**63), 2**63 - 1

PRODUCTS_WITH_CONVENTIONS = pl.DataFrame({
    "code": ["cash", "消费贷"], "currency": ["CNY", "CNY"],
    "conventions": [{"rounding": "half_even", "grace_days": 3}, {"rounding": "half_up", "grace_days": 0}],
})
BORROWERS = pl.DataFrame(
    {
        "borrower_key": [1, 2, 3],
        "borrower_id": ["B-1", "B-张伟", 'B "quoted", comma'],
        "language": ["zh", "en", ""],
        "birth_date": [date(1950, 1, 31), None, date(2000, 2, 29)],
        "flags": [["elderly", "disabled"], [], ["deceased"]],
    },
    schema=f.BORROWERS,
)
LOANS = pl.DataFrame(
    {
        "loan_key": [10, 11, I64_MAX],
        "loan_id": ["L-10", "L\n11", "\\N"],  # a newline and the text COPY uses for NULL must survive
        "borrower_key": [1, 2, 3],
        "product": ["cash", "消费贷", "cash"],
        "currency": ["CNY", "CNY", "CNY"],
        "principal": [1, I64_MAX, 0],
        "annual_rate": [24_000_000, 0, 36_000_000],
        "penalty_rate": [0, I64_MIN, 1],
        "term": [12, 1, 2_147_483_647],
        "start_date": [date(1, 1, 1), date(2026, 12, 31), date(9999, 12, 31)],
        "method": ["equal_instalment", "equal_principal", "interest_only"],
    },
    schema=f.LOANS,
)
INSTALMENTS = pl.DataFrame(
    {
        "loan_key": [10, 10, 11],
        "seq": [1, 2, 1],
        "due_date": [date(2026, 1, 31), date(2026, 2, 28), date(2024, 2, 29)],
        "principal": [I64_MIN, I64_MAX, 0],
        "interest": [-1, 1, 0],
        "fee": [0, 0, 500],
    },
    schema=f.INSTALMENTS,
)
PAYMENTS = pl.DataFrame(
    {
        "payment_key": [100, 101, 102],
        "loan_key": [10, 10, 11],
        "value_date": [date(2026, 1, 30), date(2026, 2, 1), date(2026, 1, 1)],
        "amount": [5_000, 5_000, I64_MAX],
        "reverses_payment_key": [None, 100, None],
    },
    schema=f.PAYMENTS,
)
HOLDS = pl.DataFrame(
    {
        "hold_key": [7, 8],
        "borrower_key": [1, 2],
        "loan_key": [None, 11],
        "kind": ["dispute", "hardship"],
        "start_date": [date(2026, 3, 1), date(2026, 3, 2)],
        "end_date": [None, date(2026, 4, 30)],
        "pauses_clock": [True, False],
        "pauses_outreach": [False, True],
    },
    schema=f.HOLDS,
)
BOOKED = datetime(2026, 3, 1, 9, 30, 15, 123456, tzinfo=UTC)


def _store_book(engine: Engine) -> None:
    with engine.begin() as conn:
        write_frame(conn, t.product, PRODUCTS_WITH_CONVENTIONS)
        secrets = BORROWERS.with_columns(name_enc=pl.lit(b"\x00\x01name"), national_id_enc=pl.lit(b"\xff" * 3))
        write_frame(conn, t.borrower, secrets)
        write_frame(conn, t.loan, LOANS)
        write_frame(conn, t.instalment, INSTALMENTS)
        # A reversal refers to an earlier payment, so payments go in two steps (foreign key on insert).
        payments = PAYMENTS.with_columns(payment_id=pl.format("P-{}", "payment_key"), booked_at=pl.lit(BOOKED))
        write_frame(conn, t.payment, payments.filter(pl.col("reverses_payment_key").is_null()))
        write_frame(conn, t.payment, payments.filter(pl.col("reverses_payment_key").is_not_null()))
        write_frame(conn, t.hold, HOLDS.with_columns(hold_id=pl.format("H-{}", "hold_key")))


def _columns(schema: pl.Schema) -> str:
    return ", ".join(schema.names())


# --- migrations ---------------------------------------------------------------------------------------------------


def test_migrations_go_up_down_and_up_again(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        upgrade(engine)
        assert set(inspect(engine).get_table_names()) == set(t.metadata.tables) | {"alembic_version"}
        downgrade(engine)
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
        upgrade(engine)
        assert set(inspect(engine).get_table_names()) == set(t.metadata.tables) | {"alembic_version"}
    finally:
        engine.dispose()


def test_the_migrated_schema_matches_the_table_definitions(engine: Engine) -> None:
    """Migration 0001 is kept in step with tables.py by hand; autogenerate must find nothing left to do."""
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), t.metadata)
    assert diff == []


# --- bulk round trips ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("table", "frame", "order"),
    [
        ("loan", LOANS, "loan_key"),
        ("instalment", INSTALMENTS, "loan_key, seq"),
        ("payment", PAYMENTS, "payment_key"),
        ("hold", HOLDS, "hold_key"),
    ],
)
def test_each_frame_comes_back_exactly(engine: Engine, table: str, frame: pl.DataFrame, order: str) -> None:
    _store_book(engine)
    back = read_frame(engine, f"SELECT {_columns(frame.schema)} FROM {table} ORDER BY {order}", frame.schema)
    assert back.schema == frame.schema
    assert back.equals(frame)


def test_borrowers_come_back_with_flags_as_a_sorted_list_and_secrets_byte_exact(engine: Engine) -> None:
    _store_book(engine)
    back = read_frame(engine, "SELECT borrower_key, borrower_id, language, birth_date, flags FROM borrower"
                              " ORDER BY borrower_key", f.BORROWERS)
    assert back.equals(BORROWERS.with_columns(pl.col("flags").list.sort()))
    with engine.connect() as conn:
        stored = conn.execute(select(t.borrower.c.flags, t.borrower.c.name_enc).order_by(t.borrower.c.borrower_key))
        assert [(r.flags, r.name_enc) for r in stored] == [("disabled,elderly", b"\x00\x01name"),
                                                           ("", b"\x00\x01name"), ("deceased", b"\x00\x01name")]
    secrets = read_frame(engine, "SELECT national_id_enc FROM borrower", pl.Schema({"national_id_enc": pl.Binary}))
    assert secrets["national_id_enc"].to_list() == [b"\xff\xff\xff"] * 3


def test_bulk_writes_read_back_through_sqlalchemy_as_sqlalchemy_writes_them(engine: Engine) -> None:
    """Instants, JSON and booleans written in bulk are the values SQLAlchemy itself would have stored."""
    summary = {"proposals": 3, "note": "首次", "nested": {"ok": True, "rate": 0.25}}
    started = datetime(2026, 3, 2, 1, 2, 3, 456789, tzinfo=timezone(timedelta(hours=8)))
    with engine.begin() as conn:
        write_frame(conn, t.cycle_run, pl.DataFrame({
            "run_key": [1], "as_of": [date(2026, 3, 1)], "started_at": [started], "finished_at": [BOOKED],
            "replay": [True], "strategy_digest": ["d" * 64], "summary": [summary],
        }))
        # SQLAlchemy itself drops the offset on SQLite, so the store's convention is to hand it UTC instants.
        conn.execute(insert(t.cycle_run).values(run_key=2, as_of=date(2026, 3, 2), started_at=started.astimezone(UTC),
                                                finished_at=BOOKED, replay=False, strategy_digest="e" * 64,
                                                summary=summary))
    with engine.connect() as conn:
        rows = conn.execute(select(t.cycle_run).order_by(t.cycle_run.c.run_key)).mappings().all()
    for row in rows:
        assert row["summary"] == summary
        assert row["started_at"].replace(tzinfo=row["started_at"].tzinfo or UTC) == started
    assert [r["replay"] for r in rows] == [True, False]
    schema = pl.Schema({"run_key": pl.Int64(), "started_at": pl.Datetime("us", "UTC"), "replay": pl.Boolean(),
                        "summary": pl.String()})
    back = read_frame(engine, "SELECT run_key, started_at, replay, summary FROM cycle_run ORDER BY run_key", schema)
    assert back["started_at"].to_list() == [started, started]
    assert back["replay"].to_list() == [True, False]
    assert back.schema == schema
    assert [json.loads(s) for s in back["summary"]] == [summary, summary]


def test_rows_written_by_sqlalchemy_read_back_as_frames(engine: Engine) -> None:
    _store_book(engine)
    with engine.begin() as conn:
        conn.execute(insert(t.hold).values(hold_key=9, hold_id="H-9", borrower_key=3, loan_key=None, kind="legal",
                                           start_date=date(2027, 1, 1), end_date=None, pauses_clock=False,
                                           pauses_outreach=True))
    back = read_frame(engine, f"SELECT {_columns(f.HOLDS)} FROM hold WHERE hold_key = 9", f.HOLDS)
    assert back.row(0) == (9, 3, None, "legal", date(2027, 1, 1), None, False, True)


def test_explicit_keys_do_not_collide_with_later_generated_keys(engine: Engine) -> None:
    _store_book(engine)
    with engine.begin() as conn:
        key = conn.execute(insert(t.hold).values(hold_id="H-new", borrower_key=1, kind="legal",
                                                 start_date=date(2026, 5, 1), pauses_clock=True,
                                                 pauses_outreach=True).returning(t.hold.c.hold_key)).scalar_one()
    assert key > max(HOLDS["hold_key"].to_list())


def test_a_text_column_empty_for_thousands_of_rows_then_filled_reads_back(engine: Engine) -> None:
    """SQLite's ADBC driver guesses column types from the first 1,024 rows; the reader must not depend on that."""
    _store_book(engine)
    n = 3_000
    keys = list(range(1_000, 1_000 + n))
    holds = pl.DataFrame({
        "hold_key": keys, "hold_id": [f"H-{k}" for k in keys], "borrower_key": [1] * n, "kind": ["dispute"] * n,
        "start_date": [date(2026, 1, 1)] * n,
        "end_date": [None] * (n - 1) + [date(2026, 6, 30)],
        "pauses_clock": [False] * n, "pauses_outreach": [False] * n,
    })
    with engine.begin() as conn:
        write_frame(conn, t.hold, holds)
    back = read_frame(engine, f"SELECT {_columns(f.HOLDS)} FROM hold WHERE hold_key >= 1000 ORDER BY hold_key",
                      f.HOLDS)
    assert back.height == n
    assert back["end_date"].null_count() == n - 1
    assert back["end_date"][-1] == date(2026, 6, 30)


def test_columns_are_matched_by_name_not_position(engine: Engine) -> None:
    _store_book(engine)
    back = read_frame(engine, "SELECT fee, interest, principal, due_date, seq, loan_key FROM instalment"
                              " ORDER BY loan_key, seq", f.INSTALMENTS)
    assert back.equals(INSTALMENTS)


def test_an_empty_result_is_an_empty_frame_of_the_schema(engine: Engine) -> None:
    back = read_frame(engine, f"SELECT {_columns(f.HOLDS)} FROM hold", f.HOLDS)
    assert back.height == 0 and back.schema == f.HOLDS


def test_a_column_missing_from_the_result_is_an_error(engine: Engine) -> None:
    with pytest.raises(KeyError, match="fee"):
        read_frame(engine, "SELECT loan_key, seq, due_date, principal, interest FROM instalment", f.INSTALMENTS)


def test_a_frame_column_the_table_lacks_is_an_error(engine: Engine) -> None:
    with engine.begin() as conn, pytest.raises(KeyError, match="colour"):
        write_frame(conn, t.product, pl.DataFrame({"code": ["x"], "currency": ["CNY"], "colour": ["red"]}))


# --- conflicts and transactions -----------------------------------------------------------------------------------


def _snapshots(loan_keys: list[int], as_of: date) -> pl.DataFrame:
    n = len(loan_keys)
    return pl.DataFrame({
        "as_of": [as_of] * n, "loan_key": loan_keys, "days_past_due": [30] * n, "bucket": ["M1"] * n,
        "transition": ["roll_forward"] * n, "overdue_total": [1_000] * n, "outstanding_total": [5_000] * n,
    })


def _count(engine: Engine, table: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(t.metadata.tables[table])).scalar_one())


def test_on_conflict_do_nothing_makes_a_replay_insert_nothing(engine: Engine) -> None:
    _store_book(engine)
    day = date(2026, 3, 31)
    with engine.begin() as conn:
        assert write_frame(conn, t.delinquency_snapshot, _snapshots([10, 11], day), on_conflict_do_nothing=True) == 2
    with engine.begin() as conn:
        assert write_frame(conn, t.delinquency_snapshot, _snapshots([10, 11], day), on_conflict_do_nothing=True) == 0
    with engine.begin() as conn:
        # Two already stored, one new: only the new one counts.
        assert write_frame(conn, t.delinquency_snapshot, _snapshots([10, 11, I64_MAX], day),
                           on_conflict_do_nothing=True) == 1
    assert _count(engine, "delinquency_snapshot") == 3


def test_without_on_conflict_a_duplicate_fails_and_the_transaction_leaves_nothing(engine: Engine) -> None:
    _store_book(engine)
    day = date(2026, 3, 31)
    with engine.begin() as conn:
        write_frame(conn, t.delinquency_snapshot, _snapshots([10], day))
    with pytest.raises(exc.IntegrityError), engine.begin() as conn:
        write_frame(conn, t.delinquency_snapshot, _snapshots([11], day))  # fine on its own ...
        write_frame(conn, t.delinquency_snapshot, _snapshots([10], day))  # ... but this one is a duplicate
    assert _count(engine, "delinquency_snapshot") == 1


def test_on_conflict_do_nothing_still_rejects_a_missing_required_value(engine: Engine) -> None:
    _store_book(engine)
    bad = _snapshots([10], date(2026, 3, 31)).with_columns(bucket=pl.lit(None, pl.String))
    with pytest.raises(exc.IntegrityError), engine.begin() as conn:
        write_frame(conn, t.delinquency_snapshot, bad, on_conflict_do_nothing=True)
    assert _count(engine, "delinquency_snapshot") == 0


def test_a_failing_write_rolls_back_every_earlier_write_of_its_transaction(engine: Engine) -> None:
    with pytest.raises(exc.IntegrityError), engine.begin() as conn:
        write_frame(conn, t.product, PRODUCTS_WITH_CONVENTIONS)
        write_frame(conn, t.loan, LOANS)  # no such borrowers: a foreign key violation
    assert _count(engine, "product") == 0
    assert _count(engine, "loan") == 0


def test_writes_commit_with_the_callers_transaction(engine: Engine) -> None:
    codes = pl.Schema({"code": pl.String})
    conn = engine.connect()
    try:
        write_frame(conn, t.product, pl.DataFrame({"code": ["x"], "currency": ["CNY"], "conventions": [{"a": 1}]}))
        # Not committed yet: the bulk reader (its own connection) sees nothing.
        assert read_frame(engine, "SELECT code FROM product", codes).height == 0
        conn.commit()
    finally:
        conn.close()
    assert read_frame(engine, "SELECT code FROM product", codes)["code"].to_list() == ["x"]


def test_an_empty_frame_writes_nothing(engine: Engine) -> None:
    with engine.begin() as conn:
        assert write_frame(conn, t.delinquency_snapshot, _snapshots([], date(2026, 1, 1))) == 0
    assert _count(engine, "delinquency_snapshot") == 0
