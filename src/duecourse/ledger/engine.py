"""The set-based ledger: every loan's state as of a date, computed from its dated events in a few vectorised passes.

The rules are specified in docs/ledger.md; `tests/reference_ledger.py` restates them day by day and the
tests prove both agree. In short: effective payments (value date <= D, not voided by a reversal dated
<= D) meet what is owed through the product's waterfall in (value date, payment key) order; penalty
interest accrues daily on each instalment's unpaid principal from the day after due date + grace days,
on the principal left at the END of the day, the daily amount rounded once.

There is no per-loan loop. Frames are kept sorted by loan (checked, sorted only if needed), so running
totals within a loan are a global cumulative sum minus its value where the loan starts. A loan whose
every instalment was settled before its penalty could start (most of a book) is allocated by one
cumulative-sum waterfall of its total payments. Only loans that carried penalty (or, for component-first
products, had two instalments in arrears at once) go through the event loop: its k-th pass applies
every such loan's k-th payment at once, and a loan leaves the loop after its last payment.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date

import polars as pl

from duecourse.domain import frames as f
from duecourse.domain.conventions import AllocationMode, ProductConventions
from duecourse.domain.errors import ConventionError
from duecourse.domain.money import RATE_SCALE, RoundingMode

DAY_BITS = 20  # day numbers (days since 1970-01-01) packed beside loan_key in one sortable Int64 key
_REM = {"penalty": "rem_penalty", "fee": "rem_fee", "interest": "rem_interest", "principal": "rem_principal"}
_AMOUNTS = ("principal", "interest", "fee", "penalty")  # the order LEDGER_STATE lists components in


def ledger_state(
    loans: pl.DataFrame,
    instalments: pl.DataFrame,
    payments: pl.DataFrame,
    holds: pl.DataFrame,
    conventions: Mapping[str, ProductConventions],
    as_of: date,
) -> pl.DataFrame:
    """One LEDGER_STATE row per loan that started on or before `as_of`, sorted by loan_key (docs/ledger.md).

    Loans starting after `as_of` are left out; instalments and payments of loans not in `loans` are ignored.
    Raises ConventionError when a loan's product has no conventions.
    """
    d = _day_number(as_of)
    groups, product_group = _convention_groups(loans, conventions)
    live = _in_order(
        loans.filter(pl.col("start_date") <= as_of).select(
            "loan_key", "borrower_key", "penalty_rate", group=pl.col("product").replace_strict(product_group, return_dtype=pl.Int32)
        ),
        ["loan_key"],
    )
    pays = _payment_events(payments, as_of)
    paid = pays.filter(pl.col("_last")).select("loan_key", paid_total=pl.col("_cum"))
    live = live.join(paid, on="loan_key", how="left", maintain_order="left").with_columns(pl.col("paid_total").fill_null(0))
    rows = _instalment_rows(instalments, live)
    pauses = _pause_intervals(holds, live, d)

    parts = []
    for g, conv in enumerate(groups):
        part = rows if len(groups) == 1 else rows.filter(pl.col("group") == g)
        if part.height:
            parts.append(_settle_group(part, pays, conv, d, pauses))
    summary = pl.concat(parts) if parts else _summarise(rows.with_columns(_zero_rems()), d)
    return _finish(live, summary, groups, pauses, d, as_of)


def effective_payments(payments: pl.DataFrame, as_of: date) -> pl.DataFrame:
    """Payments that count as of `as_of`: value date on or before it, not voided by a reversal valued on or before it."""
    known = payments.filter(pl.col("value_date") <= as_of)
    is_reversal = pl.col("reverses_payment_key").is_not_null()
    voided = known.filter(is_reversal).get_column("reverses_payment_key")
    kept = known.filter(~is_reversal)
    if voided.len():
        kept = kept.filter(~pl.col("payment_key").is_in(voided.implode()))
    return kept.select("payment_key", "loan_key", "value_date", "amount")


def transitions(
    today: pl.DataFrame, yesterday: pl.DataFrame, conventions: Mapping[str, ProductConventions] | None = None
) -> pl.DataFrame:
    """(loan_key, transition) for each loan in `today`: its bucket move since `yesterday` (frames.TRANSITIONS).

    Buckets are ordered as in the products' conventions (the default buckets without conventions); a
    product's first bucket is "not delinquent". A loan absent yesterday counts as not delinquent yesterday.
    """
    order = _bucket_positions(conventions)
    unknown = sorted(set(today.get_column("bucket").drop_nulls().unique()) - set(order))
    if unknown:
        raise ConventionError("buckets", f"bucket labels {unknown} are not in any product's buckets")
    pos = pl.DataFrame({"bucket": list(order), "pos": list(order.values())}, schema={"bucket": pl.String, "pos": pl.Int32})
    moved = (
        today.select("loan_key", "bucket")
        .join(pos, on="bucket", how="left", maintain_order="left")
        .join(
            yesterday.select("loan_key", "bucket").join(pos, on="bucket", how="left").select("loan_key", prev="pos"),
            on="loan_key",
            how="left",
            maintain_order="left",
        )
        .with_columns(pl.col("prev").fill_null(0))
    )
    now, prev = pl.col("pos"), pl.col("prev")
    return moved.select(
        "loan_key",
        transition=pl.when((prev == 0) & (now > 0)).then(pl.lit("new"))
        .when((prev > 0) & (now == 0)).then(pl.lit("cure"))
        .when(now > prev).then(pl.lit("roll_forward"))
        .when(now < prev).then(pl.lit("roll_back"))
        .otherwise(pl.lit("steady")),
    )


# --- preparing the frames ---------------------------------------------------------------------------------------


def _day_number(day: date) -> int:
    n = (day - date(1970, 1, 1)).days
    if not 0 <= n < 1 << DAY_BITS:
        raise ValueError(f"date {day} is outside the ledger's range (1970 to 4840)")
    return n


def _convention_groups(
    loans: pl.DataFrame, conventions: Mapping[str, ProductConventions]
) -> tuple[list[ProductConventions], dict[str, int]]:
    """Products grouped by identical conventions: each group is settled with its conventions as constants."""
    missing = sorted(set(loans.get_column("product").unique()) - set(conventions))
    if missing:
        raise ConventionError("product", f"no conventions for product(s) {', '.join(map(str, missing))}")
    groups: list[ProductConventions] = []
    product_group: dict[str, int] = {}
    for product, conv in conventions.items():
        if conv not in groups:
            groups.append(conv)
        product_group[product] = groups.index(conv)
    return groups, product_group


def _in_order(frame: pl.DataFrame, keys: Sequence[str]) -> pl.DataFrame:
    """`frame` sorted by `keys` (checked first: books usually arrive in order), flagged sorted on the first key."""
    ordered: pl.Expr | None = None
    for key in reversed(keys):
        step = pl.col(key).to_physical().diff()
        ordered = step >= 0 if ordered is None else (step > 0) | ((step == 0) & ordered)
    assert ordered is not None
    if frame.height > 1 and not frame.select(ordered.all()).item():
        frame = frame.sort(keys)
    return frame.with_columns(pl.col(keys[0]).set_sorted())


def _loan_edges(frame: pl.DataFrame) -> pl.DataFrame:
    """Mark each loan's first and last row (frames sorted by loan_key; every later filter keeps whole loans)."""
    key = pl.col("loan_key")
    return frame.with_columns(
        _first=(key != key.shift(1)).fill_null(True), _last=(key != key.shift(-1)).fill_null(True)
    )


