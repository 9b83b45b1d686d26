"""A realistic synthetic loan book, generated set-based (numpy + Polars) and seeded, shared by the demo and the bench.

Borrowers, contact points (own and third-party), loans of three products with their schedules, a
payment history whose month-to-month behaviour follows the roll-rate matrix estimated from the UCI
repayment histories (`roll_rates_uci.json`), a few holds, and the payments that arrive on each of the
days after `as_of`. Everything is in the book file format of docs/book-format.md; `write_book`
writes it as CSV or Parquet for `duecourse import`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, timedelta
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl
import yaml

from duecourse.demo import behaviour, people
from duecourse.demo.behaviour import day_number
from duecourse.demo.schedules import schedules
from duecourse.domain.conventions import ProductConventions
from duecourse.domain.money import RATE_SCALE, rate_to_scaled


@dataclass(frozen=True)
class ProductSpec:
    """How the generator draws loans of one product; `conventions` go to products.yaml as they are."""

    code: str
    description: str
    method: str
    share: float
    terms: tuple[int, ...]
    term_weights: tuple[float, ...]
    rates: tuple[str, ...]  # annual, as decimal strings (exact)
    penalty_rate: str  # annual; 0.1825 is the common 0.05% a day
    median_principal: int  # yuan
    sigma: float  # of the log-normal principal
    conventions: dict[str, Any] = field(default_factory=dict)


PRODUCTS: tuple[ProductSpec, ...] = (
    ProductSpec(
        "CASH",
        "Cash loan, equal monthly instalments",
        "equal_instalment",
        0.55,
        (3, 6, 12, 18, 24),
        (0.10, 0.25, 0.40, 0.15, 0.10),
        ("0.18", "0.195", "0.21", "0.225", "0.24"),
        "0.1825",
        8_000,
        0.9,
        {"rounding_mode": "half_up", "day_count": "per_period"},
    ),
    ProductSpec(
        "CONSUMER",
        "Consumer instalment loan for a purchase, equal principal",
        "equal_principal",
        0.30,
        (6, 12, 24, 36),
        (0.25, 0.40, 0.25, 0.10),
        ("0.096", "0.12", "0.144", "0.18"),
        "0.1095",
        15_000,
        1.0,
        {"day_count": "per_period", "grace_days": 3},
    ),
    ProductSpec(
        "SHORT",
        "Short loan, monthly interest and principal at maturity",
        "interest_only",
        0.15,
        (1, 2, 3, 6),
        (0.20, 0.30, 0.35, 0.15),
        ("0.18", "0.24"),
        "0.1825",
        3_000,
        0.7,
        {"day_count": "actual/365", "holds_pause_penalty": True},
    ),
)

MIN_PRINCIPAL = 1_000  # yuan
MAX_PRINCIPAL = 200_000


@dataclass(frozen=True)
class GeneratedBook:
    """One generated book: the files of docs/book-format.md as frames, plus the payments still to arrive."""

    as_of: date
    products: dict[str, Any]  # the products.yaml document
    borrowers: pl.DataFrame
    contact_points: pl.DataFrame
    loans: pl.DataFrame
    instalments: pl.DataFrame
    payments: pl.DataFrame  # arrived on or before as_of
    holds: pl.DataFrame
    daily_payments: dict[date, pl.DataFrame]  # arrival day in (as_of, as_of + days_ahead] -> what arrived that day

    def tables(self) -> dict[str, pl.DataFrame]:
        return {
            "borrowers": self.borrowers,
            "contact_points": self.contact_points,
            "loans": self.loans,
            "instalments": self.instalments,
            "payments": self.payments,
            "holds": self.holds,
        }


def load_roll_rates() -> tuple[tuple[str, ...], np.ndarray]:
    """The shipped monthly roll-rate matrix (states, row-stochastic rates)."""
    raw = json.loads(resources.files("duecourse.demo").joinpath("roll_rates_uci.json").read_text(encoding="utf-8"))
    counts = np.array(raw["counts"], dtype=np.float64)
    return tuple(raw["states"]), counts / counts.sum(axis=1, keepdims=True)


def generate_book(
    n_borrowers: int,
    as_of: date,
    seed: int,
    days_ahead: int = 30,
    *,
    second_loan_share: float = 0.12,
    term: int | None = None,
    contact_points: bool = True,
) -> GeneratedBook:
    """Generate a book as of `as_of` and the payments arriving on each of the next `days_ahead` days.

    `second_loan_share` of borrowers hold two loans, the rest one; `term` forces every loan to that many
    monthly instalments (the bench uses 12); `contact_points=False` leaves the contact points file empty
    (the daily cycle does not read it). Same arguments, same book, byte for byte.
    """
    rng = np.random.default_rng(seed)
    _, rates = load_roll_rates()
    borrowers, person = _borrowers(rng, n_borrowers, as_of)
    contacts = _contact_points(rng, person) if contact_points else _contact_points(rng, person, share=0.0)
    loans = _loans(rng, person, as_of, second_loan_share, term)
    inst = schedules(loans, product_conventions())
    events = _behaviour(rng, loans, inst, rates, as_of + timedelta(days=days_ahead))
    holds, deceased_from = _holds(rng, loans, events, as_of, days_ahead)
    events = _drop_after_death(events, loans, deceased_from)
    payments, daily = _arrivals(rng, loans, events, as_of, days_ahead)
    borrowers = _flag_deceased(borrowers, deceased_from)
    return GeneratedBook(
        as_of=as_of,
        products=products_document(),
        borrowers=borrowers,
        contact_points=contacts,
        loans=_loans_frame(loans),
        instalments=_instalments_frame(loans, inst),
        payments=payments,
        holds=holds,
        daily_payments=daily,
    )


def product_conventions() -> dict[str, ProductConventions]:
    return {p.code: ProductConventions.from_dict(p.conventions) for p in PRODUCTS}


def products_document() -> dict[str, Any]:
    return {
        "products": {
            p.code: {"currency": "CNY", "description": p.description, "conventions": dict(p.conventions)}
            for p in PRODUCTS
        }
    }


# --- borrowers ---------------------------------------------------------------------------------------------

GB11643_WEIGHTS = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2], dtype=np.int64)
GB11643_CHECK = "10X98765432"


def gb11643_check_digit(first17: str) -> str:
    """The 18th character of a resident identity number (GB 11643-1999, ISO 7064 MOD 11-2)."""
    total = sum(int(c) * int(w) for c, w in zip(first17, GB11643_WEIGHTS, strict=True))
    return GB11643_CHECK[total % 11]


def _borrowers(rng: np.random.Generator, n: int, as_of: date) -> tuple[pl.DataFrame, dict[str, np.ndarray]]:
    cities = people.CITIES
    weights = np.array([c.weight for c in cities])
    city = rng.choice(len(cities), size=n, p=weights / weights.sum())
    male = rng.random(n) < 0.52
    # Ages 20-75: most borrowers are of working age, about 6% are over 65.
    old = rng.random(n) < 0.06
    age_days = np.where(
        old,
        rng.integers(65 * 365 + 20, 76 * 365 - 20, size=n),
        np.clip(rng.normal(35.0, 9.0, size=n), 20.1, 64.9) * 365.25,
    ).astype(np.int64)
    birth = np.datetime64(as_of, "D") - age_days
    disabled = rng.random(n) < 0.02
    english = rng.random(n) < 0.03

    surname_w = 1.0 / np.arange(1, len(people.SURNAMES) + 1) ** 0.9
    surname = rng.choice(len(people.SURNAMES), size=n, p=surname_w / surname_w.sum())
    g_male = rng.integers(0, len(people.GIVEN_MALE), size=(n, 2))
    g_female = rng.integers(0, len(people.GIVEN_FEMALE), size=(n, 2))
    two_chars = rng.random(n) < 0.7
    seq = rng.integers(0, 100, size=n)  # two digits of the order code; the third carries the sex
    sex_digit = rng.integers(0, 5, size=n) * 2 + male.astype(np.int64)

    frame = pl.DataFrame(
        {
            "i": np.arange(n, dtype=np.int64),
            "city": city,
            "birth": birth,
            "male": male,
            "surname": surname,
            "gm0": g_male[:, 0],
            "gm1": g_male[:, 1],
            "gf0": g_female[:, 0],
            "gf1": g_female[:, 1],
            "two": two_chars,
            "seq": seq,
            "sex_digit": sex_digit,
            "disabled": disabled,
            "english": english,
        }
    )
    # The first 17 digits as one integer (division code, birth date, order code, sex digit), so the check
    # digit is integer arithmetic over digit columns rather than string slicing.
    ymd = _yyyymmdd(birth)
    first17 = (
        np.array([int(c.division_code) for c in cities], dtype=np.int64)[city] * 10**11
        + ymd * 1000
        + seq * 10
        + sex_digit
    )
    digits = (first17[:, None] // 10 ** np.arange(16, -1, -1, dtype=np.int64)) % 10
    check = (digits @ GB11643_WEIGHTS) % 11
    frame = frame.with_columns(first17=first17, check=check)
    given0 = pl.when("male").then(_pick(people.GIVEN_MALE, "gm0")).otherwise(_pick(people.GIVEN_FEMALE, "gf0"))
    given1 = pl.when("male").then(_pick(people.GIVEN_MALE, "gm1")).otherwise(_pick(people.GIVEN_FEMALE, "gf1"))
    birth_col = pl.col("birth").cast(pl.Date)
    age_years = _age_expr(birth_col, as_of)
    frame = frame.with_columns(
        national_id=pl.col("first17").cast(pl.String) + _pick_series(pl.Series(list(GB11643_CHECK)), "check")
    )
    out = frame.select(
        borrower_id=_ids("B", "i", 8),
        name=_pick(people.SURNAMES, "surname") + given0 + pl.when("two").then(given1).otherwise(pl.lit("")),
        national_id="national_id",
        birth_date=birth_col,
        language=pl.when("english").then(pl.lit("en")).otherwise(pl.lit("zh-CN")),
        flags=pl.when((age_years >= 65) & pl.col("disabled"))
        .then(pl.lit("elderly;disabled"))
        .when(age_years >= 65)
        .then(pl.lit("elderly"))
        .when("disabled")
        .then(pl.lit("disabled"))
        .otherwise(pl.lit("")),
        region=_pick_series(pl.Series([c.region for c in cities]), "city"),
    )
    person = {"city": city, "birth": birth, "male": male, "surname": surname}
    return out, person


def _age_expr(birth: pl.Expr, as_of: date) -> pl.Expr:
    before_birthday = (birth.dt.month() > as_of.month) | (
        (birth.dt.month() == as_of.month) & (birth.dt.day() > as_of.day)
    )
    return pl.lit(as_of.year) - birth.dt.year().cast(pl.Int32) - before_birthday.cast(pl.Int32)


def _yyyymmdd(days: np.ndarray) -> np.ndarray:
    d = days.astype("datetime64[D]")
    year = d.astype("datetime64[Y]")
    month = d.astype("datetime64[M]")
    y = year.astype(np.int64) + 1970
    m = (month - year.astype("datetime64[M]")).astype(np.int64) + 1
    day = (d - month.astype("datetime64[D]")).astype(np.int64) + 1
    out: np.ndarray = y * 10_000 + m * 100 + day
    return out


def _pick(values: tuple[str, ...], index: str | pl.Expr) -> pl.Expr:
    return _pick_series(pl.Series(values), index)


def _pick_series(values: pl.Series, index: str | pl.Expr) -> pl.Expr:
    idx = pl.col(index) if isinstance(index, str) else index
    return pl.lit(values).gather(idx)


def _ids(prefix: str, index: str | pl.Expr, width: int) -> pl.Expr:
    idx = pl.col(index) if isinstance(index, str) else index
    return pl.lit(prefix) + (idx + 1).cast(pl.String).str.zfill(width)


# --- contact points ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _ContactKind:
    owner: str
    kind: str
    share: float  # of borrowers who have one
    valid: float  # probability the number or address still works
    consent: float  # probability its owner agreed to be contacted on it
    elsewhere: float = 0.0  # probability a third party lives in another city (another time zone, maybe)


# Own contact points first, then the third parties a lender collects at application time.
CONTACT_KINDS: tuple[_ContactKind, ...] = (
    _ContactKind("borrower", "phone", 1.00, 0.95, 0.99),
    _ContactKind("borrower", "phone", 0.20, 0.70, 0.95),
    _ContactKind("borrower", "email", 0.65, 0.97, 0.90),
    _ContactKind("borrower", "address", 1.00, 0.97, 1.00),
    _ContactKind("borrower", "app", 0.55, 1.00, 0.95),
    _ContactKind("spouse", "phone", 0.40, 0.92, 0.35, 0.05),
    _ContactKind("family", "phone", 0.45, 0.90, 0.35, 0.35),
    _ContactKind("emergency", "phone", 0.60, 0.88, 0.30, 0.25),
    _ContactKind("employer", "phone", 0.30, 0.85, 0.10),
    _ContactKind("employer", "address", 0.15, 0.90, 0.10),
    _ContactKind("guarantor", "phone", 0.06, 0.95, 1.00, 0.20),
    _ContactKind("guarantor", "address", 0.04, 0.95, 1.00),
)


def _contact_points(rng: np.random.Generator, person: dict[str, np.ndarray], share: float = 1.0) -> pl.DataFrame:
    n = len(person["city"])
    cities = people.CITIES
    city_w = np.array([c.weight for c in cities])
    birth_year = person["birth"].astype("datetime64[Y]").astype(np.int64) + 1970
    parts = []
    for order, spec in enumerate(CONTACT_KINDS):
        b = np.flatnonzero(rng.random(n) < spec.share * share)
        m = len(b)
        city = person["city"][b].copy()
        moved = rng.random(m) < spec.elsewhere
        city[moved] = rng.choice(len(cities), size=int(moved.sum()), p=city_w / city_w.sum())
        number = rng.integers(0, 100_000_000, size=m)
        frame = pl.DataFrame(
            {"b": b.astype(np.int64), "order": np.full(m, order, dtype=np.int64), "city": city, "number": number}
        )
        # Only this kind's value is built: string work is most of the generator's time on a big book.
        if spec.kind == "phone":
            frame = frame.with_columns(prefix=rng.integers(0, len(people.MOBILE_PREFIXES), size=m))
            digits = pl.col("number").cast(pl.String).str.zfill(8)
            value = pl.lit("+86") + _pick(people.MOBILE_PREFIXES, "prefix") + digits
        elif spec.kind == "email":
            frame = frame.with_columns(
                domain=rng.integers(0, len(people.MAIL_DOMAINS), size=m),
                surname=person["surname"][b],
                year=birth_year[b],
            )
            # QQ mail addresses are the QQ number; the others are usually the name in pinyin and a year.
            value = (
                pl.when(pl.col("domain") == 0)
                .then((pl.col("number") + 10_000).cast(pl.String))
                .otherwise(_pick(people.SURNAMES_PINYIN, "surname") + pl.col("year").cast(pl.String))
                + pl.lit("@")
                + _pick(people.MAIL_DOMAINS, "domain")
            )
        elif spec.kind == "address":
            frame = frame.with_columns(
                street=rng.integers(0, len(people.STREETS), size=m),
                house=rng.integers(1, 400, size=m),
                building=rng.integers(1, 30, size=m),
                unit=rng.integers(1, 6, size=m),
                room=rng.integers(1, 33, size=m) * 100 + rng.integers(1, 5, size=m),
                dlat=rng.normal(0.0, 0.04, size=m),
                dlon=rng.normal(0.0, 0.05, size=m),
            )
            value = _address(spec.owner == "employer")
        else:
            value = pl.lit("app-user-") + pl.col("number").cast(pl.String).str.zfill(8)
        is_address = spec.kind == "address"
        parts.append(
            frame.select(
                "b",
                "order",
                kind=pl.lit(spec.kind),
                owner=pl.lit(spec.owner),
                value=value,
                latitude=(_pick_series(pl.Series([c.latitude for c in cities]), "city") + pl.col("dlat")).round(5)
                if is_address
                else pl.lit(None, pl.Float64),
                longitude=(_pick_series(pl.Series([c.longitude for c in cities]), "city") + pl.col("dlon")).round(5)
                if is_address
                else pl.lit(None, pl.Float64),
                time_zone=_pick_series(pl.Series([c.time_zone for c in cities]), "city"),
                valid=pl.lit(pl.Series(rng.random(m) < spec.valid)),
                consent=pl.lit(pl.Series(rng.random(m) < spec.consent)),
            )
        )
    frame = pl.concat(parts).sort("b", "order")
    return frame.select(
        _ids("C", pl.int_range(pl.len(), dtype=pl.Int64), 9).alias("contact_id"),
        _ids("B", "b", 8).alias("borrower_id"),
        "kind",
        "owner",
        "value",
        "latitude",
        "longitude",
        "time_zone",
        "valid",
        "consent",
    )


def _address(employer: bool) -> pl.Expr:
    cities = people.CITIES
    city = pl.col("city")
    address = (
        _pick_series(pl.Series([c.province for c in cities]), city)
        + _pick_series(pl.Series([c.name for c in cities]), city)
        + _pick_series(pl.Series([c.district for c in cities]), city)
        + _pick(people.STREETS, "street")
        + pl.col("house").cast(pl.String)
        + pl.lit("号")
        + pl.col("building").cast(pl.String)
        + pl.lit("栋")
        + pl.col("unit").cast(pl.String)
        + pl.lit("单元")
        + pl.col("room").cast(pl.String)
        + pl.lit("室")
    )
    if not employer:
        return address
    return (
        _pick_series(pl.Series([c.name for c in cities]), city)
        + _pick(people.GIVEN_MALE, pl.col("number") % len(people.GIVEN_MALE))
        + _pick(people.GIVEN_MALE, pl.col("number") // 100 % len(people.GIVEN_MALE))
        + _pick(people.EMPLOYER_SUFFIXES, pl.col("unit") - 1)
        + pl.lit("，")
        + address
    )


# --- loans -------------------------------------------------------------------------------------------------


def _loans(
    rng: np.random.Generator, person: dict[str, np.ndarray], as_of: date, second_share: float, term: int | None
) -> pl.DataFrame:
    """One row per loan in minor units and scaled rates (frames.LOANS without store keys)."""
    n_b = len(person["city"])
    count = 1 + (rng.random(n_b) < second_share).astype(np.int64)
    b = np.repeat(np.arange(n_b, dtype=np.int64), count)
    n = len(b)
    shares = np.array([p.share for p in PRODUCTS])
    product = rng.choice(len(PRODUCTS), size=n, p=shares / shares.sum())
    terms = np.empty(n, dtype=np.int64)
    rates = np.empty(n, dtype=np.int64)
    penalty = np.empty(n, dtype=np.int64)
    principal = np.empty(n, dtype=np.int64)
    for k, p in enumerate(PRODUCTS):
        sel = np.flatnonzero(product == k)
        w = np.array(p.term_weights)
        terms[sel] = rng.choice(np.array(p.terms), size=len(sel), p=w / w.sum()) if term is None else term
        rates[sel] = rng.choice(np.array([rate_to_scaled(r) for r in p.rates]), size=len(sel))
        penalty[sel] = rate_to_scaled(p.penalty_rate)
        yuan = np.exp(rng.normal(np.log(p.median_principal), p.sigma, size=len(sel)))
        principal[sel] = np.round(np.clip(yuan, MIN_PRINCIPAL, MAX_PRINCIPAL) / 100).astype(np.int64) * 100 * 100
    # Loans started any day from a month past their term ago up to yesterday: most are mid-schedule,
    # a few have just matured (paid off, or still owing).
    age = (rng.random(n) * (terms + 1) * 30.44).astype(np.int64) + 1
    start = np.datetime64(as_of, "D") - age
    codes = pl.Series([p.code for p in PRODUCTS])
    methods = pl.Series([p.method for p in PRODUCTS])
    return pl.DataFrame(
        {
            "i": np.arange(n, dtype=np.int64),
            "b": b,
            "p": product,
            "term": terms,
            "annual_rate": rates,
            "penalty_rate": penalty,
            "principal": principal,
            "start_date": start,
        }
    ).select(
        "i",
        "b",
        loan_id=_ids("L", "i", 8),
        borrower_id=_ids("B", "b", 8),
        product=_pick_series(codes, "p"),
        currency=pl.lit("CNY"),
        principal="principal",
        annual_rate="annual_rate",
        penalty_rate="penalty_rate",
        term=pl.col("term").cast(pl.Int32),
        start_date=pl.col("start_date").cast(pl.Date),
        method=_pick_series(methods, "p"),
    )


# --- behaviour, holds, arrivals ------------------------------------------------------------------------------


def _behaviour(
    rng: np.random.Generator, loans: pl.DataFrame, inst: pl.DataFrame, rates: np.ndarray, horizon: date
) -> pl.DataFrame:
    return behaviour.simulate(rng, loans, inst, rates, horizon)


def arrears_at(loans: pl.DataFrame, events: pl.DataFrame, day: date) -> np.ndarray:
    """Per loan, instalments due before `day` that the payments with a value date before `day` do not cover."""
    start = loans["start_date"].cast(pl.Int64).to_numpy()
    term = loans["term"].to_numpy().astype(np.int64)
    limit = day_number(day)
    due_count = np.zeros(loans.height, dtype=np.int64)
    for k in range(1, int(term.max(initial=0)) + 1):  # due dates are the start plus k months
        due_count += (behaviour.add_months(start, k) < limit) & (k <= term)
    before = events.filter(pl.col("value_date") < day)
    paid = np.zeros(loans.height, dtype=np.int64)
    np.maximum.at(paid, before["i"].to_numpy(), before["paid_to"].to_numpy())
    arrears: np.ndarray = np.maximum(due_count - paid, 0)
    return arrears


def _holds(
    rng: np.random.Generator,
    loans: pl.DataFrame,
    events: pl.DataFrame,
    as_of: date,
    days_ahead: int,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """A few holds of each kind with realistic pause settings; also the deceased borrowers and the day they died."""
    arrears = arrears_at(loans, events, as_of)
    n = loans.height
    n_borrowers = int(loans["b"].to_numpy().max(initial=-1)) + 1
    today = np.datetime64(as_of, "D")
    start = loans["start_date"].to_numpy().astype("datetime64[D]")

    def pick(candidates: np.ndarray, count: float, minimum: int = 1) -> np.ndarray:
        k = min(len(candidates), max(minimum, round(count)))
        return np.sort(rng.choice(candidates, size=k, replace=False)) if k else candidates[:0]

    def ago(lo: int, hi: int, m: int) -> np.ndarray:
        return today - rng.integers(lo, hi + 1, m)

    delinquent = np.flatnonzero(arrears >= 1)
    deep = np.flatnonzero(arrears >= 4)
    current = np.flatnonzero(arrears == 0)
    parts = []

    # Disputes of a charge or an amount: outreach stops while it is investigated, the clock runs on.
    d = pick(delinquent, 0.004 * n)
    d_start = np.maximum(ago(3, 45, len(d)), start[d] + 1)
    resolved = rng.random(len(d)) < 0.3
    d_end = np.where(resolved, today + rng.integers(1, max(2, days_ahead), len(d)), np.datetime64("NaT"))
    parts.append(_hold_rows(loans, d, "dispute", d_start, d_end, clock=False, outreach=True, whole_borrower=False))
    # ... and a couple raised during the simulated month by borrowers who are up to date.
    f = pick(current, 0.0001 * n, minimum=2)
    f_start = today + rng.integers(1, max(2, days_ahead), len(f))
    parts.append(
        _hold_rows(
            loans,
            f,
            "dispute",
            f_start,
            np.full(len(f), np.datetime64("NaT")),
            clock=False,
            outreach=True,
            whole_borrower=False,
        )
    )
    # Hardship (illness, job loss): a 90-day breathing space that stops the clock; statements still go out.
    h = pick(delinquent, 0.003 * n)
    h_start = np.maximum(ago(0, 75, len(h)), start[h] + 1)
    parts.append(
        _hold_rows(loans, h, "hardship", h_start, h_start + 90, clock=True, outreach=False, whole_borrower=True)
    )
    # Legal referral of a long-delinquent loan: collectors stop, the lawyers take over; the debt keeps ageing.
    g = pick(deep, 0.002 * n)
    g_start = np.maximum(ago(10, 150, len(g)), start[g] + 1)
    parts.append(
        _hold_rows(
            loans,
            g,
            "legal",
            g_start,
            np.full(len(g), np.datetime64("NaT")),
            clock=False,
            outreach=True,
            whole_borrower=False,
        )
    )
    # Deceased borrowers: everything stops; the estate is dealt with apart from collections.
    first_loan = loans.group_by("b").agg(pl.col("i").min()).sort("b")["i"].to_numpy()
    dead_b = pick(np.arange(n_borrowers), 0.0005 * n_borrowers, minimum=1 if n_borrowers >= 200 else 0)
    x = first_loan[dead_b]
    x_start = np.maximum(ago(5, 120, len(x)), start[x] + 1)
    parts.append(
        _hold_rows(
            loans,
            x,
            "deceased",
            x_start,
            np.full(len(x), np.datetime64("NaT")),
            clock=True,
            outreach=True,
            whole_borrower=True,
        )
    )

    holds = pl.concat(parts).sort("start_date", "borrower_id", "kind")
    holds = holds.select(_ids("H", pl.int_range(pl.len(), dtype=pl.Int64), 7).alias("hold_id"), *holds.columns)
    deceased = pl.DataFrame({"b": loans["b"].to_numpy()[x], "died": x_start.astype("datetime64[D]")}).with_columns(
        pl.col("died").cast(pl.Date)
    )
    return holds, deceased


def _hold_rows(
    loans: pl.DataFrame,
    idx: np.ndarray,
    kind: str,
    start: np.ndarray,
    end: np.ndarray,
    *,
    clock: bool,
    outreach: bool,
    whole_borrower: bool,
) -> pl.DataFrame:
    picked = loans[idx]
    return pl.DataFrame(
        {
            "borrower_id": picked["borrower_id"],
            "loan_id": pl.Series([None] * len(idx), dtype=pl.String) if whole_borrower else picked["loan_id"],
            "kind": [kind] * len(idx),
            "start_date": pl.Series(start.astype("datetime64[D]")).cast(pl.Date),
            "end_date": pl.Series(end.astype("datetime64[D]")).cast(pl.Date),
            "pauses_clock": [clock] * len(idx),
            "pauses_outreach": [outreach] * len(idx),
        },
        schema={
            "borrower_id": pl.String,
            "loan_id": pl.String,
            "kind": pl.String,
            "start_date": pl.Date,
            "end_date": pl.Date,
            "pauses_clock": pl.Boolean,
            "pauses_outreach": pl.Boolean,
        },
    )


def _drop_after_death(events: pl.DataFrame, loans: pl.DataFrame, deceased: pl.DataFrame) -> pl.DataFrame:
    died = loans.select("i", "b").join(deceased, on="b")
    return (
        events.join(died.select("i", "died"), on="i", how="left")
        .filter(pl.col("died").is_null() | (pl.col("value_date") < pl.col("died")))
        .drop("died")
    )


def _flag_deceased(borrowers: pl.DataFrame, deceased: pl.DataFrame) -> pl.DataFrame:
    dead = deceased.select(borrower_id=_ids("B", "b", 8), _dead=pl.lit(True))
    return (
        borrowers.join(dead, on="borrower_id", how="left", maintain_order="left")
        .with_columns(
            flags=pl.when(pl.col("_dead"))
            .then(pl.concat_str([pl.col("flags"), pl.lit("deceased")], separator=";").str.strip_chars(";"))
            .otherwise(pl.col("flags"))
        )
        .drop("_dead")
    )


def _arrivals(
    rng: np.random.Generator, loans: pl.DataFrame, events: pl.DataFrame, as_of: date, days_ahead: int
) -> tuple[pl.DataFrame, dict[date, pl.DataFrame]]:
    """Payment rows with the day each reaches the lender: history up to `as_of`, then one frame per later day.

    3% of payments reach the lender 1-3 days after their value date (a bank file arriving late: the
    backdated payments); a few payments of the simulated days bounce and are reversed 1-3 days later.
    """
    last = as_of + timedelta(days=days_ahead)
    m = events.height
    late = np.where(rng.random(m) < 0.03, rng.integers(1, 4, m), 0)
    seconds = rng.integers(8 * 3600, 23 * 3600, m)
    arrival = events["value_date"].cast(pl.Int64).to_numpy() + late
    # Payment ids follow the order the lender books them in: one integer sort key (instant, then loan).
    order = np.argsort((arrival * 86_400 + seconds) * (1 << 23) + events["i"].to_numpy(), kind="stable")
    keep = order[arrival[order] <= day_number(last)]
    pays = (
        events[keep]
        .with_columns(
            arrival=pl.lit(pl.Series(arrival[keep].astype(np.int32))).cast(pl.Date),
            seconds=pl.lit(pl.Series(seconds[keep])),
        )
        .with_columns(
            payment_id=_ids("P", pl.int_range(pl.len(), dtype=pl.Int64), 10),
            reverses_payment_id=pl.lit(None, pl.String),
        )
    )
    in_window = pays.filter((pl.col("arrival") > as_of) & (pl.col("value_date") <= last - timedelta(days=3)))
    k = min(in_window.height, max(2, in_window.height // 500))
    bounced = in_window[np.sort(rng.choice(in_window.height, size=k, replace=False))] if k else in_window.head(0)
    gap = rng.integers(1, 4, bounced.height)
    reversals = bounced.with_columns(
        reverses_payment_id=pl.col("payment_id"),
        payment_id=_ids("R", pl.int_range(pl.len(), dtype=pl.Int64), 10),
        value_date=pl.max_horizontal("value_date", "arrival") + pl.duration(days=pl.lit(pl.Series(gap))),
    ).with_columns(arrival=pl.col("value_date"))

    def rows(frame: pl.DataFrame) -> pl.DataFrame:
        return frame.select(
            "payment_id",
            pl.lit(loans["loan_id"]).gather(pl.col("i")).alias("loan_id"),
            "value_date",
            amount=_major("amount"),
            reverses_payment_id="reverses_payment_id",
            booked_at=(pl.col("arrival").cast(pl.Datetime("ms")) + pl.duration(seconds="seconds")).dt.strftime(
                "%Y-%m-%dT%H:%M:%S+08:00"
            ),
            _arrival="arrival",
        )

    history = rows(pays.filter(pl.col("arrival") <= as_of)).drop("_arrival")
    future = rows(pl.concat([pays.filter(pl.col("arrival") > as_of), reversals]).sort("arrival", "seconds"))
    daily = {
        as_of + timedelta(days=d): future.filter(pl.col("_arrival") == as_of + timedelta(days=d)).drop("_arrival")
        for d in range(1, days_ahead + 1)
    }
    return history, daily


# --- the files -------------------------------------------------------------------------------------------------


def _major(column: str, scale: int = 2) -> pl.Expr:
    """Integer minor units as an exact Decimal in major units (a whole number of fen divided by 100 is exact)."""
    major: pl.Expr = pl.col(column).cast(pl.Decimal(38, scale)) / 10**scale
    return major


def _rate(column: str) -> pl.Expr:
    """A rate scaled by RATE_SCALE as an exact Decimal fraction with four decimals (the demo's rates need no more)."""
    return pl.format("0.{}", (pl.col(column) // (RATE_SCALE // 10_000)).cast(pl.String).str.zfill(4)).str.to_decimal(
        scale=4
    )


def _loans_frame(loans: pl.DataFrame) -> pl.DataFrame:
    if loans.filter(pl.col("annual_rate") % (RATE_SCALE // 10_000) != 0).height:
        raise ValueError("demo rates must have at most four decimals")
    return loans.select(
        "loan_id",
        "borrower_id",
        "product",
        "currency",
        principal=_major("principal"),
        annual_rate=_rate("annual_rate"),
        penalty_rate=_rate("penalty_rate"),
        term="term",
        start_date="start_date",
        method="method",
    )


def _instalments_frame(loans: pl.DataFrame, inst: pl.DataFrame) -> pl.DataFrame:
    """`inst` is sorted by loan and seq, and `i` indexes `loans`: a gather, not a join."""
    return inst.select(
        loan_id=pl.lit(loans["loan_id"]).gather(pl.col("i")),
        seq="seq",
        due_date="due_date",
        principal=_major("principal"),
        interest=_major("interest"),
        fee=_major("fee"),
    )


def write_book(book: GeneratedBook, directory: Path, fmt: Literal["csv", "parquet"] = "csv") -> Path:
    """Write products.yaml and the six book files into `directory` (created; existing book files replaced)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "products.yaml").write_text(
        yaml.safe_dump(book.products, allow_unicode=True, sort_keys=False), encoding="utf-8"
    )
    for table, frame in book.tables().items():
        write_table(frame, directory, table, fmt)
    return directory


def write_table(frame: pl.DataFrame, directory: Path, table: str, fmt: Literal["csv", "parquet"] = "csv") -> Path:
    """Write one book file, removing the same table in the other format (the importer refuses both at once)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for suffix in (".csv", ".parquet"):
        (directory / f"{table}{suffix}").unlink(missing_ok=True)
    path = directory / f"{table}.{fmt}"
    if fmt == "csv":
        frame.write_csv(path)
    elif fmt == "parquet":
        frame.write_parquet(path)
    else:
        raise ValueError(f"unknown format {fmt!r}: csv or parquet")
    return path
