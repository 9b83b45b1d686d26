"""The set-based ledger: every loan's state as of a date, computed from its dated events in a few vectorised passes.

Semantics are specified in docs/ledger.md. In short: effective payments (value date <= D, not voided
by a reversal dated <= D) meet what is owed through the product's waterfall in (value date, key) order;
penalty interest accrues daily on each instalment's unpaid principal from the day after due date +
grace days, on the principal left at the END of each day, the daily amount rounded once.

There is no per-loan loop. Loans whose instalments were all settled before penalty could start (most
of a book) are allocated in one cumulative-sum pass; only loans that ever carried penalty go through
the event-rank loop, each pass vectorised over all of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta

import polars as pl

from duecourse.domain import frames as f
from duecourse.domain.conventions import COMPONENTS, AllocationMode, ProductConventions
from duecourse.domain.money import RATE_SCALE

I128 = pl.Int128
_REM = {c: f"rem_{c}" for c in COMPONENTS}  # remaining (unpaid) amount of each component per instalment
_RANK = {c: f"rank_{c}" for c in COMPONENTS}  # the component's position in the product's waterfall


def _conventions_frame(conventions: Mapping[str, ProductConventions]) -> pl.DataFrame:
    rows = []
    for product, c in conventions.items():
        row: dict[str, object] = {
            "product": product,
            "rounding_mode": c.rounding_mode.value,
            "rounding_unit": c.rounding_unit,
            "year_days": c.day_count.year_days,
            "grace_days": c.grace_days,
            "component_first": c.allocation_mode is AllocationMode.COMPONENT_FIRST,
            "holds_pause_penalty": c.holds_pause_penalty,
        }
        row.update({_RANK[comp]: c.allocation_order.index(comp) for comp in COMPONENTS})
        rows.append(row)
    schema = {
        "product": pl.String, "rounding_mode": pl.String, "rounding_unit": pl.Int64, "year_days": pl.Int64,
        "grace_days": pl.Int32, "component_first": pl.Boolean, "holds_pause_penalty": pl.Boolean,
        **{_RANK[comp]: pl.Int8 for comp in COMPONENTS},
    }
    return pl.DataFrame(rows, schema=schema)


def round_div_expr(numerator: pl.Expr, denominator: pl.Expr, mode: pl.Expr, unit: pl.Expr) -> pl.Expr:
    """Vectorised `domain.money.round_div` for non-negative numerators (Int128 in, Int64 out)."""
    den = denominator.cast(I128) * unit.cast(I128)
    q = numerator // den
    r = numerator - q * den
    up = (
        pl.when(r == 0).then(False)
        .when(mode == "up").then(True)
        .when(mode == "half_up").then(2 * r >= den)
        .when(mode == "half_even").then((2 * r > den) | ((2 * r == den) & (q % 2 == 1)))
        .otherwise(False)
    )
    return ((q + up.cast(I128)) * unit.cast(I128)).cast(pl.Int64)


def effective_payments(payments: pl.DataFrame, as_of: date) -> pl.DataFrame:
    """Payments that count as of `as_of`: value date on or before it, and not voided by a reversal dated on or before it."""
    known = payments.filter(pl.col("value_date") <= as_of)
    voided = known.filter(pl.col("reverses_payment_key").is_not_null()).select(
        pl.col("reverses_payment_key").alias("payment_key")
    )
    return (
        known.filter(pl.col("reverses_payment_key").is_null())
        .join(voided, on="payment_key", how="anti")
        .select("payment_key", "loan_key", "value_date", "amount")
    )


def _daily_penalty(principal: pl.Expr) -> pl.Expr:
    """One day's penalty on `principal`, rounded once by the product's mode and unit."""
    return round_div_expr(
        principal.cast(I128) * pl.col("penalty_rate").cast(I128),
        pl.lit(RATE_SCALE, I128) * pl.col("year_days").cast(I128),
        pl.col("rounding_mode"),
        pl.col("rounding_unit"),
    )


def _clock_hold_days(holds: pl.DataFrame, loans: pl.DataFrame, as_of: date) -> pl.DataFrame:
    """(loan_key, day) for each distinct day up to `as_of` on which a clock-pausing hold covers the loan."""
    h = holds.filter(pl.col("pauses_clock") & (pl.col("start_date") <= as_of))
    if h.height == 0:
        return pl.DataFrame(schema={"loan_key": pl.Int64, "day": pl.Date})
    per_loan = h.filter(pl.col("loan_key").is_not_null()).select("loan_key", "start_date", "end_date")
    per_borrower = (
        h.filter(pl.col("loan_key").is_null())
        .select("borrower_key", "start_date", "end_date")
        .join(loans.select("loan_key", "borrower_key"), on="borrower_key")
        .select("loan_key", "start_date", "end_date")
    )
    return (
        pl.concat([per_loan, per_borrower])
        .with_columns(end_date=pl.min_horizontal(pl.col("end_date").fill_null(as_of), pl.lit(as_of)))
        .filter(pl.col("end_date") >= pl.col("start_date"))
        .select("loan_key", day=pl.date_ranges("start_date", "end_date"))
        .explode("day")
        .unique()
        .sort("loan_key", "day")
    )


def _paused_between(rows: pl.DataFrame, hold_days: pl.DataFrame, first: str, last: str, out: str) -> pl.DataFrame:
    """Add `out`: hold days d with first <= d <= last for each row's loan (0 when last < first)."""
    if hold_days.height == 0:
        return rows.with_columns(pl.lit(0, pl.Int64).alias(out))
    # Days are packed beside loan_key (20 bits: days since 1970 up to 2^20) so one as-of join serves all loans.
    def day_key(day: pl.Expr) -> pl.Expr:
        return _composite(pl.col("loan_key"), day.cast(pl.Int32).clip(lower_bound=0), 20)

    indexed = hold_days.sort("loan_key", "day").select(
        _key=day_key(pl.col("day")),
        _owner=pl.col("loan_key"),
        n=pl.int_range(1, pl.len() + 1, dtype=pl.Int64).over("loan_key"),
    )

    def upto(col: pl.Expr, name: str) -> pl.DataFrame:
        probe = rows.select(pl.int_range(pl.len(), dtype=pl.Int64).alias("_row"), "loan_key", _key=day_key(col)).sort("_key")
        return (
            probe.join_asof(indexed, on="_key", strategy="backward", check_sortedness=False)
            .select("_row", pl.when(pl.col("_owner") == pl.col("loan_key")).then(pl.col("n")).otherwise(0).alias(name))
            .sort("_row")
        )

    hi = upto(pl.col(last), "_hi").get_column("_hi")
    lo = upto(pl.col(first) - timedelta(days=1), "_lo").get_column("_lo")
    return rows.with_columns((hi - lo).clip(lower_bound=0).alias(out)).with_columns(
        pl.when(pl.col(last) < pl.col(first)).then(0).otherwise(pl.col(out)).alias(out)
    )


