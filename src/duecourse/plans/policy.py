"""The repayment-plan policy (policy/plans.yaml) as typed values, loaded strictly.

A lender's plan policy is data, like its ladders and rules: which plans may be offered, at what rate and
over what terms, how affordability is judged, and who may agree what. Unknown keys, bad numbers and
missing sections stop loading with the file and key named.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Final

import yaml

from duecourse.domain.errors import PolicyError

COMPONENTS: Final = ("principal", "interest", "penalty", "fee")
WAIVABLE: Final = frozenset({"interest", "penalty", "fee"})
ROLES: Final = ("agent", "team_lead", "supervisor")


@dataclass(frozen=True)
class StandardExpenses:
    first_person: int
    each_additional: int

    def for_household(self, size: int) -> int:
        return self.first_person + self.each_additional * max(size - 1, 0)


@dataclass(frozen=True)
class Band:
    up_to: Decimal | None  # None: no upper bound
    likelihood: Decimal


@dataclass(frozen=True)
class DiscountStep:
    min_days_past_due: int
    share: Decimal


@dataclass(frozen=True)
class Authority:
    max_term_months: int
    max_waiver_share: Decimal
    max_settlement_discount: Decimal


@dataclass(frozen=True)
class FollowUp:
    """How agreements are followed up; the defaults are the shipped policy's."""

    watch_days: int = 90
    break_after_days: int = 30
    promise_grace_days: int = 0


@dataclass(frozen=True)
class PlanPolicy:
    path: str
    currency: str
    max_share_of_disposable: Decimal
    standard_expenses: Mapping[str, StandardExpenses]  # by region code, "*" for the rest
    max_term_months: Mapping[str, int]  # by product, "*" for the rest
    restructure_terms: tuple[int, ...]
    restructure_rate: Decimal
    restructure_waive: frozenset[str]
    suspension_terms: tuple[int, ...]
    suspension_waive: frozenset[str]
    holiday_months: tuple[int, ...]
    holiday_rate: Decimal
    holiday_waive: frozenset[str]
    holiday_min_remaining_months: int
    settlement_pay_within_days: int
    settlement_max_discount: tuple[DiscountStep, ...]
    completion: tuple[Band, ...]
    authority: Mapping[str, Authority]
    follow_up: FollowUp

    def standard_for(self, region: str | None, household_size: int) -> int:
        """The standard monthly essentials of a household: its region's, else its country's, else "*"."""
        keys = [region, region.split("-")[0]] if region else []
        table = next((self.standard_expenses[k] for k in keys if k in self.standard_expenses), None)
        return (table or self.standard_expenses["*"]).for_household(household_size)

    def max_term_for(self, product: str) -> int:
        return self.max_term_months.get(product, self.max_term_months["*"])

    def max_discount_for(self, days_past_due: int) -> Decimal:
        share = Decimal(0)
        for step in self.settlement_max_discount:
            if days_past_due >= step.min_days_past_due:
                share = step.share
        return share

    def likelihood(self, share: Decimal | None) -> Decimal:
        """How likely a plan taking `share` of disposable income is paid to the end (None: no disposable
        income at all, the last band)."""
        for band in self.completion:
            if share is not None and (band.up_to is None or share <= band.up_to):
                return band.likelihood
        return self.completion[-1].likelihood


class _Reader:
    """Reads one YAML mapping, naming the dotted key of anything wrong."""

    def __init__(self, path: str) -> None:
        self.path = path

    def fail(self, key: str, reason: str) -> PolicyError:
        return PolicyError(self.path, key, reason)

    def mapping(self, value: object, key: str, allowed: set[str] | None = None) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(key, "must be a mapping")
        if allowed is not None:
            unknown = sorted(set(value) - allowed)
            if unknown:
                raise self.fail(f"{key}.{unknown[0]}" if key else unknown[0], f"unknown key; known: {sorted(allowed)}")
            missing = sorted(allowed - set(value) - {"citation"})
            if missing:
                raise self.fail(f"{key}.{missing[0]}" if key else missing[0], "missing")
        return value

    def whole(self, value: object, key: str, minimum: int = 0) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self.fail(key, f"must be a whole number of at least {minimum}")
        return value

    def share(self, value: object, key: str) -> Decimal:
        if not isinstance(value, str):
            raise self.fail(key, 'must be a decimal written as a string, e.g. "0.25" (never a float)')
        try:
            number = Decimal(value)
        except InvalidOperation:
            raise self.fail(key, f"{value!r} is not a decimal") from None
        if not number.is_finite() or not 0 <= number <= 1:
            raise self.fail(key, "must be between 0 and 1")
        return number

    def terms(self, value: object, key: str) -> tuple[int, ...]:
        if not isinstance(value, list) or not value:
            raise self.fail(key, "must be a non-empty list of months")
        return tuple(sorted({self.whole(v, f"{key}[{i}]", 1) for i, v in enumerate(value)}))

    def waive(self, value: object, key: str) -> frozenset[str]:
        if not isinstance(value, list) or any(v not in WAIVABLE for v in value):
            raise self.fail(key, f"must list components among {sorted(WAIVABLE)} (principal is never waived here)")
        return frozenset(value)


