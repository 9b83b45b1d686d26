"""The repayment plans a debtor may be offered for one overdue loan, each priced exactly and ranked.

Four kinds (issue 5): restructuring the whole balance over a longer term, suspending interest and
penalty with principal-only instalments, a payment holiday followed by a re-amortised balance, and a
lump-sum settlement with part waived. Every option states its schedule (the last instalment takes the
rounding remainder), the monthly payment, the total the debtor pays, what the lender waives, the share
of the debtor's disposable income it takes, and the lender's expected recovery. The best affordable
option comes first: among the options the debtor can afford, the one the lender expects to recover most
from — a plan the debtor cannot keep recovers little, which the completion likelihoods price in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_CEILING, ROUND_DOWN, Decimal
from fractions import Fraction
from typing import Literal

from duecourse.domain.conventions import ProductConventions
from duecourse.domain.money import format_money, round_div
from duecourse.ledger.schedule import add_months, generate_schedule
from duecourse.plans.affordability import Affordability
from duecourse.plans.policy import COMPONENTS, PlanPolicy

Kind = Literal["restructure", "suspension", "holiday", "settlement"]


@dataclass(frozen=True)
class Outstanding:
    """One loan's balance on the day a plan is considered, by component, in minor units."""

    loan_id: str
    product: str
    currency: str
    days_past_due: int
    principal: int  # all principal not yet repaid, due or not
    interest: int  # contractual interest due and unpaid
    penalty: int  # penalty interest accrued and unpaid
    fee: int
    remaining_months: int  # contractual instalments not yet due

    def __post_init__(self) -> None:
        if min(self.principal, self.interest, self.penalty, self.fee, self.remaining_months) < 0:
            raise ValueError("outstanding amounts and months must not be negative")

    @property
    def total(self) -> int:
        return self.principal + self.interest + self.penalty + self.fee

    def component(self, name: str) -> int:
        return int(getattr(self, name))


@dataclass(frozen=True)
class PlanInstalment:
    seq: int
    due_date: date
    principal: int  # the part that repays the restructured balance
    interest: int  # the part the plan charges

    @property
    def amount(self) -> int:
        return self.principal + self.interest


@dataclass(frozen=True)
class PlanOption:
    kind: Kind
    months: int  # from the plan's start to its last instalment
    instalments: tuple[PlanInstalment, ...]
    restructured: int  # the balance the plan repays: outstanding minus what is waived
    plan_interest: int  # interest the plan charges on top
    waived: Mapping[str, int]  # by component
    monthly_payment: int  # the largest instalment: what the debtor must find each month
    total_paid: int
    share: Decimal | None  # of disposable income (a settlement: of savings plus a month's disposable income)
    affordable: bool
    likelihood: Decimal  # that it is paid to the end
    expected_recovery: int
    discount: Decimal = Decimal(0)  # a settlement's discount on the whole balance
    reason: str = field(default="", compare=False)

    @property
    def waived_total(self) -> int:
        return sum(self.waived.values())


def plan_options(
    debt: Outstanding,
    affordability: Affordability,
    policy: PlanPolicy,
    conventions: ProductConventions,
    start: date,
) -> list[PlanOption]:
    """Every option the policy allows for `debt`, best first, each with the reason for its place."""
    if debt.currency != affordability.currency:
        raise ValueError(f"the loan is in {debt.currency}, the finances in {affordability.currency}")
    if debt.total <= 0:
        return []
    max_term = policy.max_term_for(debt.product)
    options: list[PlanOption] = []
    for months in (m for m in policy.restructure_terms if m <= max_term):
        waived = _waived(debt, policy.restructure_waive)
        base = debt.total - sum(waived.values())
        rows = _amortised(base, policy.restructure_rate, months, start, conventions, "equal_instalment", 0)
        options.append(_priced("restructure", months, rows, base, waived, debt, affordability, policy))
    for months in (m for m in policy.suspension_terms if m <= max_term):
        waived = _waived(debt, policy.suspension_waive)
        base = debt.total - sum(waived.values())
        rows = _amortised(base, Decimal(0), months, start, conventions, "equal_principal", 0)
        options.append(_priced("suspension", months, rows, base, waived, debt, affordability, policy))
    for pause in policy.holiday_months:
        after = max(debt.remaining_months, policy.holiday_min_remaining_months)
        if pause + after > max_term:
            continue
        waived = _waived(debt, policy.holiday_waive)
        base = debt.total - sum(waived.values())
        # Interest accrues through the holiday at the plan rate and is added to the balance (rounded once).
        num, den = (Fraction(policy.holiday_rate) * base * pause / 12).as_integer_ratio()
        accrued = round_div(num, den, conventions.rounding_mode, conventions.rounding_unit)
        rows = _amortised(
            base + accrued, policy.holiday_rate, after, add_months(start, pause), conventions, "equal_instalment", 0
        )
        rows = _shift_interest(rows, accrued)
        options.append(_priced("holiday", pause + after, rows, base, waived, debt, affordability, policy))
    options.append(_settlement(debt, affordability, policy, start))
    return rank(options, affordability)