def _cum_within_loan(expr: pl.Expr) -> pl.Expr:
    """Running total of `expr` within each loan, for frames sorted by loan_key (much faster than `.over`)."""
    running = expr.cum_sum()
    start = pl.when(pl.col("loan_key").is_first_distinct()).then(running - expr).forward_fill()
    return running - start


def _composite(loan_key: pl.Expr, value: pl.Expr, bits: int) -> pl.Expr:
    """loan_key and a non-negative value packed into one sortable Int64, for as-of joins without `by`."""
    return loan_key.cast(pl.Int64) * (1 << bits) + value.cast(pl.Int64)


def _split_by_order(avail: pl.Expr) -> list[pl.Expr]:
    """Allocate `avail` within one instalment across its components in the product's waterfall order."""
    takes: list[pl.Expr] = []
    left = avail
    for pos in range(len(COMPONENTS)):
        owed = pl.lit(0, pl.Int64)
        for comp in COMPONENTS:
            owed = pl.when(pl.col(_RANK[comp]) == pos).then(pl.col(_REM[comp])).otherwise(owed)
        take = pl.min_horizontal(left, owed)
        takes.append(take)
        left = left - take
    exprs = []
    for comp in COMPONENTS:
        got = pl.lit(0, pl.Int64)
        for pos in range(len(COMPONENTS)):
            got = pl.when(pl.col(_RANK[comp]) == pos).then(takes[pos]).otherwise(got)
        exprs.append((pl.col(_REM[comp]) - got).alias(_REM[comp]))
    return exprs