def _cum_in_loan(x: pl.Expr) -> pl.Expr:
    """Running total of `x` within each loan, this row included: the global running total minus its value before the loan."""
    run = x.cum_sum()
    return run - pl.when(pl.col("_first")).then(run - x).forward_fill()


def _rank_in_loan() -> pl.Expr:
    """1, 2, ... along each loan's rows."""
    row = pl.int_range(pl.len(), dtype=pl.Int64)
    return (row - pl.when(pl.col("_first")).then(row).forward_fill() + 1).cast(pl.Int32)


def _loan_total(x: pl.Expr) -> pl.Expr:
    """`x` summed over the row's loan, repeated on every row of the loan."""
    return pl.when(pl.col("_last")).then(_cum_in_loan(x)).backward_fill()


def _payment_events(payments: pl.DataFrame, as_of: date) -> pl.DataFrame:
    """Effective payments in application order (loan, value day, payment key) with the loan's running total `_cum`."""
    pays = effective_payments(payments, as_of).select(
        "loan_key", "payment_key", "amount", day=pl.col("value_date").cast(pl.Int32)
    )
    pays = _loan_edges(_in_order(pays, ["loan_key", "day", "payment_key"]))
    return pays.with_columns(_cum=_cum_in_loan(pl.col("amount")))


