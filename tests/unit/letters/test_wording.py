"""A printed letter passes the same content rules as a message (issue 4, point 3): judged on the words read back
from the PDF, for the debt it is about, by the rulebook's wording checks in the debtor's market."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from duecourse.adapters.channels.letters import MEASURES, ComingMeasure, Letter, LetterRenderer
from duecourse.compliance.calendar import HolidayCalendar
from duecourse.compliance.checks.base import CheckContext
from duecourse.compliance.engine import decide
from duecourse.compliance.facts import Proposal
from duecourse.compliance.rulebook import load_rulebook
from duecourse.services.messages import CONTENT_CHECKS
from tests.unit.letters.pdf_tools import FONT_CACHE, pdf_text
from tests.unit.letters.samples import every_letter, written

ROOT = Path(__file__).resolve().parents[3]
BOOK = load_rulebook(ROOT / "rules")
CTX = CheckContext(calendar=HolidayCalendar.load(ROOT / "rules" / "calendars"))
ZONE = "Asia/Shanghai"


def _as_proposal(letter: Letter, text: str) -> Proposal:
    debt = letter.debt
    return Proposal.model_validate(
        {
            "id": f"letter:{letter.letter_id}:{letter.language}",
            "jurisdiction": {"country": "CN"},
            "moment": datetime.combine(letter.issued_on, time(10, 0), ZoneInfo(ZONE)).isoformat(),
            "actor": {"kind": "lender", "name": letter.lender.name},
            "channel": "letter",
            "counterpart": "debtor",
            "purpose": "collect",
            "message": {"language": letter.language, "text": text},
            "debtor": {"id": letter.debtor.ref, "time_zones": [ZONE], "flags": [], "reachable": True},
            "debt": {
                "id": debt.loan_id,
                "days_past_due": debt.days_past_due,
                "balance": debt.total,
                "currency": debt.currency,
                "due_date": debt.oldest_due_date.isoformat(),
                "fees_claimed": debt.fees,
                "payment_account": letter.lender.official_account,
                "official_accounts": [letter.lender.official_account],
            },
            "history": [],
        }
    )


# Both notices in both languages, and the written notice announcing each measure it can announce.
LETTERS = every_letter() + [
    dataclasses.replace(written(language), measure=ComingMeasure(kind, date(2026, 5, 1)))
    for kind in MEASURES
    for language in ("zh", "en")
]


@pytest.mark.parametrize(
    "letter",
    LETTERS,
    ids=lambda letter: f"{letter.kind}-{letter.language}-{getattr(letter, 'measure', None) and letter.measure.kind}",
)
def test_the_printed_words_pass_the_content_rules(letter: Letter, tmp_path: Path) -> None:
    pdf = tmp_path / "letter.pdf"
    pdf.write_bytes(LetterRenderer(ROOT / "templates" / "letters", font_cache=FONT_CACHE).render_pdf(letter))
    text = " ".join(pdf_text(pdf).split())
    verdict = decide(BOOK, _as_proposal(letter, text), CTX, reschedule=False)
    refused = [
        f"{o.rule_id}: {o.facts}"
        for o in verdict.outcomes
        if o.blocks and o.rule is not None and o.rule.check.kind in CONTENT_CHECKS
    ]
    assert refused == []
    judged = {o.rule_id for o in verdict.outcomes if o.rule is not None and o.rule.check.kind in CONTENT_CHECKS}
    assert {"HOUSE.MESSAGE.REQUIRED", "CN.CONDUCT.THREATS", "CN.CONDUCT.MISLEADING"} <= judged