def _allocate_instalment_first(rows: pl.DataFrame, amount: str, eligible: pl.Expr) -> pl.DataFrame:
    """Pay `amount` (per loan) into eligible rows, oldest instalment first; adds `_spent` per row."""
    owed = pl.when(eligible).then(pl.sum_horizontal(*(pl.col(c) for c in _REM.values()))).otherwise(0)
    rows = rows.with_columns(_owed=owed).with_columns(
        _before=_cum_within_loan(pl.col("_owed")) - pl.col("_owed")
    )
    avail = pl.min_horizontal((pl.col(amount) - pl.col("_before")).clip(lower_bound=0), pl.col("_owed"))
    rows = rows.with_columns(_avail=pl.when(pl.col(amount).is_null()).then(0).otherwise(avail))
    return rows.with_columns(_split_by_order(pl.col("_avail"))).with_columns(_spent=pl.col("_avail")).drop(
        "_owed", "_before", "_avail"
    )


def _allocate_component_first(rows: pl.DataFrame, amount: str, due: pl.Expr) -> pl.DataFrame:
    """Each component across due instalments (oldest first) in waterfall order, then future instalments."""
    rows = rows.with_columns(_left=pl.col(amount).fill_null(0), _spent=pl.lit(0, pl.Int64))
    for pos in range(len(COMPONENTS)):
        owed = pl.lit(0, pl.Int64)
        for comp in COMPONENTS:
            owed = pl.when(pl.col(_RANK[comp]) == pos).then(pl.col(_REM[comp])).otherwise(owed)
        rows = rows.with_columns(_owed=pl.when(due).then(owed).otherwise(0)).with_columns(
            _before=_cum_within_loan(pl.col("_owed")) - pl.col("_owed")
        )
        rows = rows.with_columns(
            _take=pl.min_horizontal((pl.col("_left") - pl.col("_before")).clip(lower_bound=0), pl.col("_owed"))
        )
        rows = rows.with_columns(
            [
                pl.when(pl.col(_RANK[comp]) == pos).then(pl.col(_REM[comp]) - pl.col("_take")).otherwise(pl.col(_REM[comp]))
                for comp in COMPONENTS
            ]
        ).with_columns(
            _spent=pl.col("_spent") + pl.col("_take"),
            _left=pl.col("_left") - pl.col("_take").sum().over("loan_key"),
        )
    done = rows.drop("_owed", "_before", "_take").rename({"_spent": "_spent_due"})
    done = _allocate_instalment_first(done, "_left", ~due)
    return done.with_columns(_spent=pl.col("_spent") + pl.col("_spent_due")).drop("_spent_due", "_left")


def _accrue(rows: pl.DataFrame, through: pl.Expr, hold_days: pl.DataFrame) -> pl.DataFrame:
    """Add penalty for the days after `accrued_through` up to `through` (per row), on the current unpaid principal."""
    rows = rows.with_columns(
        _first=pl.max_horizontal(pl.col("accrued_through") + timedelta(days=1), pl.col("penalty_start")),
        _last=through,
    )
    rows = rows.with_columns(
        _days=(pl.col("_last") - pl.col("_first")).dt.total_days().clip(lower_bound=-1) + 1
    )
    if rows.get_column("holds_pause_penalty").any():
        rows = _paused_between(rows, hold_days, "_first", "_last", "_paused").with_columns(
            _days=pl.when(pl.col("holds_pause_penalty")).then(pl.col("_days") - pl.col("_paused")).otherwise(pl.col("_days"))
        ).drop("_paused")
    return rows.with_columns(
        rem_penalty=pl.col("rem_penalty") + _daily_penalty(pl.col("rem_principal")) * pl.col("_days"),
        accrued_through=pl.max_horizontal(pl.col("accrued_through"), pl.col("_last")),
    ).drop("_first", "_last", "_days")