def _instalment_rows(instalments: pl.DataFrame, live: pl.DataFrame) -> pl.DataFrame:
    """One row per instalment of a live loan, oldest first within each loan, with the loan's penalty rate and payments."""
    rows = instalments.select(
        "loan_key", "seq", "principal", "interest", "fee", due=pl.col("due_date").cast(pl.Int32)
    )
    rows = _in_order(rows, ["loan_key", "due", "seq"]).join(
        live.select("loan_key", "penalty_rate", "paid_total", "group"), on="loan_key", how="inner", maintain_order="left"
    )
    return _loan_edges(rows).with_columns(_owed=pl.col("fee") + pl.col("interest") + pl.col("principal")).with_columns(
        _owed_through=_cum_in_loan(pl.col("_owed"))
    )


def _pause_intervals(holds: pl.DataFrame, live: pl.DataFrame, d: int) -> pl.DataFrame:
    """Clock-pausing hold days of each live loan up to day `d`, as disjoint (loan_key, start, end) day intervals."""
    h = holds.filter(pl.col("pauses_clock") & (pl.col("start_date").cast(pl.Int32) <= d)).select(
        "loan_key", "borrower_key",
        start=pl.col("start_date").cast(pl.Int32),
        end=pl.min_horizontal(pl.col("end_date").cast(pl.Int32).fill_null(d), pl.lit(d, pl.Int32)),
    )
    per_loan = h.filter(pl.col("loan_key").is_not_null()).select("loan_key", "start", "end")
    per_borrower = (
        h.filter(pl.col("loan_key").is_null()).drop("loan_key").join(live.select("loan_key", "borrower_key"), on="borrower_key")
    )
    spans = (
        pl.concat([per_loan, per_borrower.select("loan_key", "start", "end")])
        .join(live.select("loan_key"), on="loan_key", how="semi")
        .filter(pl.col("end") >= pl.col("start"))
        .sort("loan_key", "start")
    )
    # Overlapping or touching holds merge, so a day covered twice counts once.
    reach = pl.col("end").cum_max().shift(1).over("loan_key")
    return (
        spans.with_columns(_block=(reach.is_null() | (pl.col("start") > reach + 1)).cum_sum())
        .group_by("loan_key", "_block")
        .agg(pl.col("start").min(), pl.col("end").max())
        .select("loan_key", "start", "end")
        .sort("loan_key", "start")
    )


