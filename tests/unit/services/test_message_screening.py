"""A template the content rules would refuse is refused when the catalogue loads, naming the key and rule."""

from __future__ import annotations

import dataclasses
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from duecourse.compliance.calendar import HolidayCalendar
from duecourse.compliance.checks.base import CheckContext
from duecourse.compliance.rulebook import load_rulebook
from duecourse.domain.errors import StrategyError
from duecourse.services.messages import CODE_NOT_YET_ISSUED, MessageCatalogue, render, screen

ROOT = Path(__file__).resolve().parents[3]
BOOK = load_rulebook(ROOT / "rules")
CTX = CheckContext(calendar=HolidayCalendar.load(ROOT / "rules" / "calendars"))
CATALOGUE = MessageCatalogue.load(ROOT / "templates" / "messages.yaml", "https://verify.example.cn/verify")
DAY = date(2026, 11, 29)


def _with(text: str, name: str = "sms.extra", language: str = "zh") -> MessageCatalogue:
    return dataclasses.replace(CATALOGUE, texts={**CATALOGUE.texts, (name, language): text})


def test_the_shipped_catalogue_passes_every_market() -> None:
    screen(CATALOGUE, BOOK, CTX, DAY)


def test_forbidden_wording_is_refused_at_load_naming_the_template_and_rule() -> None:
    good = CATALOGUE.texts[("sms.overdue_amount_and_date", "zh")]
    with pytest.raises(StrategyError) as caught:
        screen(_with(good + "再不还款就让你坐牢。"), BOOK, CTX, DAY)
    assert caught.value.key == "templates.sms.extra.zh"
    assert "CN.CONDUCT.MISLEADING" in caught.value.reason and "坐牢" in caught.value.reason


def test_missing_required_wording_is_refused() -> None:
    with pytest.raises(StrategyError) as caught:
        screen(_with("【{lender}】您的借款{loan_id}应还{amount}，请尽快处理。核验码{code}。"), BOOK, CTX, DAY)
    assert "HOUSE.MESSAGE.REQUIRED" in caught.value.reason
    assert "due date" in caught.value.reason


def test_a_market_without_a_rule_pack_is_refused() -> None:
    elsewhere = dataclasses.replace(CATALOGUE, lender=dataclasses.replace(CATALOGUE.lender, markets=("CN", "FR")))
    with pytest.raises(StrategyError) as caught:
        screen(elsewhere, BOOK, CTX, DAY)
    assert caught.value.key == "lender.markets" and "'FR'" in caught.value.reason


def test_a_template_named_for_no_channel_is_refused() -> None:
    with pytest.raises(StrategyError) as caught:
        screen(_with("hello", name="fax.reminder", language="en"), BOOK, CTX, DAY)
    assert caught.value.key == "templates.fax.reminder.en"


def _frame(**extra: list[object]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "template": ["sms.overdue_amount_and_date", "sms.overdue_amount_and_date"],
            "message_language": ["zh", "en"],
            "loan_id": ["L-1", "L-2"],
            "amount": [123_456, 5],
            "currency": ["CNY", "CNY"],
            "due_date": [date(2026, 1, 17), date(2026, 2, 1)],
            **extra,
        }
    )


def test_a_message_carries_its_code_and_where_to_check_it() -> None:
    texts = render(CATALOGUE, _frame(verification_code=["K7QM-3XZP-9RTA-B2CW", "ABCD-EFGH-JKMN-PQRS"])).to_list()
    assert "核验码K7QM-3XZP-9RTA-B2CW" in texts[0] and "https://verify.example.cn/verify" in texts[0]
    assert "¥1,234.56" in texts[0] and "2026年1月17日" in texts[0]
    assert "Verification code ABCD-EFGH-JKMN-PQRS" in texts[1] and "¥0.05" in texts[1]


def test_before_dispatch_issues_a_code_the_text_holds_a_stand_in() -> None:
    texts = render(CATALOGUE, _frame()).to_list()
    assert all(CODE_NOT_YET_ISSUED in t for t in texts)
