"""The book as of a day, laid out for set-based work: instalments and payments in (loan, day) order as flat arrays.

Every loan is then a range of rows, and one running total over all rows answers "how much on rows [a, b)"
for every loan at once (`pre[b] - pre[a]`). A row's position in (loan, day) order is found by merging
ascending probes into the sorted keys (`Index.count_le`), which is far cheaper than a join per question.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date

import numpy as np
import polars as pl

from duecourse.domain.conventions import ProductConventions
from duecourse.domain.errors import ConventionError

DAY_BITS = 20  # day numbers (days since 1970-01-01, < 2^20) packed beside loan_key in one Int64 sort key
DAYS = 1 << DAY_BITS
Array = np.ndarray


def day_number(day: date) -> int:
    n = (day - date(1970, 1, 1)).days
    if not 0 < n < DAYS - 1:
        raise ValueError(f"date {day} is outside the ledger's range (1970 to 4840)")
    return n


class Index:
    """Ascending Int64 values, searched with ascending probes by one merge pass (a backward as-of join)."""

    def __init__(self, values: Array) -> None:
        self._frame = pl.DataFrame({"_v": values}).with_row_index("_n", offset=1)

    def count_le(self, probes: Array) -> Array:
        """How many values are <= each probe (numpy's searchsorted side="right"); probes must ascend."""
        hit = pl.DataFrame({"_v": probes.astype(np.int64, copy=False)}).join_asof(
            self._frame, on="_v", strategy="backward", check_sortedness=False
        )
        return hit.get_column("_n").fill_null(0).cast(pl.Int64).to_numpy()

    def count_le_many(self, probes: Sequence[Array]) -> list[Array]:
        """`count_le` for several probe arrays in one pass: probes[k][i] must ascend in (i, k) order."""
        found = self.count_le(np.column_stack(probes).reshape(-1)).reshape(-1, len(probes))
        return [np.ascontiguousarray(found[:, k]) for k in range(len(probes))]


@dataclass
class SortedBook:
    """Live loans with their instalments and effective payments in (loan, day) order.

    `loans` (one row per loan started by D, in loan_key order): loan_key, borrower_key, penalty_rate, group
    (index into the conventions groups), grace; its instalment rows [s, e), of which [s, past_end) are due
    before D, [s, due_end) on or before D and [s, penalty_end) past their first penalty day by D; its
    payments [p0, p1); `owed_before` (= pre_owed[s]) and `paid_total`.
    Row arrays (oldest instalment first within a loan): `key` (loan_key * 2^20 + due day), `due`; amounts are
    kept only as running totals (`scheduled` reads one row's amount back). Payment arrays: `pay_key`, `amount`
    (a day's payments in any order).
    `pre_*`: running totals before each position (length + 1): the amount of rows [a, b) is pre[b] - pre[a].
    """

    loans: pl.DataFrame
    key: Array
    due: Array
    pay_key: Array
    amount: Array
    pre_fee: Array
    pre_interest: Array
    pre_principal: Array
    pre_owed: Array
    pre_paid: Array
    distinct_days: bool  # no loan has two instalments due on the same day
    no_empty_rows: bool  # every instalment has a positive scheduled amount
    rows: Index
    owed: Index  # the running total of scheduled amounts through each row (pre_owed[1:])
    pays: Index

    largest_principal: int

    def scheduled(self, component: str, rows: Array) -> Array:
        """The scheduled amount of `component` on each of `rows` (positions clamped; callers mask out-of-range)."""
        pre = self.pre(component)
        at = np.clip(rows, 0, max(pre.size - 2, 0))
        return np.asarray(pre[at + 1] - pre[at])

    def pre(self, component: str) -> Array:
        return {
            "fee": self.pre_fee,
            "interest": self.pre_interest,
            "principal": self.pre_principal,
            "owed": self.pre_owed,
        }[component]


def convention_groups(
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


def sorted_book(
    loans: pl.DataFrame,
    instalments: pl.DataFrame,
    payments: pl.DataFrame,
    groups: list[ProductConventions],
    product_group: dict[str, int],
    as_of: date,
) -> SortedBook:
    d = day_number(as_of)
    live = loans.filter(pl.col("start_date") <= as_of).select(
        "loan_key",
        "borrower_key",
        "penalty_rate",
        group=pl.col("product").replace_strict(product_group, return_dtype=pl.Int32),
    )
    if not live.get_column("loan_key").is_sorted():
        live = live.sort("loan_key")
    keys = _ints(live.get_column("loan_key"))
    if keys.size and int(np.abs(keys).max()) >= 1 << (62 - DAY_BITS):
        raise ValueError(f"loan keys must stay below 2^{62 - DAY_BITS}")
    grace = np.array([c.grace_days for c in groups], dtype=np.int64)[_ints(live.get_column("group"))]

    # The instalment side and the payment side are independent: build them on both cores.
    with ThreadPoolExecutor(max_workers=2) as pool:
        paid = pool.submit(_payments, payments, as_of)
        key, due, pre, distinct_days = _instalments(instalments)
        pre_owed = pre["interest"] + pre["principal"]
        if pre["fee"][-1]:
            pre_owed += pre["fee"]
        no_empty_rows = bool((pre_owed[1:] > pre_owed[:-1]).all())
        rows, owed = Index(key), Index(pre_owed[1:])
        pay_key, amount = paid.result()
    pays = Index(pay_key)
    key0 = keys * DAYS
    s, penalty_end, past_end, due_end, e = rows.count_le_many(
        [key0 - 1, key0 + (d - 1) - grace, key0 + (d - 1), key0 + d, key0 + (DAYS - 1)]
    )
    p0, p1 = pays.count_le_many([key0 - 1, key0 + (DAYS - 1)])
    counts = p1 - p0
    if int(counts.sum()) < pay_key.size:  # drop payments of loans that are not live
        keep = ranges(p0, p1)
        pay_key, amount = pay_key[keep], amount[keep]
        pays = Index(pay_key)
        p1 = np.cumsum(counts)
        p0 = p1 - counts
    pre_paid = _prefix(amount)
    live = live.with_columns(
        grace=pl.Series(grace),
        s=pl.Series(s),
        e=pl.Series(e),
        penalty_end=pl.Series(penalty_end),
        past_end=pl.Series(past_end),
        due_end=pl.Series(due_end),
        p0=pl.Series(p0),
        p1=pl.Series(p1),
        owed_before=pl.Series(pre_owed[s]),
        paid_total=pl.Series(pre_paid[p1] - pre_paid[p0]),
    )
    return SortedBook(
        loans=live,
        key=key,
        due=due,
        pay_key=pay_key,
        amount=amount,
        pre_fee=pre["fee"],
        pre_interest=pre["interest"],
        pre_principal=pre["principal"],
        pre_owed=pre_owed,
        pre_paid=pre_paid,
        distinct_days=distinct_days,
        no_empty_rows=no_empty_rows,
        largest_principal=int(instalments.get_column("principal").max() or 0),  # type: ignore[arg-type]
        rows=rows,
        owed=owed,
        pays=pays,
    )


def _ints(column: pl.Series) -> Array:
    """A column as a contiguous int64 array (nulls as 0: amounts are never null in a valid book)."""
    if column.null_count():
        column = column.fill_null(0)
    return np.ascontiguousarray(column.to_numpy(), dtype=np.int64)


def _instalments(instalments: pl.DataFrame) -> tuple[Array, Array, dict[str, Array], bool]:
    """Instalments in (loan, due day, seq) order: sort key, due day, running totals of the amounts (`_prefix`);
    and whether due days differ within every loan."""
    due = instalments.get_column("due_date").cast(pl.Int32).to_numpy()
    key = _ints(instalments.get_column("loan_key")) * DAYS
    key += due
    ties = np.flatnonzero(key[1:] == key[:-1])
    in_order = bool((key[1:] >= key[:-1]).all())
    if in_order and ties.size:  # instalments due the same day must come in seq order
        seq = instalments.get_column("seq").to_numpy()
        in_order = bool((seq[ties + 1] > seq[ties]).all())
    columns = {c: instalments.get_column(c) for c in ("fee", "interest", "principal")}
    if not in_order:
        order = np.lexsort((instalments.get_column("seq").to_numpy(), key))
        key, due = key[order], due[order]
        columns = {c: pl.Series(_ints(v)[order]) for c, v in columns.items()}
        ties = np.flatnonzero(key[1:] == key[:-1])
    return key, np.ascontiguousarray(due, dtype=np.int32), {c: _prefix(v) for c, v in columns.items()}, not ties.size


def _payments(payments: pl.DataFrame, as_of: date) -> tuple[Array, Array]:
    """Effective payments as (sort key, amount) arrays in key order.

    Payments valued the same day are applied one after the other through the same waterfall, which is the
    same as applying their sum: their order within a day does not matter, so (loan, day) order suffices.
    """
    known = pl.col("value_date") <= as_of
    voided = payments.filter(known & pl.col("reverses_payment_key").is_not_null()).get_column("reverses_payment_key")
    keep = known & pl.col("reverses_payment_key").is_null()
    if voided.len():
        keep = keep & ~pl.col("payment_key").is_in(voided.implode())
    pays = (
        payments.lazy()
        .filter(keep)
        .select(
            _key=pl.col("loan_key") * DAYS + pl.col("value_date").cast(pl.Int32).cast(pl.Int64), amount=pl.col("amount")
        )
        .collect()
    )
    if not pays.get_column("_key").is_sorted():
        pays = pays.sort("_key")
    return _ints(pays.get_column("_key")), _ints(pays.get_column("amount"))


def _prefix(values: Array | pl.Series) -> Array:
    """Running totals before each position: out[i] = values[0] + ... + values[i-1] (length + 1).

    A Polars column is summed chunk by chunk, so it is never copied into one array first.
    """
    chunks = [values] if isinstance(values, np.ndarray) else [_ints(c) for c in values.get_chunks()]
    out = np.zeros(sum(c.size for c in chunks) + 1, dtype=np.int64)
    at, carry = 1, 0
    for chunk in chunks:
        if chunk.size and (carry or chunk.any()):
            np.cumsum(chunk, out=out[at : at + chunk.size])
            out[at : at + chunk.size] += carry
            carry = int(out[at + chunk.size - 1])
        at += chunk.size
    return out


def ranges(start: Array, end: Array) -> Array:
    """The positions start..end-1 of every range, concatenated."""
    counts = end - start
    offsets = np.repeat(start - (np.cumsum(counts) - counts), counts)
    return offsets + np.arange(int(counts.sum()), dtype=np.int64)


def gather(values: Array, idx: Array) -> Array:
    """values[idx] with out-of-range positions clamped (callers mask those rows)."""
    if values.size == 0:
        return np.zeros(len(idx), dtype=np.int64)
    return np.asarray(values[np.clip(idx, 0, values.size - 1)], dtype=np.int64)