def _paused_days(frame: pl.DataFrame, first: pl.Expr, last: pl.Expr, pauses: pl.DataFrame) -> pl.Series:
    """For each row of `frame`: paused days of its loan within [first, last] (day numbers; 0 when last < first)."""
    probe = frame.select("loan_key", _a=first, _b=last).with_row_index("_row")
    if pauses.is_empty():
        return pl.Series("_paused", [0] * frame.height, dtype=pl.Int64)
    overlap = (
        pl.min_horizontal(pl.col("_b"), pl.col("end")) - pl.max_horizontal(pl.col("_a"), pl.col("start")) + 1
    ).clip(lower_bound=0)
    hits = probe.join(pauses, on="loan_key").group_by("_row").agg(_paused=overlap.cast(pl.Int64).sum())
    return (
        probe.join(hits, on="_row", how="left", maintain_order="left").get_column("_paused").fill_null(0)
    )


def _paid_through(rows: pl.DataFrame, pays: pl.DataFrame, day: pl.Expr) -> pl.Series:
    """For each row: its loan's effective payments valued on or before `day` (which must not decrease within a loan)."""
    def key(d: pl.Expr) -> pl.Expr:
        return pl.col("loan_key") * (1 << DAY_BITS) + d.cast(pl.Int64).clip(0, (1 << DAY_BITS) - 1)

    probe = rows.select("loan_key", _key=key(day))
    table = pays.select(_key=key(pl.col("day")), _owner=pl.col("loan_key"), _cum=pl.col("_cum"))
    hit = probe.join_asof(table, on="_key", strategy="backward", check_sortedness=False)
    return hit.select(pl.when(pl.col("_owner") == pl.col("loan_key")).then(pl.col("_cum")).otherwise(0)).to_series()


# --- settling: what is left of each instalment ---------------------------------------------------------------


def _settle_group(rows: pl.DataFrame, pays: pl.DataFrame, conv: ProductConventions, d: int, pauses: pl.DataFrame) -> pl.DataFrame:
    """Per-loan summaries for the loans of one conventions group."""
    rows = rows.with_columns(_ps=pl.col("due") + (conv.grace_days + 1))  # first day penalty can accrue
    # Penalty accrues at the end of day _ps on whatever principal is left then; if the payments valued by then
    # cover this instalment and every earlier one, it never carries penalty (by induction over instalments).
    rows = rows.with_columns(_paid_by_ps=_paid_through(rows, pays, pl.col("_ps")))
    late = (pl.col("_ps") <= d) & (pl.col("penalty_rate") > 0) & (pl.col("_paid_by_ps") < pl.col("_owed_through"))
    diverges = pl.when(late).then(pl.col("_ps"))
    if conv.allocation_mode is AllocationMode.COMPONENT_FIRST:
        # Component-first equals the cumulative waterfall while at most one due instalment is unpaid at any payment.
        rows = rows.with_columns(_paid_before_due=_paid_through(rows, pays, pl.col("due") - 1))
        crowded = (pl.col("due") <= d) & (pl.col("_paid_before_due") < pl.col("_owed_through") - pl.col("_owed"))
        diverges = pl.min_horizontal(diverges, pl.when(crowded).then(pl.col("due")))
    rows = rows.with_columns(_diverges=diverges.cast(pl.Int32))
    rows = rows.with_columns(_dirty=_loan_total(pl.col("_diverges").is_not_null().cast(pl.Int32)) > 0)

    clean = _summarise(_allocate_cumulative(rows, pl.col("paid_total"), conv).with_columns(_zero_penalty()), d)
    dirty_rows = rows.filter(pl.col("_dirty"))
    if dirty_rows.is_empty():
        return clean
    dirty = _summarise(_settle_by_events(dirty_rows, pays, conv, d, pauses), d)
    return pl.concat([clean.join(dirty.select("loan_key"), on="loan_key", how="anti"), dirty])