def rank(options: list[PlanOption], affordability: Affordability) -> list[PlanOption]:
    """Affordable options first, most expected recovery first among them (then less waived, then shorter);
    when none is affordable, the lightest burden first. Each option says why it stands where it does."""
    affordable = sorted(
        (o for o in options if o.affordable), key=lambda o: (-o.expected_recovery, o.waived_total, o.months)
    )
    unaffordable = sorted(
        (o for o in options if not o.affordable),
        key=lambda o: (o.share is None, o.share or Decimal(0), -o.expected_recovery),
    )
    limit = f"{affordability.max_share:.0%}"
    currency = affordability.currency
    out: list[PlanOption] = []
    for i, o in enumerate(affordable):
        why = (
            f"best: affordable ({_pct(o.share)} of disposable income, limit {limit}) with the highest expected "
            f"recovery ({format_money(o.expected_recovery, currency)}) of {len(affordable)} affordable options"
            if i == 0
            else f"affordable ({_pct(o.share)}); expected recovery {format_money(o.expected_recovery, currency)}"
        )
        out.append(_with_reason(o, why))
    for o in unaffordable:
        if affordability.disposable <= 0 and o.kind != "settlement":
            why = "not affordable: no disposable income is left after essentials and other debts"
        else:
            why = f"not affordable: takes {_pct(o.share)} of what the debtor has (limit {limit})"
        if not affordable and o is unaffordable[0]:
            why += "; no option is affordable, so the lightest burden comes first (consider a hardship hold)"
        out.append(_with_reason(o, why))
    return out


def _with_reason(o: PlanOption, reason: str) -> PlanOption:
    return PlanOption(**{**o.__dict__, "reason": reason})


def _pct(share: Decimal | None) -> str:
    return "all (nothing is disposable)" if share is None else f"{share:.1%}"


def _waived(debt: Outstanding, components: frozenset[str]) -> dict[str, int]:
    return {c: debt.component(c) for c in COMPONENTS if c in components and debt.component(c) > 0}


def _amortised(
    base: int, rate: Decimal, months: int, start: date, conventions: ProductConventions, method: str, first: int
) -> list[PlanInstalment]:
    schedule = generate_schedule(base, rate, months, start, method, conventions)
    return [PlanInstalment(first + s.seq, s.due_date, s.principal, s.interest) for s in schedule]


def _shift_interest(rows: list[PlanInstalment], accrued: int) -> list[PlanInstalment]:
    """Holiday interest was added to the balance the schedule repays; count it as interest, not principal,
    taking it from the first instalments' principal parts (the amounts paid do not change)."""
    out = []
    for row in rows:
        moved = min(accrued, row.principal)
        accrued -= moved
        out.append(PlanInstalment(row.seq, row.due_date, row.principal - moved, row.interest + moved))
    return out


def _priced(
    kind: Kind,
    months: int,
    rows: list[PlanInstalment],
    base: int,
    waived: dict[str, int],
    debt: Outstanding,
    affordability: Affordability,
    policy: PlanPolicy,
) -> PlanOption:
    monthly = max(r.amount for r in rows)
    total = sum(r.amount for r in rows)
    share = affordability.share(monthly)
    likelihood = policy.likelihood(share)
    return PlanOption(
        kind=kind,
        months=months,
        instalments=tuple(rows),
        restructured=base,
        plan_interest=total - base,
        waived=waived,
        monthly_payment=monthly,
        total_paid=total,
        share=share,
        affordable=affordability.affords(monthly),
        likelihood=likelihood,
        expected_recovery=_expected(total, likelihood),
    )


def _settlement(debt: Outstanding, affordability: Affordability, policy: PlanPolicy, start: date) -> PlanOption:
    discount = policy.max_discount_for(debt.days_past_due)
    # The debtor pays the discounted balance rounded up to the minor unit; the lender waives the rest,
    # non-principal components first.
    lump = int((debt.total * (1 - discount)).to_integral_value(rounding=ROUND_CEILING))
    to_waive = debt.total - lump
    waived: dict[str, int] = {}
    for c in ("fee", "penalty", "interest", "principal"):
        part = min(to_waive, debt.component(c))
        if part:
            waived[c] = part
            to_waive -= part
    available = affordability.savings + max(affordability.disposable, 0)
    share = None if available <= 0 else (Decimal(lump) / available).quantize(Decimal("0.0001"))
    affordable = 0 < lump <= available
    likelihood = policy.completion[0].likelihood if affordable else policy.completion[-1].likelihood
    due = start + timedelta(days=policy.settlement_pay_within_days)
    return PlanOption(
        kind="settlement",
        months=max(1, (due - start).days // 30),
        instalments=(PlanInstalment(1, due, lump, 0),),
        restructured=lump,
        plan_interest=0,
        waived=waived,
        monthly_payment=lump,
        total_paid=lump,
        share=share,
        affordable=affordable,
        likelihood=likelihood,
        expected_recovery=_expected(lump, likelihood),
        discount=discount,
    )


def _expected(total: int, likelihood: Decimal) -> int:
    return int((total * likelihood).to_integral_value(rounding=ROUND_DOWN))