def _settle_event_by_event(rows: pl.DataFrame, pays: pl.DataFrame, as_of: date, hold_days: pl.DataFrame) -> pl.DataFrame:
    """Loans that carried penalty: apply payments one rank at a time (vectorised over loans), accruing in between."""
    pays = pays.sort("loan_key", "value_date", "payment_key").with_columns(
        rank=pl.int_range(1, pl.len() + 1, dtype=pl.Int32).over("loan_key")
    )
    rows = rows.with_columns(
        accrued_through=pl.col("penalty_start") - timedelta(days=1), credit=pl.lit(0, pl.Int64)
    )
    max_rank = int(pays.get_column("rank").max() or 0)
    for k in range(1, max_rank + 1):
        ev = pays.filter(pl.col("rank") == k).select("loan_key", _t="value_date", _amount="amount")
        rows = rows.join(ev, on="loan_key", how="left", maintain_order="left")
        has = pl.col("_t").is_not_null()
        rows = _accrue(rows, pl.when(has).then(pl.col("_t") - timedelta(days=1)).otherwise(pl.col("accrued_through")), hold_days)
        if rows.get_column("component_first").any():
            cf = _allocate_component_first(rows, "_amount", pl.col("due_date") <= pl.col("_t"))
            inf = _allocate_instalment_first(rows, "_amount", pl.lit(True))
            rows = cf.with_columns(
                [pl.when(pl.col("component_first")).then(pl.col(c)).otherwise(inf.get_column(c)) for c in (*_REM.values(), "_spent")]
            )
        else:
            rows = _allocate_instalment_first(rows, "_amount", pl.lit(True))
        rows = rows.with_columns(
            credit=pl.col("credit")
            + pl.when(pl.col("seq") == pl.col("seq").max().over("loan_key"))
            .then(pl.col("_amount").fill_null(0) - pl.col("_spent").sum().over("loan_key"))
            .otherwise(0)
        ).drop("_t", "_amount", "_spent")
    return _accrue(rows, pl.lit(as_of), hold_days).drop("accrued_through")


def _settle_cumulatively(rows: pl.DataFrame) -> pl.DataFrame:
    """Loans that never carried penalty: total effective payments meet instalments in order, in one pass."""
    rows = _allocate_instalment_first(rows, "paid_total", pl.lit(True))
    return rows.with_columns(
        credit=pl.when(pl.col("seq") == pl.col("seq").max().over("loan_key"))
        .then(pl.col("paid_total") - pl.col("_spent").sum().over("loan_key"))
        .otherwise(0)
    ).drop("_spent")