def _allocate_cumulative(rows: pl.DataFrame, paid: pl.Expr, conv: ProductConventions) -> pl.DataFrame:
    """rem_fee/interest/principal when `paid` (per loan) meets the schedule oldest instalment first, in waterfall order.

    Exact while no penalty exists: instalment i is left with clip(owed through i - paid, 0, owed_i), and within
    it component k (waterfall order) with clip(owed before i + components up to k - paid, 0, amount_k).
    """
    reach = pl.col("_owed_through") - pl.col("_owed") - paid
    out = []
    for comp in conv.allocation_order:
        if comp == "penalty":
            continue
        reach = reach + pl.col(comp)
        out.append(pl.min_horizontal(reach.clip(lower_bound=0), pl.col(comp)).alias(_REM[comp]))
    return rows.with_columns(out)


def _settle_by_events(rows: pl.DataFrame, pays: pl.DataFrame, conv: ProductConventions, d: int, pauses: pl.DataFrame) -> pl.DataFrame:
    """Loans whose state departed from the cumulative waterfall: replay their payments from that day, one rank per pass."""
    start = rows.filter(pl.col("_diverges").is_not_null()).group_by("loan_key", maintain_order=True).agg(
        _from=pl.col("_diverges").min()
    )
    mine = pays.join(start, on="loan_key", how="inner", maintain_order="left")
    before = mine.filter(pl.col("day") < pl.col("_from")).group_by("loan_key").agg(_paid_before=pl.col("amount").sum())
    events = _loan_edges(mine.filter(pl.col("day") >= pl.col("_from"))).with_columns(_rank=_rank_in_loan())
    count = events.group_by("loan_key").agg(_events=pl.len().cast(pl.Int32))
    rows = (
        rows.join(start, on="loan_key", how="left", maintain_order="left")
        .join(before, on="loan_key", how="left", maintain_order="left")
        .join(count, on="loan_key", how="left", maintain_order="left")
        .with_columns(pl.col("_paid_before").fill_null(0), pl.col("_events").fill_null(0))
    )
    # Up to the day before `_from` nothing has accrued and the cumulative waterfall is exact.
    rows = _allocate_cumulative(rows, pl.col("_paid_before"), conv).with_columns(
        _zero_penalty(), _accrued_to=pl.col("_from") - 1
    )
    done = []
    for k in range(1, int(events.get_column("_rank").max() or 0) + 1):
        done.append(rows.filter(pl.col("_events") < k))
        rows = rows.filter(pl.col("_events") >= k)
        kth = events.filter(pl.col("_rank") == k).select("loan_key", _t="day", _amount="amount")
        rows = rows.join(kth, on="loan_key", how="left", maintain_order="left")
        rows = _accrue(rows, pl.col("_t") - 1, conv, pauses)  # penalty of earlier days, on their end-of-day principal
        rows = _pay(rows, conv).drop("_t", "_amount")
    done.append(rows)
    return _accrue(pl.concat(done), pl.lit(d, pl.Int32), conv, pauses)


def _accrue(rows: pl.DataFrame, through: pl.Expr, conv: ProductConventions, pauses: pl.DataFrame) -> pl.DataFrame:
    """Add the penalty of days after `_accrued_to` up to `through`: each instalment's daily amount (rounded once) x days."""
    first = pl.max_horizontal(pl.col("_accrued_to") + 1, pl.col("_ps"))
    rows = rows.with_columns(_through=through.cast(pl.Int32)).with_columns(
        _days=(pl.col("_through") - first + 1).clip(lower_bound=0).cast(pl.Int64)
    )
    if conv.holds_pause_penalty and not pauses.is_empty():
        rows = rows.with_columns(pl.col("_days") - _paused_days(rows, first, pl.col("_through"), pauses))
    daily = _round_div(
        pl.col("rem_principal").cast(pl.Int128) * pl.col("penalty_rate").cast(pl.Int128),
        RATE_SCALE * conv.day_count.year_days,
        conv.rounding_mode,
        conv.rounding_unit,
    )
    added = (daily * pl.col("_days")).cast(pl.Int64)
    return rows.with_columns(
        rem_penalty=pl.col("rem_penalty") + added,
        _penalty_accrued=pl.col("_penalty_accrued") + added,
        _accrued_to=pl.max_horizontal(pl.col("_accrued_to"), pl.col("_through")),
    ).drop("_through", "_days")


