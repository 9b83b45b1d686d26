"""An obviously-correct, per-loan, day-by-day reference ledger, used only to cross-check the set-based engine.

It follows docs/ledger.md literally: walk every day; apply that day's effective payments through the
waterfall; then add that day's penalty on the principal left at the end of the day.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from duecourse.domain.conventions import COMPONENTS, AllocationMode, ProductConventions
from duecourse.domain.money import RATE_SCALE, round_div


@dataclass
class Inst:
    seq: int
    due_date: date
    rem: dict[str, int]


def reference_state(
    loan: dict[str, Any],
    instalments: list[dict[str, Any]],
    payments: list[dict[str, Any]],
    holds: list[dict[str, Any]],
    conv: ProductConventions,
    as_of: date,
) -> dict[str, Any] | None:
    if loan["start_date"] > as_of:
        return None
    known = [p for p in payments if p["value_date"] <= as_of]
    voided = {p["reverses_payment_key"] for p in known if p["reverses_payment_key"] is not None}
    pays = sorted(
        (p for p in known if p["reverses_payment_key"] is None and p["payment_key"] not in voided),
        key=lambda p: (p["value_date"], p["payment_key"]),
    )
    insts = [
        Inst(
            i["seq"],
            i["due_date"],
            {"penalty": 0, "fee": i["fee"], "interest": i["interest"], "principal": i["principal"]},
        )
        for i in sorted(instalments, key=lambda i: i["seq"])
    ]
    hold_days: set[date] = set()
    for h in holds:
        if not h["pauses_clock"] or h["start_date"] > as_of:
            continue
        if h["loan_key"] is not None and h["loan_key"] != loan["loan_key"]:
            continue
        end = min(h["end_date"] or as_of, as_of)
        d = h["start_date"]
        while d <= end:
            hold_days.add(d)
            d += timedelta(days=1)

    credit = 0
    days = [p["value_date"] for p in pays] + [i.due_date for i in insts]
    day = min(days) if days else as_of
    while day <= as_of:
        for p in (p for p in pays if p["value_date"] == day):
            credit += _allocate(insts, p["amount"], day, conv)
        for i in insts:
            if day >= i.due_date + timedelta(days=conv.grace_days + 1):
                if conv.holds_pause_penalty and day in hold_days:
                    continue
                i.rem["penalty"] += round_div(
                    i.rem["principal"] * loan["penalty_rate"],
                    RATE_SCALE * conv.day_count.year_days,
                    conv.rounding_mode,
                    conv.rounding_unit,
                )
        day += timedelta(days=1)

    def left(i: Inst, comps: tuple[str, ...] = COMPONENTS) -> int:
        return sum(i.rem[c] for c in comps)

    out: dict[str, Any] = {"loan_key": loan["loan_key"]}
    for c in ("principal", "interest", "fee", "penalty"):
        out[f"due_{c}"] = sum(i.rem[c] for i in insts if i.due_date <= as_of)
        out[f"overdue_{c}"] = sum(i.rem[c] for i in insts if i.due_date < as_of)
    out["overdue_total"] = sum(out[f"overdue_{c}"] for c in ("principal", "interest", "fee", "penalty"))
    out["outstanding_principal"] = sum(i.rem["principal"] for i in insts)
    out["outstanding_total"] = sum(left(i) for i in insts)
    out["paid_total"] = sum(p["amount"] for p in pays)
    out["credit_balance"] = credit
    unpaid = [i.due_date for i in insts if i.due_date < as_of and left(i, ("fee", "interest", "principal")) > 0]
    oldest = min(unpaid) if unpaid else None
    out["oldest_unpaid_due_date"] = oldest
    paused = 0 if oldest is None else sum(1 for d in hold_days if oldest < d <= as_of)
    out["paused_days"] = paused
    dpd = 0 if oldest is None else max(0, (as_of - oldest).days - paused)
    out["days_past_due"] = dpd
    out["bucket"] = conv.bucket_for(0 if dpd <= conv.grace_days else dpd)
    future = [i for i in insts if i.due_date > as_of and left(i) > 0]
    nxt = min((i.due_date for i in future), default=None)
    out["next_due_date"] = nxt
    out["next_due_amount"] = sum(left(i) for i in future if i.due_date == nxt)
    return out


def _allocate(insts: list[Inst], amount: int, day: date, conv: ProductConventions) -> int:
    """Pay `amount` through the waterfall; return what is left over (credit)."""
    left = amount

    def take(i: Inst, c: str) -> None:
        nonlocal left
        t = min(left, i.rem[c])
        i.rem[c] -= t
        left -= t

    if conv.allocation_mode is AllocationMode.COMPONENT_FIRST:
        for c in conv.allocation_order:
            for i in insts:
                if i.due_date <= day:
                    take(i, c)
        for i in insts:
            if i.due_date > day:
                for c in conv.allocation_order:
                    take(i, c)
    else:
        for i in insts:
            for c in conv.allocation_order:
                take(i, c)
    return left
