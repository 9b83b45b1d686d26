"""The demo book generator: deterministic, realistic people and contacts, behaviour that follows the roll rates."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Literal

import numpy as np
import polars as pl
import pytest

from duecourse.adapters.bookfiles import read_book
from duecourse.demo import people
from duecourse.demo.book import (
    GeneratedBook,
    gb11643_check_digit,
    generate_book,
    load_roll_rates,
    product_conventions,
    write_book,
)
from duecourse.services.importer_validation import StoreView, check_book

AS_OF = date(2026, 10, 31)
DAYS = 30


@pytest.fixture(scope="module")
def book() -> GeneratedBook:
    return generate_book(20_000, AS_OF, seed=11, days_ahead=DAYS)


@pytest.fixture(scope="module")
def small() -> GeneratedBook:
    return generate_book(600, AS_OF, seed=5, days_ahead=DAYS)


def _minor(column: str) -> pl.Expr:
    return (pl.col(column) * 100).cast(pl.Int64)


def test_same_seed_same_book_other_seed_other_book(small: GeneratedBook) -> None:
    again = generate_book(600, AS_OF, seed=5, days_ahead=DAYS)
    other = generate_book(600, AS_OF, seed=6, days_ahead=DAYS)
    for name, frame in small.tables().items():
        assert frame.equals(again.tables()[name]), name
    assert small.daily_payments.keys() == again.daily_payments.keys()
    for day, frame in small.daily_payments.items():
        assert frame.equals(again.daily_payments[day])
    assert not small.borrowers.equals(other.borrowers)
    assert not small.payments.equals(other.payments)


def test_check_digit_of_published_examples() -> None:
    # The GB 11643-1999 worked example and an id from examples/book/borrowers.csv.
    assert gb11643_check_digit("11010519491231002") == "X"
    assert gb11643_check_digit("33010619880517024") == "X"
    assert gb11643_check_digit("11010119850312031") == "6"


def test_national_ids_are_valid_and_agree_with_birth_date_region_and_sex(book: GeneratedBook) -> None:
    b = book.borrowers
    ids = b["national_id"].to_list()
    assert all(len(i) == 18 and i[:17].isdigit() for i in ids)
    assert all(gb11643_check_digit(i[:17]) == i[17] for i in ids)
    assert (b["national_id"].str.slice(6, 8) == b["birth_date"].dt.strftime("%Y%m%d")).all()
    codes = {c.division_code: c.region for c in people.CITIES}
    assert [codes[i[:6]] for i in ids[:500]] == b["region"].to_list()[:500]
    assert len(set(ids)) > 0.99 * len(ids)


def test_ages_flags_and_languages(book: GeneratedBook) -> None:
    b = book.borrowers
    age = (pl.lit(AS_OF.year) - pl.col("birth_date").dt.year()) - (
        pl.col("birth_date").dt.strftime("%m%d") > AS_OF.strftime("%m%d")
    ).cast(pl.Int32)
    b = b.with_columns(age=age, flag_list=pl.col("flags").str.split(";"))
    assert b["age"].min() >= 20 and b["age"].max() <= 75
    elderly = b["flag_list"].list.contains("elderly")
    assert (elderly == (b["age"] >= 65)).all()
    assert 0.04 < elderly.mean() < 0.08  # type: ignore[operator]
    assert 0.01 < b["flag_list"].list.contains("disabled").mean() < 0.03  # type: ignore[operator]
    langs = b["language"].value_counts().sort("count", descending=True)
    assert langs["language"].to_list() == ["zh-CN", "en"]
    assert b["name"].str.len_chars().is_between(2, 3).all()


def test_contact_points_cover_own_and_third_party_channels(book: GeneratedBook) -> None:
    c = book.contact_points
    assert set(c["owner"]) == {"borrower", "spouse", "family", "emergency", "employer", "guarantor"}
    assert set(c["kind"]) == {"phone", "email", "address", "app"}
    phones = c.filter(pl.col("kind") == "phone")["value"]
    assert phones.str.contains(r"^\+861[3-9]\d{9}$").all()
    third = c.filter(pl.col("owner") != "borrower")["borrower_id"].n_unique()
    assert third > 0.6 * book.borrowers.height
    # every borrower has a phone and a home address with coordinates in China
    own = c.filter(pl.col("owner") == "borrower")
    assert own.filter(pl.col("kind") == "phone")["borrower_id"].n_unique() == book.borrowers.height
    homes = own.filter(pl.col("kind") == "address")
    assert homes["borrower_id"].n_unique() == book.borrowers.height
    assert homes["latitude"].is_between(18, 54).all() and homes["longitude"].is_between(73, 135).all()
    assert c.filter(pl.col("kind") != "address")["latitude"].is_null().all()
    # Xinjiang addresses keep local time
    xj = book.borrowers.filter(pl.col("region") == "CN-XJ")["borrower_id"]
    tz = homes.filter(pl.col("borrower_id").is_in(xj.implode()))["time_zone"].unique().to_list()
    assert tz == ["Asia/Urumqi"]


def test_loans_products_amounts_and_schedules(book: GeneratedBook) -> None:
    loans = book.loans.with_columns(principal=_minor("principal"))
    assert set(loans["product"]) == set(book.products["products"])
    assert loans["principal"].min() >= 100_000 and loans["principal"].max() <= 20_000_000
    per_borrower = loans.group_by("borrower_id").len()["len"]
    assert per_borrower.max() == 2 and 0.05 < (per_borrower == 2).mean() < 0.2  # type: ignore[operator]
    inst = book.instalments.with_columns(principal=_minor("principal"))
    sums = inst.group_by("loan_id").agg(pl.col("principal").sum(), n=pl.len(), first=pl.col("due_date").min())
    joined = loans.join(sums, on="loan_id", suffix="_sched")
    assert joined.height == loans.height
    assert (joined["principal"] == joined["principal_sched"]).all()
    assert (joined["term"] == joined["n"]).all()
    assert (joined["first"] > joined["start_date"]).all()


def test_daily_payments_arrive_on_each_simulated_day_with_backdated_and_reversed_ones(book: GeneratedBook) -> None:
    assert list(book.daily_payments) == [AS_OF + timedelta(days=d) for d in range(1, DAYS + 1)]
    assert book.payments["booked_at"].str.slice(0, 10).max() <= AS_OF.isoformat()
    future = pl.concat(book.daily_payments.values())
    for day, frame in book.daily_payments.items():
        assert (frame["booked_at"].str.slice(0, 10) == day.isoformat()).all()
        assert (frame.filter(pl.col("reverses_payment_id").is_null())["value_date"] <= day).all()
    backdated = future.filter(pl.col("value_date") < pl.col("booked_at").str.slice(0, 10).str.to_date())
    assert 0 < backdated.height < 0.1 * future.height
    reversals = future.filter(pl.col("reverses_payment_id").is_not_null())
    assert reversals.height >= 2
    everything = pl.concat([book.payments, future])
    assert everything["payment_id"].is_unique().all()
    target = reversals.join(everything, left_on="reverses_payment_id", right_on="payment_id", suffix="_orig")
    assert target.height == reversals.height
    assert (target["loan_id"] == target["loan_id_orig"]).all() and (target["amount"] == target["amount_orig"]).all()
    assert (target["value_date"] > target["value_date_orig"]).all()
    starts = everything.join(book.loans.select("loan_id", "start_date"), on="loan_id")
    assert (starts["value_date"] >= starts["start_date"]).all()


def test_holds_of_every_kind_with_their_pause_settings(book: GeneratedBook) -> None:
    h = book.holds
    kinds = {k: g for (k,), g in h.group_by("kind")}
    assert set(kinds) == {"dispute", "hardship", "legal", "deceased"}
    assert kinds["deceased"]["loan_id"].is_null().all() and kinds["deceased"]["pauses_outreach"].all()
    assert kinds["hardship"]["pauses_clock"].all() and kinds["hardship"]["end_date"].is_not_null().all()
    assert (~kinds["legal"]["pauses_clock"]).all() and kinds["legal"]["pauses_outreach"].all()
    dead = book.borrowers.filter(pl.col("flags").str.contains("deceased"))["borrower_id"].sort()
    assert dead.to_list() == kinds["deceased"]["borrower_id"].sort().to_list()
    after = (
        pl.concat([book.payments, *book.daily_payments.values()])
        .join(book.loans.select("loan_id", "borrower_id"), on="loan_id")
        .join(kinds["deceased"].select("borrower_id", died="start_date"), on="borrower_id")
    )
    assert (after["value_date"] < after["died"]).all()


def _monthly_states(book: GeneratedBook, last_day: date) -> pl.DataFrame:
    """Each loan's state at its monthly checkpoints, read from the payments and the schedule alone.

    State k: how many due dates the first instalment not covered by the payments so far is behind,
    22 days after the k-th due date (every payment of month k is in, none of month k+1 yet).
    """
    pays = pl.concat([book.payments, *book.daily_payments.values()])
    reversed_ids = pays["reverses_payment_id"].drop_nulls().implode()
    pays = pays.filter(pl.col("reverses_payment_id").is_null() & ~pl.col("payment_id").is_in(reversed_ids))
    pays = pays.select("loan_id", "value_date", amount=_minor("amount"))
    inst = book.instalments.with_columns(
        total=_minor("principal") + _minor("interest") + _minor("fee"),
        checkpoint=pl.col("due_date") + timedelta(days=22),
    ).with_columns(cum_total=pl.col("total").cum_sum().over("loan_id", order_by="seq"))
    paid_by = (
        inst.join(pays, on="loan_id")
        .filter(pl.col("value_date") <= pl.col("checkpoint"))
        .group_by("loan_id", "seq")
        .agg(paid=pl.col("amount").sum())
    )
    k = (
        inst.select("loan_id", "seq", "checkpoint")
        .join(paid_by, on=["loan_id", "seq"], how="left")
        .with_columns(pl.col("paid").fill_null(0))
    )
    covered = (
        k.join(inst.select("loan_id", j="seq", cum_total="cum_total"), on="loan_id")
        .filter((pl.col("j") <= pl.col("seq")) & (pl.col("cum_total") <= pl.col("paid")))
        .group_by("loan_id", "seq")
        .agg(covered=pl.len())
    )
    states = k.join(covered, on=["loan_id", "seq"], how="left").with_columns(
        state=pl.min_horizontal(pl.col("seq") - pl.col("covered").fill_null(0), pl.lit(6))
    )
    return states.filter(pl.col("checkpoint") <= last_day).select("loan_id", "seq", "state")


def test_monthly_transitions_follow_the_shipped_roll_rates(book: GeneratedBook) -> None:
    states, rates = load_roll_rates()
    dead = book.holds.filter(pl.col("kind") == "deceased")["borrower_id"].implode()
    alive = book.loans.filter(~pl.col("borrower_id").is_in(dead)).select("loan_id")
    monthly = _monthly_states(book, AS_OF + timedelta(days=DAYS)).join(alive, on="loan_id")
    start = alive.select("loan_id", seq=pl.lit(0, pl.Int32), state=pl.lit(0, pl.Int32))
    seq = pl.concat([start, monthly.with_columns(pl.col("state").cast(pl.Int32))]).sort("loan_id", "seq")
    pairs = seq.with_columns(
        nxt=pl.col("state").shift(-1).over("loan_id"), nxt_seq=pl.col("seq").shift(-1).over("loan_id")
    ).filter(pl.col("nxt_seq") == pl.col("seq") + 1)
    counts = np.zeros((len(states), len(states)))
    for f, t, n in pairs.group_by("state", "nxt").len().iter_rows():
        counts[f, t] = n
    assert counts.sum() > 100_000
    checked = 0
    for i in range(len(states)):
        n = counts[i].sum()
        if n < 300:
            continue
        checked += 1
        empirical = counts[i] / n
        # within 4 binomial standard errors (plus a little for the margins paid on late instalments)
        tolerance = 4 * np.sqrt(rates[i] * (1 - rates[i]) / n) + 0.01
        assert np.all(np.abs(empirical - rates[i]) <= tolerance), (states[i], empirical.round(3), rates[i].round(3))
    assert checked >= 3


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_written_book_passes_the_importers_validation_without_a_reject(
    small: GeneratedBook, tmp_path: Path, fmt: Literal["csv", "parquet"]
) -> None:
    write_book(small, tmp_path, fmt)
    checked = check_book(read_book(tmp_path), StoreView(), datetime(2026, 10, 31, 16, tzinfo=UTC))
    assert checked.row_errors() == []
    accepted = {name: f.accepted.height for name, f in checked.files.items()}
    assert accepted == {"products": 3, **{name: frame.height for name, frame in small.tables().items()}}


def test_the_ledger_sees_every_payment_clear_exactly_the_instalments_it_was_meant_to(small: GeneratedBook) -> None:
    """Late payments carry a penalty margin, so no loan is left delinquent by a few fen of penalty interest:
    the ledger's oldest unpaid instalment is the first one the payments (penalty aside) do not cover."""
    from duecourse.domain import frames
    from duecourse.ledger.engine import ledger_state

    loans = small.loans.with_row_index("loan_key").with_columns(
        pl.col("loan_key").cast(pl.Int64),
        borrower_key=pl.lit(0, pl.Int64),
        principal=_minor("principal"),
        annual_rate=(pl.col("annual_rate") * 10**8).cast(pl.Int64),
        penalty_rate=(pl.col("penalty_rate") * 10**8).cast(pl.Int64),
    )
    keys = loans.select("loan_id", "loan_key")
    inst = small.instalments.join(keys, on="loan_id").with_columns(
        _minor("principal"), _minor("interest"), _minor("fee")
    )
    pays = (
        small.payments.join(keys, on="loan_id")
        .with_row_index("payment_key")
        .with_columns(
            pl.col("payment_key").cast(pl.Int64), amount=_minor("amount"), reverses_payment_key=pl.lit(None, pl.Int64)
        )
    )
    state = ledger_state(
        frames.conform(loans, frames.LOANS),
        frames.conform(inst, frames.INSTALMENTS),
        frames.conform(pays, frames.PAYMENTS),
        frames.empty(frames.HOLDS),
        product_conventions(),
        AS_OF,
    )
    paid = pays.group_by("loan_key").agg(paid=pl.col("amount").sum())
    first_uncovered = (
        inst.sort("loan_key", "seq")
        .with_columns(cum=(pl.col("principal") + pl.col("interest") + pl.col("fee")).cum_sum().over("loan_key"))
        .join(paid, on="loan_key", how="left")
        .filter(pl.col("cum") > pl.col("paid").fill_null(0))
        .group_by("loan_key")
        .agg(first=pl.col("due_date").min())
    )
    compared = state.join(first_uncovered, on="loan_key", how="left").with_columns(
        expected=pl.when(pl.col("first") < AS_OF).then(pl.col("first"))
    )
    assert compared.height == small.loans.height
    assert (compared["days_past_due"] > 0).sum() > 10
    assert compared.filter(pl.col("expected").ne_missing(pl.col("oldest_unpaid_due_date"))).is_empty()
