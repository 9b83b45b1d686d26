"""Who may agree a plan: an offer within a role's limits takes effect at once, one beyond waits for a
supervisor (issue 5, point 3). The limits are house policy (policy/plans.yaml, `authority`)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from duecourse.plans.options import PlanOption
from duecourse.plans.policy import ROLES, PlanPolicy


@dataclass(frozen=True)
class AuthorityCheck:
    role: str
    within: bool
    reasons: tuple[str, ...]  # each limit exceeded; empty when within


def check_authority(option: PlanOption, outstanding_total: int, role: str, policy: PlanPolicy) -> AuthorityCheck:
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; known: {', '.join(ROLES)}")
    limits = policy.authority[role]
    reasons = []
    if option.months > limits.max_term_months:
        reasons.append(f"term {option.months} months is over the {role} limit of {limits.max_term_months}")
    waiver = Decimal(option.waived_total) / outstanding_total if outstanding_total else Decimal(0)
    waiver = waiver.quantize(Decimal("0.0001"), ROUND_HALF_UP)
    if waiver > limits.max_waiver_share:
        reasons.append(f"waiver {waiver:.2%} of the balance is over the {role} limit of {limits.max_waiver_share:.0%}")
    if option.kind == "settlement" and option.discount > limits.max_settlement_discount:
        limit = limits.max_settlement_discount
        reasons.append(f"settlement discount {option.discount:.0%} is over the {role} limit of {limit:.0%}")
    return AuthorityCheck(role, not reasons, tuple(reasons))