def load_plan_policy(path: Path) -> PlanPolicy:
    r = _Reader(str(path))
    try:
        doc = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise r.fail("(file)", f"cannot be read: {exc}") from exc
    top = r.mapping(
        doc, "", {"currency", "affordability", "products", "options", "follow_up", "completion", "authority"}
    )
    fu = r.mapping(top["follow_up"], "follow_up", {"watch_days", "break_after_days", "promise_grace_days"})
    aff = r.mapping(top["affordability"], "affordability", {"max_share_of_disposable", "standard_expenses"})
    expenses_doc = r.mapping(aff["standard_expenses"], "affordability.standard_expenses")
    if "*" not in expenses_doc:
        raise r.fail("affordability.standard_expenses", "needs a '*' entry for regions not listed")
    expenses = {}
    for region, entry in expenses_doc.items():
        key = f"affordability.standard_expenses.{region}"
        e = r.mapping(entry, key, {"first_person", "each_additional"})
        expenses[str(region)] = StandardExpenses(
            r.whole(e["first_person"], f"{key}.first_person"), r.whole(e["each_additional"], f"{key}.each_additional")
        )
    products_doc = r.mapping(top["products"], "products")
    if "*" not in products_doc:
        raise r.fail("products", "needs a '*' entry for products not listed")
    max_terms = {
        str(name): r.whole(
            r.mapping(entry, f"products.{name}", {"max_term_months", "citation"})["max_term_months"],
            f"products.{name}.max_term_months",
            1,
        )
        for name, entry in products_doc.items()
    }
    opts = r.mapping(top["options"], "options", {"restructure", "suspension", "holiday", "settlement"})
    rs = r.mapping(opts["restructure"], "options.restructure", {"terms", "annual_rate", "waive"})
    su = r.mapping(opts["suspension"], "options.suspension", {"terms", "waive"})
    ho = r.mapping(opts["holiday"], "options.holiday", {"months", "annual_rate", "waive", "min_remaining_months"})
    se = r.mapping(opts["settlement"], "options.settlement", {"pay_within_days", "max_discount"})
    steps_doc = se["max_discount"]
    if not isinstance(steps_doc, list) or not steps_doc:
        raise r.fail("options.settlement.max_discount", "must be a non-empty list")
    steps = []
    for i, entry in enumerate(steps_doc):
        key = f"options.settlement.max_discount[{i}]"
        s = r.mapping(entry, key, {"min_days_past_due", "share"})
        steps.append(
            DiscountStep(
                r.whole(s["min_days_past_due"], f"{key}.min_days_past_due"), r.share(s["share"], f"{key}.share")
            )
        )
    if [s.min_days_past_due for s in steps] != sorted({s.min_days_past_due for s in steps}):
        raise r.fail("options.settlement.max_discount", "steps must rise strictly by min_days_past_due")
    bands_doc = top["completion"]
    if not isinstance(bands_doc, list) or not bands_doc:
        raise r.fail("completion", "must be a non-empty list of bands")
    bands = []
    for i, entry in enumerate(bands_doc):
        key = f"completion[{i}]"
        b = r.mapping(entry, key, {"up_to", "likelihood"})
        bands.append(
            Band(
                None if b["up_to"] is None else r.share(b["up_to"], f"{key}.up_to"),
                r.share(b["likelihood"], f"{key}.likelihood"),
            )
        )
    if bands[-1].up_to is not None or any(b.up_to is None for b in bands[:-1]):
        raise r.fail("completion", "only the last band may (and must) be open-ended (up_to: null)")
    auth_doc = r.mapping(top["authority"], "authority", set(ROLES))
    authority = {}
    for role in ROLES:
        key = f"authority.{role}"
        a = r.mapping(auth_doc[role], key, {"max_term_months", "max_waiver_share", "max_settlement_discount"})
        authority[role] = Authority(
            r.whole(a["max_term_months"], f"{key}.max_term_months", 1),
            r.share(a["max_waiver_share"], f"{key}.max_waiver_share"),
            r.share(a["max_settlement_discount"], f"{key}.max_settlement_discount"),
        )
    currency = top["currency"]
    if not isinstance(currency, str) or len(currency) != 3:
        raise r.fail("currency", "must be an ISO 4217 code")
    return PlanPolicy(
        path=str(path),
        currency=currency,
        max_share_of_disposable=r.share(aff["max_share_of_disposable"], "affordability.max_share_of_disposable"),
        standard_expenses=expenses,
        max_term_months=max_terms,
        restructure_terms=r.terms(rs["terms"], "options.restructure.terms"),
        restructure_rate=r.share(rs["annual_rate"], "options.restructure.annual_rate"),
        restructure_waive=r.waive(rs["waive"], "options.restructure.waive"),
        suspension_terms=r.terms(su["terms"], "options.suspension.terms"),
        suspension_waive=r.waive(su["waive"], "options.suspension.waive"),
        holiday_months=r.terms(ho["months"], "options.holiday.months"),
        holiday_rate=r.share(ho["annual_rate"], "options.holiday.annual_rate"),
        holiday_waive=r.waive(ho["waive"], "options.holiday.waive"),
        holiday_min_remaining_months=r.whole(ho["min_remaining_months"], "options.holiday.min_remaining_months", 1),
        settlement_pay_within_days=r.whole(se["pay_within_days"], "options.settlement.pay_within_days", 1),
        settlement_max_discount=tuple(steps),
        completion=tuple(bands),
        authority=authority,
        follow_up=FollowUp(
            watch_days=r.whole(fu["watch_days"], "follow_up.watch_days", 1),
            break_after_days=r.whole(fu["break_after_days"], "follow_up.break_after_days", 1),
            promise_grace_days=r.whole(fu["promise_grace_days"], "follow_up.promise_grace_days"),
        ),
    )