def _round_div(numerator: pl.Expr, denominator: int, mode: RoundingMode, unit: int) -> pl.Expr:
    """`domain.money.round_div` for non-negative Int128 numerators and a constant denominator."""
    den = denominator * unit
    q = numerator // den
    r = numerator - q * den
    if mode is RoundingMode.UP:
        q = q + (r > 0).cast(pl.Int128)
    elif mode is RoundingMode.HALF_UP:
        q = q + (2 * r >= den).cast(pl.Int128)
    elif mode is RoundingMode.HALF_EVEN:
        q = q + ((2 * r > den) | ((2 * r == den) & (q % 2 == 1))).cast(pl.Int128)
    return q * unit


def _pay(rows: pl.DataFrame, conv: ProductConventions) -> pl.DataFrame:
    """Apply each loan's payment `_amount` on day `_t` through the product's waterfall."""
    if conv.allocation_mode is AllocationMode.COMPONENT_FIRST:
        due = pl.col("due") <= pl.col("_t")
        rows = rows.with_columns(_left=pl.col("_amount"))
        for comp in conv.allocation_order:
            owed = pl.when(due).then(pl.col(_REM[comp])).otherwise(0)
            taken = (pl.col("_left") - (_cum_in_loan(owed) - owed)).clip(0).clip(upper_bound=owed)
            rows = rows.with_columns(
                (pl.col(_REM[comp]) - taken).alias(_REM[comp]),
                _left=(pl.col("_left") - _loan_total(owed)).clip(lower_bound=0),
            )
        return _pay_oldest_first(rows, pl.col("_left"), ~due, conv).drop("_left")
    return _pay_oldest_first(rows, pl.col("_amount"), pl.lit(True), conv)


def _pay_oldest_first(rows: pl.DataFrame, amount: pl.Expr, eligible: pl.Expr, conv: ProductConventions) -> pl.DataFrame:
    """`amount` (per loan) meets the eligible instalments oldest first; within each, components in waterfall order."""
    owed = pl.when(eligible).then(pl.sum_horizontal(*(pl.col(c) for c in _REM.values()))).otherwise(0)
    rows = rows.with_columns(_reach=_cum_in_loan(owed) - owed - amount)  # < 0: the payment reaches this instalment
    reach = pl.col("_reach")
    out = []
    for comp in conv.allocation_order:
        reach = reach + pl.col(_REM[comp])
        out.append(pl.when(eligible).then(pl.min_horizontal(reach.clip(lower_bound=0), pl.col(_REM[comp]))).otherwise(pl.col(_REM[comp])).alias(_REM[comp]))
    return rows.with_columns(out).drop("_reach")


def _zero_penalty() -> list[pl.Expr]:
    return [pl.lit(0, pl.Int64).alias("rem_penalty"), pl.lit(0, pl.Int64).alias("_penalty_accrued")]


def _zero_rems() -> list[pl.Expr]:
    return [pl.lit(0, pl.Int64).alias(c) for c in _REM.values()] + [pl.lit(0, pl.Int64).alias("_penalty_accrued")]


# --- summarising per loan --------------------------------------------------------------------------------------


