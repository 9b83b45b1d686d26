"""What a debtor can afford: disposable income from stated, evidenced or estimated finances.

Essentials below the house standard for the household's size and region are replaced by the standard
unless evidenced — a debtor under pressure tends to understate what living costs, and a plan built on
that breaks. Every figure keeps its source, so an offer can show what it was based on.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from typing import Literal

from duecourse.plans.policy import PlanPolicy

Source = Literal["stated", "evidenced", "estimated"]
SHARE_PLACES = Decimal("0.0001")


@dataclass(frozen=True)
class Sourced:
    amount: int  # minor units a month (savings: held now)
    source: Source

    def __post_init__(self) -> None:
        if self.amount < 0:
            raise ValueError("amounts must not be negative")


@dataclass(frozen=True)
class Finances:
    currency: str
    monthly_income: Sourced
    essential_expenses: Sourced
    other_debt_payments: Sourced  # to other lenders, and this lender's loans not in the plan
    savings: Sourced
    household_size: int  # people living on the income, the debtor included
    dependants: int
    region: str | None = None  # ISO 3166-2, e.g. CN-11

    def __post_init__(self) -> None:
        if self.household_size < 1 or not 0 <= self.dependants < self.household_size:
            raise ValueError("household_size counts the debtor; dependants are fewer than the household")


@dataclass(frozen=True)
class Affordability:
    currency: str
    income: int
    essentials: int  # what is counted: the stated figure or the house standard
    essentials_basis: str  # why that figure
    other_debts: int
    disposable: int  # income - essentials - other debts (may be negative)
    savings: int
    max_share: Decimal

    @property
    def max_monthly_payment(self) -> int:
        """The largest affordable monthly payment (0 when nothing is left over)."""
        if self.disposable <= 0:
            return 0
        return int((self.disposable * self.max_share).to_integral_value(rounding=ROUND_DOWN))

    def share(self, monthly_payment: int) -> Decimal | None:
        """The payment as a share of disposable income (4 places, half up); None when nothing is disposable."""
        if self.disposable <= 0:
            return None
        return (Decimal(monthly_payment) / self.disposable).quantize(SHARE_PLACES, ROUND_HALF_UP)

    def affords(self, monthly_payment: int) -> bool:
        """Exactly (not on the rounded share): the payment is at most `max_share` of disposable income."""
        return self.disposable > 0 and monthly_payment <= self.disposable * self.max_share


def assess(finances: Finances, policy: PlanPolicy) -> Affordability:
    if finances.currency != policy.currency:
        raise ValueError(f"finances in {finances.currency}, the plan policy in {policy.currency}")
    standard = policy.standard_for(finances.region, finances.household_size)
    stated = finances.essential_expenses
    if stated.source == "evidenced":
        essentials, basis = stated.amount, "evidenced essential expenses"
    elif stated.amount < standard:
        essentials = standard
        basis = (
            f"{stated.source} essentials {stated.amount} are below the house standard {standard} for a household "
            f"of {finances.household_size} in {finances.region or 'an unlisted region'}: the standard is used"
        )
    else:
        essentials, basis = stated.amount, f"{stated.source} essential expenses (at or above the house standard)"
    disposable = finances.monthly_income.amount - essentials - finances.other_debt_payments.amount
    return Affordability(
        currency=finances.currency,
        income=finances.monthly_income.amount,
        essentials=essentials,
        essentials_basis=basis,
        other_debts=finances.other_debt_payments.amount,
        disposable=disposable,
        savings=finances.savings.amount,
        max_share=policy.max_share_of_disposable,
    )
