"""What is left of each loan's instalments as of D, kept per loan as (j, what is left of instalment j).

Instalment-first waterfalls pay the oldest instalment in full before money reaches the next, so a loan's state
is: instalments before j paid, instalment j partly paid (or untouched), instalments after j untouched — as
scheduled, and, if they are past their first penalty day, carrying penalty on their full principal (a closed
form). `state_summary` turns such a state into the LEDGER_STATE amounts without looking at any row.

- `settle_clean`: loans as if they never carried penalty — the total paid meets the schedule as one
  cumulative sum. Exact for most loans; `dirty_loans` finds the others.
- `replay_oldest_first`: the others (instalment-first products), replayed from the first day each departs
  from that picture, one payment day per pass, vectorised over loans.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import polars as pl

from duecourse.domain.conventions import AllocationMode, ProductConventions
from duecourse.ledger.book import DAYS, Array, SortedBook, gather, ranges
from duecourse.ledger.penalty import daily_penalty, needs_int128, penalty_days

SCHEDULED = ("fee", "interest", "principal")
AMOUNTS = ("principal", "interest", "fee", "penalty")  # the order LEDGER_STATE lists components in
NO_DAY = 1 << 40  # a due day later than any real one: "no such instalment"
SUMMARY_COLUMNS = [
    *(f"due_{c}" for c in AMOUNTS),
    *(f"overdue_{c}" for c in AMOUNTS),
    "outstanding_principal",
    "outstanding_total",
    "_settled",
    "oldest_unpaid_due_date",
    "next_due_date",
    "next_due_amount",
]


Summary = dict[str, Array]
"""Per-loan LEDGER_STATE amounts (SUMMARY_COLUMNS) as int64 arrays; due dates as day numbers, NO_DAY for none."""


def settle_clean(book: SortedBook, loans: pl.DataFrame, groups: list[ProductConventions], d: int) -> Summary:
    """SUMMARY_COLUMNS for `loans` (rows of book.loans) as if their payments met the schedule as one cumulative sum."""
    j, left, credit = cumulative_start(book, loans, loans.get_column("paid_total").to_numpy(), groups)
    return state_summary(book, loans, j, left, credit, d)


def cumulative_start(
    book: SortedBook, loans: pl.DataFrame, paid: Array, groups: list[ProductConventions]
) -> tuple[Array, dict[str, Array], Array]:
    """Where `paid` (per loan) reaches when it meets the schedule as one cumulative sum, with no penalty.

    It covers the oldest instalments in full and then part of instalment j (the first not covered; j = e when
    all are), paying j's components in its product's waterfall order. Returns j, what is left of j's
    components, and the credit (money beyond the whole schedule).
    """
    e, before = loans.get_column("e").to_numpy(), loans.get_column("owed_before").to_numpy()
    group = loans.get_column("group").to_numpy()
    reached = np.minimum(paid, book.pre_owed[e] - before)
    covered = before + reached  # the running-total level the payments reach; ascends with the loans
    j = np.minimum(book.owed.count_le(covered), e)
    avail = covered - book.pre_owed[j]  # paid into instalment j
    at_j = {c: book.scheduled(c, j) for c in SCHEDULED}
    left = {"penalty": np.zeros(len(j), dtype=np.int64)}
    for c in SCHEDULED:
        left[c] = np.zeros(len(j), dtype=np.int64)
    # Groups differ in many conventions but mostly share one waterfall: mask loans by waterfall, not by group
    # (with a single waterfall, not at all — the masks were a third of the ledger's time at 1M loans).
    waterfalls: dict[tuple[str, ...], list[int]] = {}
    for g, conv in enumerate(groups):
        waterfalls.setdefault(tuple(c for c in conv.allocation_order if c != "penalty"), []).append(g)
    for order, members in waterfalls.items():
        mine = slice(None) if len(waterfalls) == 1 else np.isin(group, members)
        reach = -avail[mine]
        for c in order:
            at = at_j[c][mine]
            reach += at
            left[c][mine] = np.minimum(np.maximum(reach, 0), at)
    return j, left, paid - reached


def state_summary(
    book: SortedBook,
    loans: pl.DataFrame,
    j: Array,
    left: dict[str, Array],
    credit: Array,
    d: int,
    untouched_penalty: Callable[[Array, Array], Array] | None = None,
) -> Summary:
    """SUMMARY_COLUMNS from each loan's state: rows before j paid, `left` of row j, rows after j untouched.

    `untouched_penalty(a, b)` is the penalty the untouched rows [a, b) of each loan accrued by D (none for
    clean loans). `_settled` is what the payments settled: paid total less credit.
    """
    e, past_end, due_end = (loans.get_column(c).to_numpy() for c in ("e", "past_end", "due_end"))
    has_j = j < e
    due_j = np.where(has_j, gather(book.due, j), NO_DAY)
    after = np.minimum(j + 1, e)  # the first untouched row

    def untouched(component: str, end: Array) -> Array:
        """`component` summed over the untouched rows before `end`."""
        pre = book.pre(component)
        return np.asarray(pre[np.maximum(end, after)] - pre[after])

    def untouched_pen(end: Array) -> Array:
        if untouched_penalty is None:
            return np.zeros(len(j), dtype=np.int64)
        return untouched_penalty(after, np.maximum(end, after))

    on_j = {c: np.where(has_j, left[c], 0) for c in AMOUNTS}
    scheduled_left_j = on_j["fee"] + on_j["interest"] + on_j["principal"]
    left_j = scheduled_left_j + on_j["penalty"]
    out: Summary = {}
    for c in AMOUNTS:
        rest_due = untouched_pen(due_end) if c == "penalty" else untouched(c, due_end)
        rest_past = untouched_pen(past_end) if c == "penalty" else untouched(c, past_end)
        out[f"due_{c}"] = np.where(due_j <= d, on_j[c], 0) + rest_due
        out[f"overdue_{c}"] = np.where(due_j < d, on_j[c], 0) + rest_past
    out["outstanding_principal"] = on_j["principal"] + untouched("principal", e)
    out["outstanding_total"] = left_j + untouched("owed", e) + untouched_pen(e)
    out["_settled"] = loans.get_column("paid_total").to_numpy() - credit
    # The oldest instalment with scheduled amounts left: j itself, or the first untouched one owing anything.
    oldest = np.where(has_j & (scheduled_left_j > 0), j, _first_owing(book, after, e))
    out["oldest_unpaid_due_date"] = np.where(oldest < past_end, gather(book.due, oldest), NO_DAY)
    # Next due: the first instalment due after D with anything left (untouched future rows carry no penalty).
    nxt = np.where(has_j & (due_j > d) & (left_j > 0), j, _first_owing(book, np.maximum(after, due_end), e))
    same_day_end = nxt + 1 if book.distinct_days else book.rows.count_le(gather(book.key, nxt))
    same_day_end = np.maximum(np.minimum(same_day_end, e), after)
    rest = book.pre_owed[same_day_end] - book.pre_owed[np.minimum(np.maximum(nxt, after), same_day_end)]
    out["next_due_date"] = np.where(nxt < e, gather(book.due, nxt), NO_DAY)
    out["next_due_amount"] = np.where(nxt < e, np.where(nxt == j, left_j, 0) + rest, 0)
    return out


def _first_owing(book: SortedBook, start: Array, end: Array) -> Array:
    """Per loan: the first row at or after `start` with a positive scheduled amount (`end` if none before it)."""
    start = np.minimum(start, end)
    if book.no_empty_rows:
        return start
    return np.asarray(np.minimum(book.owed.count_le(book.pre_owed[start]), end))


def dirty_loans(book: SortedBook, groups: list[ProductConventions], d: int) -> Array:
    """Positions (in book.loans) of loans whose state is not the cumulative picture's: they carried penalty, or
    (component-first products) had two instalments in arrears when a payment came.

    Penalty starts on instalment i at the end of day ps_i = due_i + grace + 1 unless the payments valued by then
    cover instalments 1..i. It suffices to test just before each payment (what was paid before it against the
    instalments whose first penalty day has passed, due <= payment day - grace - 2) and on day D: a shortfall
    at some ps_i lasts until the next payment or D. The first payment of a day sees exactly what was paid on
    earlier days, so testing every payment against what was paid before it is exact.
    """
    loans = book.loans
    n = loans.height
    p0, p1 = loans.get_column("p0").to_numpy(), loans.get_column("p1").to_numpy()
    grace, owed_before = loans.get_column("grace").to_numpy(), loans.get_column("owed_before").to_numpy()
    rate, group = loans.get_column("penalty_rate").to_numpy(), loans.get_column("group").to_numpy()
    loan = np.repeat(np.arange(n), p1 - p0)  # each payment's loan
    # Short before payment p: paid before it < owed on the instalments started by then. With running totals:
    # pre_paid[p] - pre_paid[p0] < pre_owed[started] - pre_owed[s], i.e. pre_paid[p] - pre_owed[started] < base.
    base = book.pre_paid[p0] - owed_before
    one_grace = n == 0 or grace.min() == grace.max()
    shift = (int(grace[0]) if n else 0) if one_grace else grace[loan]
    started = book.rows.count_le(book.pay_key - shift - 2)
    short = book.pre_paid[:-1] - book.pre_owed[started] < base[loan]
    late = np.zeros(n, dtype=bool)
    late[loan[short]] = True
    late |= (
        loans.get_column("paid_total").to_numpy()
        < book.pre_owed[loans.get_column("penalty_end").to_numpy()] - owed_before
    )
    dirty = late & (rate > 0)
    component_first = [g for g, c in enumerate(groups) if c.allocation_mode is AllocationMode.COMPONENT_FIRST]
    if component_first:
        # all but the last instalment due by the payment day must be paid before it
        mine = np.flatnonzero(np.isin(group[loan], component_first))
        due_rows = book.rows.count_le(book.pay_key[mine])
        crowded = book.pre_paid[mine] - book.pre_owed[np.maximum(due_rows - 1, 0)] < base[loan[mine]]
        dirty[loan[mine][crowded]] = True
    return np.flatnonzero(dirty)


def replay_oldest_first(
    book: SortedBook, loans: pl.DataFrame, conv: ProductConventions, d: int, pauses: pl.DataFrame
) -> Summary:
    """SUMMARY_COLUMNS of instalment-first `loans` (one conventions group), by replaying their payments.

    Each loan is replayed from the first day it departs from the cumulative picture (`start`): until then the
    cumulative waterfall of what was paid before is exact and nothing has accrued. The k-th pass applies every
    loan's k-th payment day: penalty on instalment j for the days before it (on each day's end-of-day
    principal), then the day's payments, oldest instalment first, moving j on as instalments clear.
    """
    n = loans.height
    s, e, p0, p1 = (loans.get_column(c).to_numpy() for c in ("s", "e", "p0", "p1"))
    keys, rate = loans.get_column("loan_key").to_numpy(), loans.get_column("penalty_rate").to_numpy()
    grace = conv.grace_days
    wide = needs_int128(book.largest_principal, rate)

    # This group's rows, to find the departure day and to price untouched instalments' penalty.
    rows = ranges(s, e)
    row_loan = np.repeat(np.arange(n), e - s)
    row0 = np.cumsum(e - s) - (e - s)  # each loan's first position in `rows`
    ps = book.due[rows] + grace + 1  # the first day penalty can accrue on each row
    started = np.flatnonzero((ps <= d) & (rate[row_loan] > 0))  # only these rows can carry penalty by D
    on, by = rows[started], row_loan[started]
    paid_by_ps = book.pre_paid[book.pays.count_le(keys[by] * DAYS + ps[started])] - book.pre_paid[p0][by]
    departs = np.full(rows.size, d + 1, dtype=np.int64)
    departs[started] = np.where(paid_by_ps < book.pre_owed[on + 1] - book.pre_owed[s][by], ps[started], d + 1)
    start = np.minimum.reduceat(departs, row0)  # replayed loans all have instalments

    first_replayed = book.pays.count_le(keys * DAYS + start - 1)
    days, amounts, count = payment_days(book, first_replayed, p1)
    first_day = np.cumsum(count) - count
    j, left, credit = cumulative_start(
        book, loans.with_columns(group=pl.lit(0)), book.pre_paid[first_replayed] - book.pre_paid[p0], [conv]
    )
    accrued_to = start - 1

    def daily(principal: Array, who: Array) -> Array:
        return daily_penalty(principal, rate[who], conv, wide)

    def accrue(who: Array, through: Array) -> None:
        """Penalty on instalment j for the days after `accrued_to` up to `through`."""
        jw = j[who]
        first = np.maximum(accrued_to[who] + 1, gather(book.due, jw) + grace + 1)
        n_days = np.where(jw < e[who], penalty_days(conv, pauses, keys[who], first, through), 0)
        left["penalty"][who] += daily(left["principal"][who], who) * n_days
        accrued_to[who] = np.maximum(accrued_to[who], through)

    def pay(who: Array, day: Array, money: Array) -> None:
        """Pay `money` on `day`: instalment j in waterfall order, then the next ones while money is left."""
        while who.size:
            done = j[who] >= e[who]  # nothing left to pay: the rest is credit
            credit[who[done]] += money[done]
            who, day, money = who[~done], day[~done], money[~done].copy()
            for c in conv.allocation_order:
                take = np.minimum(money, left[c][who])
                left[c][who] -= take
                money -= take
            cleared = sum(left[c][who] for c in AMOUNTS) == 0
            moving = cleared & (money > 0)
            who, day, money = who[moving], day[moving], money[moving]
            j[who] += 1
            fresh = j[who] < e[who]  # load the next instalment as it stands, untouched
            w, r = who[fresh], j[who[fresh]]
            for c in SCHEDULED:
                left[c][w] = book.scheduled(c, r)
            n_days = penalty_days(conv, pauses, keys[w], book.due[r] + grace + 1, day[fresh] - 1)
            left["penalty"][w] = daily(book.scheduled("principal", r), w) * n_days

    for k in range(1, int(count.max(initial=0)) + 1):
        who = np.flatnonzero(count >= k)
        at = first_day[who] + (k - 1)
        accrue(who, days[at] - 1)  # the days before the payment day, on their end-of-day principal
        pay(who, days[at], amounts[at])
    accrue(np.arange(n), np.full(n, d))

    # Untouched instalments' penalty through D (full principal from their first penalty day), per row.
    pen_rows = np.zeros(rows.size, dtype=np.int64)
    pen_rows[started] = daily(book.scheduled("principal", on), by) * penalty_days(
        conv, pauses, keys[by], ps[started], np.full(started.size, d)
    )
    pen_pre = np.concatenate(([0], np.cumsum(pen_rows)))

    def untouched_penalty(a: Array, b: Array) -> Array:
        return np.asarray(pen_pre[b - s + row0] - pen_pre[a - s + row0])

    return state_summary(book, loans, j, left, credit, d, untouched_penalty)


def payment_days(book: SortedBook, first: Array, end: Array) -> tuple[Array, Array, Array]:
    """Each loan's payments [first, end) summed per value day: (day, amount) in loan then day order; count per loan."""
    idx = ranges(first, end)
    owner = np.repeat(np.arange(len(first)), end - first)
    key = book.pay_key[idx]
    run = np.concatenate(([0], np.cumsum(book.amount[idx])))
    last = np.flatnonzero(np.append(key[1:] != key[:-1], key.size > 0))  # the last payment of each (loan, day)
    amount = run[last + 1] - run[np.concatenate(([0], last[:-1] + 1))]
    return key[last] % DAYS, amount, np.bincount(owner[last], minlength=len(first))