def settle(
    loans: pl.DataFrame,
    instalments: pl.DataFrame,
    payments: pl.DataFrame,
    holds: pl.DataFrame,
    conventions: Mapping[str, ProductConventions],
    as_of: date,
) -> pl.DataFrame:
    """Per-instalment remaining amounts as of `as_of` (rem_penalty, rem_fee, rem_interest, rem_principal) + loan credit."""
    conv = _conventions_frame(conventions)
    live = loans.filter(pl.col("start_date") <= as_of).join(conv, on="product", how="inner")
    pays = effective_payments(payments, as_of).join(live.select("loan_key"), on="loan_key", how="semi")
    totals = pays.group_by("loan_key").agg(paid_total=pl.col("amount").sum())
    rows = (
        instalments.join(live, on="loan_key", how="inner", suffix="_loan")
        .sort("loan_key", "seq")
        .join(totals, on="loan_key", how="left", maintain_order="left")
        .with_columns(
            paid_total=pl.col("paid_total").fill_null(0),
            penalty_start=pl.col("due_date") + pl.duration(days=pl.col("grace_days") + 1),
            rem_penalty=pl.lit(0, pl.Int64),
            rem_fee=pl.col("fee"),
            rem_interest=pl.col("interest"),
            rem_principal=pl.col("principal"),
        )
    )
    # Where would each instalment's principal be fully paid if no penalty existed? A loan is "clean" when every
    # instalment whose penalty could have started by as_of was settled no later than that first penalty day.
    scheduled = pl.col("fee") + pl.col("interest") + pl.col("principal")
    # Amounts are packed beside loan_key (40 bits: up to 10^12 minor units) so one as-of join serves all loans.
    cum_pays = pays.sort("loan_key", "value_date", "payment_key").select(
        _key=_composite(pl.col("loan_key"), _cum_within_loan(pl.col("amount")), 40),
        paid_by=pl.col("loan_key"),
        settled_on=pl.col("value_date"),
    )
    probe = rows.select(
        "loan_key", "seq", "penalty_start", "penalty_rate", "component_first",
        _key=_composite(pl.col("loan_key"), _cum_within_loan(scheduled), 40),
    )
    settled = probe.sort("_key").join_asof(cum_pays, on="_key", strategy="forward", check_sortedness=False).with_columns(
        settled_on=pl.when(pl.col("paid_by") == pl.col("loan_key")).then(pl.col("settled_on"))
    )
    dirty = settled.filter(
        (pl.col("penalty_rate") > 0)
        & (pl.col("penalty_start") <= as_of)
        & (pl.col("settled_on").is_null() | (pl.col("settled_on") > pl.col("penalty_start")))
        | pl.col("component_first")
    ).select("loan_key").unique()

    hold_days = _clock_hold_days(holds, live, as_of)
    clean_rows = _settle_cumulatively(rows.join(dirty, on="loan_key", how="anti", maintain_order="left"))
    dirty_rows = rows.join(dirty, on="loan_key", how="semi", maintain_order="left")
    if dirty_rows.height:
        dirty_rows = _settle_event_by_event(dirty_rows, pays.join(dirty, on="loan_key", how="semi"), as_of, hold_days)
        settled_rows = pl.concat([clean_rows, dirty_rows.select(clean_rows.columns)])
    else:
        settled_rows = clean_rows
    return settled_rows


def ledger_state(
    loans: pl.DataFrame,
    instalments: pl.DataFrame,
    payments: pl.DataFrame,
    holds: pl.DataFrame,
    conventions: Mapping[str, ProductConventions],
    as_of: date,
) -> pl.DataFrame:
    """One row per loan started on or before `as_of`, with the LEDGER_STATE columns (see docs/ledger.md)."""
    rows = settle(loans, instalments, payments, holds, conventions, as_of)
    d = pl.lit(as_of)
    scheduled_left = pl.col("rem_fee") + pl.col("rem_interest") + pl.col("rem_principal")
    all_left = scheduled_left + pl.col("rem_penalty")
    is_due = pl.col("due_date") <= d
    is_past = pl.col("due_date") < d

    def total(expr: pl.Expr, where: pl.Expr) -> pl.Expr:
        return pl.when(where).then(expr).otherwise(0).sum()

    per_loan = rows.group_by("loan_key").agg(
        *(total(pl.col(_REM[c]), is_due).alias(f"due_{c}") for c in ("principal", "interest", "fee", "penalty")),
        *(total(pl.col(_REM[c]), is_past).alias(f"overdue_{c}") for c in ("principal", "interest", "fee", "penalty")),
        outstanding_principal=pl.col("rem_principal").sum(),
        outstanding_total=all_left.sum(),
        paid_total=pl.col("paid_total").first(),
        credit_balance=pl.col("credit").sum(),
        oldest_unpaid_due_date=pl.col("due_date").filter(is_past & (scheduled_left > 0)).min(),
        next_due_date=pl.col("due_date").filter(~is_due & (all_left > 0)).min(),
        product=pl.col("product").first(),
        grace_days=pl.col("grace_days").first(),
    )
    next_amount = rows.join(
        per_loan.select("loan_key", "next_due_date"), on="loan_key"
    ).filter(pl.col("due_date") == pl.col("next_due_date")).group_by("loan_key").agg(next_due_amount=all_left.sum())
    per_loan = per_loan.join(next_amount, on="loan_key", how="left").with_columns(
        overdue_total=pl.sum_horizontal(*(pl.col(f"overdue_{c}") for c in ("principal", "interest", "fee", "penalty"))),
        next_due_amount=pl.col("next_due_amount").fill_null(0),
    )
    hold_days = _clock_hold_days(holds, loans.join(per_loan.select("loan_key"), on="loan_key", how="semi"), as_of)
    per_loan = _paused_between(
        per_loan.with_columns(_from=pl.col("oldest_unpaid_due_date") + timedelta(days=1), _to=d),
        hold_days,
        "_from",
        "_to",
        "paused_days",
    ).with_columns(
        paused_days=pl.when(pl.col("oldest_unpaid_due_date").is_null()).then(0).otherwise(pl.col("paused_days")).cast(pl.Int32)
    )
    per_loan = per_loan.with_columns(
        days_past_due=pl.when(pl.col("oldest_unpaid_due_date").is_null())
        .then(0)
        .otherwise(((d - pl.col("oldest_unpaid_due_date")).dt.total_days() - pl.col("paused_days")).clip(lower_bound=0))
        .cast(pl.Int32),
        as_of=d,
    )
    return f.conform(_with_buckets(per_loan, conventions), f.LEDGER_STATE).sort("loan_key")


