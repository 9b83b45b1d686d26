"""Letters on paper: what a written notice and a pre-visit notice print, rendered to PDF and written as a print batch.

The seed asks for a written notice that states the coming measure and its reason before anything serious
happens, and a notice before any door visit that tells the debtor who will come and how to check they are
genuine (issue 4, points 2 and 4). Everything printed is in the frozen dataclasses below; the services
build them from the book (`services/letters.py`), this module only renders and files them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, time
from typing import ClassVar, Final

from duecourse.domain.verification import display

LANGUAGES: Final = ("zh", "en")

# What the written notice announces (the ladder's next serious step for this loan), by step kind.
MEASURES: Final = ("calls", "pre_visit_notice", "door_visit", "legal_referral", "outsourcing", "repayment_plan")

# Why a door visit is planned (the eligibility facts of issue 4, point 5), printed on the pre-visit notice.
VISIT_REASONS: Final = ("contact_failed", "promises_broken", "no_reply_to_notice")


@dataclass(frozen=True)
class LenderIdentity:
    """The lender as printed, in the letter's language, with its only official channels."""

    name: str
    address: str | None  # postal address for written disputes and complaints; None when not configured
    hotline: str
    official_account: str  # the only account payments may go to
    website: str  # the official site that serves /verify (settings.public_url)


@dataclass(frozen=True)
class Debtor:
    ref: str  # borrower_id: what a manifest names, never the name
    name: str
    postal_address: str


@dataclass(frozen=True)
class Debt:
    """What is due as of the letter's date, by component, in integer minor units of `currency`."""

    loan_id: str
    currency: str
    principal: int
    interest: int
    penalty: int
    fees: int
    oldest_due_date: date
    days_past_due: int

    @property
    def total(self) -> int:
        return self.principal + self.interest + self.penalty + self.fees


@dataclass(frozen=True)
class ComingMeasure:
    kind: str  # one of MEASURES
    not_before: date | None  # the earliest day it may happen; None when it is not dated


@dataclass(frozen=True)
class Verification:
    """The letter's own code (canonical, 16 characters) and the page where anyone can check it."""

    code: str
    public_url: str  # settings.public_url, without a trailing slash

    @property
    def display(self) -> str:
        return display(self.code)

    @property
    def url(self) -> str:
        """What the QR code encodes and the letter prints: the /verify page with the code filled in."""
        return f"{self.public_url}/verify?code={self.display}"


@dataclass(frozen=True)
class Visitor:
    name: str
    badge: str


@dataclass(frozen=True)
class PlannedVisit:
    """The visit facts a pre-visit notice prints; H4's visit planning owns them and passes them in."""

    visit_id: str
    reasons: tuple[str, ...]  # among VISIT_REASONS
    window_start: date
    window_end: date
    daily_from: time  # visits happen in daytime slots on working days, local time
    daily_until: time
    visitors: tuple[Visitor, ...]


@dataclass(frozen=True)
class WrittenNotice:
    """A `letter.*` ladder step: the debt, the coming measure and why, the official ways to pay, plan, dispute or
    complain, and the code that proves the letter is genuine."""

    letter_id: str
    template: str  # the ladder template, e.g. letter.written_notice
    action_key: int | None  # the outbox row it answers
    language: str  # zh | en
    issued_on: date
    lender: LenderIdentity
    debtor: Debtor
    debt: Debt
    measure: ComingMeasure
    verification: Verification

    kind: ClassVar[str] = "written_notice"

    def __post_init__(self) -> None:
        _check_language(self.language)
        if self.measure.kind not in MEASURES:
            raise ValueError(f"unknown coming measure {self.measure.kind!r}; known: {', '.join(MEASURES)}")


@dataclass(frozen=True)
class PreVisitNotice:
    """The notice a debtor receives before a door visit: all a written notice says, plus why and when the visit is
    planned, who will come, how to check the notice and the visitors, and the debtor's rights at the door."""

    letter_id: str
    language: str
    issued_on: date
    lender: LenderIdentity
    debtor: Debtor
    debt: Debt
    visit: PlannedVisit
    verification: Verification  # purpose "notice", reference "visit:<visit_id>"
    action_key: int | None = None

    kind: ClassVar[str] = "pre_visit_notice"

    def __post_init__(self) -> None:
        _check_language(self.language)
        visit = self.visit
        unknown = set(visit.reasons) - set(VISIT_REASONS)
        if not visit.reasons or unknown:
            raise ValueError(f"visit reasons must be among {', '.join(VISIT_REASONS)}: got {visit.reasons!r}")
        if visit.window_end < visit.window_start or visit.daily_until <= visit.daily_from:
            raise ValueError("the visit window must not end before it starts")
        if not visit.visitors:
            raise ValueError("a pre-visit notice names who will come")


Letter = WrittenNotice | PreVisitNotice


def _check_language(language: str) -> None:
    if language not in LANGUAGES:
        raise ValueError(f"letters are printed in {' or '.join(LANGUAGES)}, not {language!r}")
