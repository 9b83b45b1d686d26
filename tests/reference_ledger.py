"""An obviously-correct, one-loan, one-day-at-a-time reference ledger, used only to check the set-based engine.

It follows docs/ledger.md literally, in plain Python integers: walk every day from the loan's start to D;
on each day first apply that day's effective payments (payment key order) through the product's waterfall,
then add that day's penalty — the daily amount on each instalment's principal left at the end of the day,
rounded once — to every instalment past its first penalty day (unless a clock-pausing hold covers the day
and the product pauses penalty for holds). Nothing here is vectorised or clever on purpose.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from duecourse.domain.conventions import AllocationMode, ProductConventions
from duecourse.domain.money import RATE_SCALE, round_div


@dataclass
class Instalment:
    seq: int
    due_date: date
    left: dict[str, int]  # penalty, fee, interest, principal still unpaid
    scheduled: int  # fee + interest + principal as scheduled
    penalty_accrued: int = 0

    def owes(self, components: tuple[str, ...] = ("penalty", "fee", "interest", "principal")) -> int:
        return sum(self.left[c] for c in components)


@dataclass
class Ledger:
    instalments: list[Instalment]
    conventions: ProductConventions
    credit: int = 0

    def pay(self, amount: int, day: date) -> None:
        """One payment through the waterfall; money beyond everything owed becomes credit."""
        money = amount
        order = self.conventions.allocation_order

        def take(inst: Instalment, component: str) -> None:
            nonlocal money
            paid = min(money, inst.left[component])
            inst.left[component] -= paid
            money -= paid

        if self.conventions.allocation_mode is AllocationMode.COMPONENT_FIRST:
            due = [i for i in self.instalments if i.due_date <= day]
            for component in order:
                for inst in due:
                    take(inst, component)
            for inst in (i for i in self.instalments if i.due_date > day):
                for component in order:
                    take(inst, component)
        else:
            for inst in self.instalments:
                for component in order:
                    take(inst, component)
        self.credit += money


def effective(payments: list[dict[str, Any]], as_of: date) -> list[dict[str, Any]]:
    """Payments valued by `as_of`, less those voided by a reversal valued by `as_of`, in (value date, key) order."""
    known = [p for p in payments if p["value_date"] <= as_of]
    voided = {p["reverses_payment_key"] for p in known if p["reverses_payment_key"] is not None}
    kept = [p for p in known if p["reverses_payment_key"] is None and p["payment_key"] not in voided]
    return sorted(kept, key=lambda p: (p["value_date"], p["payment_key"]))


def clock_paused_days(loan: dict[str, Any], holds: list[dict[str, Any]], as_of: date) -> set[date]:
    """Days up to `as_of` covered by a clock-pausing hold on this loan or on all of its borrower's loans."""
    days: set[date] = set()
    for h in holds:
        covers = h["loan_key"] == loan["loan_key"] or (
            h["loan_key"] is None and h["borrower_key"] == loan["borrower_key"]
        )
        if not (h["pauses_clock"] and covers):
            continue
        day, last = h["start_date"], min(h["end_date"] or as_of, as_of)
        while day <= last:
            days.add(day)
            day += timedelta(days=1)
    return days


def reference_state(
    loan: dict[str, Any],
    instalments: list[dict[str, Any]],
    payments: list[dict[str, Any]],
    holds: list[dict[str, Any]],
    conv: ProductConventions,
    as_of: date,
) -> dict[str, Any] | None:
    """The LEDGER_STATE row of one loan as of `as_of` (plus `penalty_accrued`), or None if it starts later."""
    if loan["start_date"] > as_of:
        return None
    ledger = Ledger(
        [
            Instalment(
                i["seq"],
                i["due_date"],
                {"penalty": 0, "fee": i["fee"], "interest": i["interest"], "principal": i["principal"]},
                i["fee"] + i["interest"] + i["principal"],
            )
            for i in sorted(instalments, key=lambda i: (i["due_date"], i["seq"]))
        ],
        conv,
    )
    pays = effective([p for p in payments if p["loan_key"] == loan["loan_key"]], as_of)
    paused = clock_paused_days(loan, holds, as_of)
    first_day = min([loan["start_date"], *(p["value_date"] for p in pays)])
    day = first_day
    while day <= as_of:
        for p in pays:
            if p["value_date"] == day:
                ledger.pay(p["amount"], day)
        if not (conv.holds_pause_penalty and day in paused):
            for inst in ledger.instalments:
                if day > inst.due_date + timedelta(days=conv.grace_days):
                    daily = round_div(
                        inst.left["principal"] * loan["penalty_rate"],
                        RATE_SCALE * conv.day_count.year_days,
                        conv.rounding_mode,
                        conv.rounding_unit,
                    )
                    inst.left["penalty"] += daily
                    inst.penalty_accrued += daily
        day += timedelta(days=1)
    return _state_row(loan, ledger, pays, paused, conv, as_of)


def _state_row(
    loan: dict[str, Any],
    ledger: Ledger,
    pays: list[dict[str, Any]],
    paused: set[date],
    conv: ProductConventions,
    as_of: date,
) -> dict[str, Any]:
    insts = ledger.instalments
    out: dict[str, Any] = {"loan_key": loan["loan_key"], "as_of": as_of}
    for c in ("principal", "interest", "fee", "penalty"):
        out[f"due_{c}"] = sum(i.left[c] for i in insts if i.due_date <= as_of)
        out[f"overdue_{c}"] = sum(i.left[c] for i in insts if i.due_date < as_of)
    out["overdue_total"] = sum(out[f"overdue_{c}"] for c in ("principal", "interest", "fee", "penalty"))
    out["outstanding_principal"] = sum(i.left["principal"] for i in insts)
    out["outstanding_total"] = sum(i.owes() for i in insts)
    out["paid_total"] = sum(p["amount"] for p in pays)
    out["credit_balance"] = ledger.credit
    unpaid = [i.due_date for i in insts if i.due_date < as_of and i.owes(("fee", "interest", "principal")) > 0]
    oldest = min(unpaid) if unpaid else None
    out["oldest_unpaid_due_date"] = oldest
    out["paused_days"] = 0 if oldest is None else sum(1 for d in paused if oldest < d <= as_of)
    dpd = 0 if oldest is None else max(0, (as_of - oldest).days - out["paused_days"])
    out["days_past_due"] = dpd
    out["bucket"] = conv.buckets[0].label if dpd <= conv.grace_days else conv.bucket_for(dpd)
    future = [i for i in insts if i.due_date > as_of and i.owes() > 0]
    nxt = min((i.due_date for i in future), default=None)
    out["next_due_date"] = nxt
    out["next_due_amount"] = sum(i.owes() for i in future if i.due_date == nxt)
    out["penalty_accrued"] = sum(i.penalty_accrued for i in insts)
    return out