def _with_buckets(per_loan: pl.DataFrame, conventions: Mapping[str, ProductConventions]) -> pl.DataFrame:
    """Bucket by the product's ranges; within the grace days a loan is still current."""
    table = pl.DataFrame(
        [(p, b.label, b.min_dpd) for p, c in conventions.items() for b in c.buckets],
        schema={"product": pl.String, "bucket": pl.String, "min_dpd": pl.Int32},
        orient="row",
    ).sort("min_dpd")
    graced = pl.col("days_past_due") <= pl.col("grace_days")
    out = (
        per_loan.with_columns(_dpd_for_bucket=pl.when(graced).then(0).otherwise(pl.col("days_past_due")).cast(pl.Int32))
        .sort("_dpd_for_bucket")
        .join_asof(
            table, left_on="_dpd_for_bucket", right_on="min_dpd", by="product", strategy="backward",
            check_sortedness=False,
        )
    )
    return out.drop("_dpd_for_bucket", "min_dpd")


def transitions(
    today: pl.DataFrame, yesterday: pl.DataFrame, conventions: Mapping[str, ProductConventions]
) -> pl.DataFrame:
    """(loan_key, transition): how each loan's bucket moved since the day before (frames.TRANSITIONS).

    Buckets are compared by their position in the product's bucket list; a loan absent yesterday
    (not started) counts as current yesterday.
    """
    pos: dict[str, int] = {}
    for c in conventions.values():
        for i, b in enumerate(c.buckets):
            pos[b.label] = max(pos.get(b.label, 0), i)
    order = pl.DataFrame({"bucket": list(pos), "pos": list(pos.values())}, schema={"bucket": pl.String, "pos": pl.Int32})
    t = today.select("loan_key", "bucket").join(
        yesterday.select("loan_key", pl.col("bucket").alias("prev")), on="loan_key", how="left"
    )
    t = t.join(order, on="bucket").join(order.rename({"bucket": "prev", "pos": "prev_pos"}), on="prev", how="left")
    t = t.with_columns(prev_pos=pl.col("prev_pos").fill_null(0))
    return t.select(
        "loan_key",
        transition=pl.when((pl.col("prev_pos") == 0) & (pl.col("pos") > 0)).then(pl.lit("new"))
        .when((pl.col("prev_pos") > 0) & (pl.col("pos") == 0)).then(pl.lit("cure"))
        .when(pl.col("pos") > pl.col("prev_pos")).then(pl.lit("roll_forward"))
        .when(pl.col("pos") < pl.col("prev_pos")).then(pl.lit("roll_back"))
        .otherwise(pl.lit("steady")),
    ).sort("loan_key")