def _summarise(rows: pl.DataFrame, d: int) -> pl.DataFrame:
    """Per-loan totals of what is left, split by due / overdue / all instalments."""
    due, past, future = pl.col("due") <= d, pl.col("due") < d, pl.col("due") > d
    scheduled_left = pl.col("rem_fee") + pl.col("rem_interest") + pl.col("rem_principal")
    left = scheduled_left + pl.col("rem_penalty")
    next_due = pl.col("due").filter(future & (left > 0)).min()
    return rows.group_by("loan_key", maintain_order=True).agg(
        *(pl.col(_REM[c]).filter(due).sum().alias(f"due_{c}") for c in _AMOUNTS),
        *(pl.col(_REM[c]).filter(past).sum().alias(f"overdue_{c}") for c in _AMOUNTS),
        outstanding_principal=pl.col("rem_principal").sum(),
        outstanding_total=left.sum(),
        # what the loan's payments have settled: scheduled amounts and accrued penalty, less what is left
        _settled=(pl.col("_owed") + pl.col("_penalty_accrued")).sum() - left.sum(),
        oldest_unpaid_due_date=pl.col("due").filter(past & (scheduled_left > 0)).min(),
        next_due_date=next_due,
        next_due_amount=left.filter(pl.col("due") == next_due).sum(),
    )


def _finish(
    live: pl.DataFrame,
    summary: pl.DataFrame,
    groups: list[ProductConventions],
    pauses: pl.DataFrame,
    d: int,
    as_of: date,
) -> pl.DataFrame:
    """Join the summaries to every live loan and derive overdue_total, credit, days past due and bucket."""
    zero_filled = [f"{kind}_{c}" for kind in ("due", "overdue") for c in _AMOUNTS] + [
        "outstanding_principal", "outstanding_total", "_settled", "next_due_amount"
    ]
    state = (
        live.join(_in_order(summary, ["loan_key"]), on="loan_key", how="left", maintain_order="left")
        .with_columns(pl.col(zero_filled).fill_null(0))
        .with_columns(
            overdue_total=pl.sum_horizontal(*(pl.col(f"overdue_{c}") for c in _AMOUNTS)),
            credit_balance=pl.col("paid_total") - pl.col("_settled"),
        )
    )
    oldest = pl.col("oldest_unpaid_due_date")
    state = state.with_columns(paused_days=_paused_days(state, oldest + 1, pl.lit(d, pl.Int32), pauses)).with_columns(
        paused_days=pl.when(oldest.is_null()).then(0).otherwise(pl.col("paused_days")).cast(pl.Int32),
    ).with_columns(
        days_past_due=pl.when(oldest.is_null()).then(0).otherwise(
            (d - oldest.cast(pl.Int64) - pl.col("paused_days")).clip(lower_bound=0)
        ).cast(pl.Int32),
    )
    bucket: pl.Expr = pl.lit(None, pl.String)
    for g, conv in reversed(list(enumerate(groups))):
        bucket = pl.when(pl.col("group") == g).then(_bucket_of(pl.col("days_past_due"), conv)).otherwise(bucket)
    state = state.with_columns(
        bucket=bucket,
        as_of=pl.lit(as_of),
        oldest_unpaid_due_date=oldest.cast(pl.Date),
        next_due_date=pl.col("next_due_date").cast(pl.Date),
    )
    return f.conform(state, f.LEDGER_STATE)


def _bucket_of(dpd: pl.Expr, conv: ProductConventions) -> pl.Expr:
    """The product's bucket label; within the grace days a loan stays in the first (not delinquent) bucket."""
    label: pl.Expr = pl.lit(conv.buckets[-1].label)
    for b in reversed(conv.buckets[:-1]):
        assert b.max_dpd is not None  # only the last bucket is open-ended (validated by ProductConventions)
        label = pl.when(dpd <= b.max_dpd).then(pl.lit(b.label)).otherwise(label)
    return pl.when(dpd <= conv.grace_days).then(pl.lit(conv.buckets[0].label)).otherwise(label)


def _bucket_positions(conventions: Mapping[str, ProductConventions] | None) -> dict[str, int]:
    """Each bucket label's position in its product's buckets (0 = not delinquent); the earliest wins on a clash."""
    products = list(conventions.values()) if conventions else [ProductConventions()]
    pos: dict[str, int] = {}
    for conv in products:
        for i, b in enumerate(conv.buckets):
            pos[b.label] = min(pos.get(b.label, i), i)
    return pos
