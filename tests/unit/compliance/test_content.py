"""The message-wording check: both paths read texts alike and agree on random messages built from fragments.

Texts are assembled from fragments that matter to the rules (every forbidden phrase family of the shipped
packs, amounts in many renderings including near misses, dates in every accepted form and some rejected
ones, names and accounts) mixed with noise that the normal form must see through (full-width forms,
ideographic and zero-width spaces, case). The single path (`one`) and the batch path (`batch`) must give
the same verdict and the same facts for every proposal, under every `message_wording` rule of the
shipped rulebook and under a synthetic rule that asks for everything at once.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import hypothesis.strategies as st
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from pydantic import ValidationError

from duecourse.compliance.calendar import HolidayCalendar
from duecourse.compliance.checks.base import CheckContext
from duecourse.compliance.checks.content import MessageWording, WordingParams, forbidden_labels
from duecourse.compliance.checks.content_text import (
    MARKED_MONEY,
    date_frame,
    date_keys,
    dense,
    dense_expr,
    money_frame,
    money_tokens,
    spaced,
    spaced_expr,
)
from duecourse.compliance.facts import Proposal
from duecourse.compliance.rulebook import load_rulebook
from tests.unit.compliance.status_helpers import assert_paths_agree

ROOT = Path(__file__).resolve().parents[3]
BOOK = load_rulebook(ROOT / "rules")
CTX = CheckContext(calendar=HolidayCalendar.load(ROOT / "rules" / "calendars"))
CHECK = MessageWording()
SHIPPED = [
    pytest.param(v.params, id=f"{r.id}@{v.effective_from}")
    for r in BOOK.rules
    if r.check.kind == "message_wording"
    for v in r.versions
    if v.params is not None
]
DISCLOSURE = WordingParams.model_validate(
    {
        "forbidden": [{"label": "threat", "zh": ["坐牢", "老赖"], "en": [r"\barrest", r"\bjail\b"]}],
        "forbid_debt_facts": True,
    }
)
REQUIRED = WordingParams.model_validate(
    {
        "must_state": ["identity", "amount", "due_date", "official_account"],
        "must_say": [{"label": "opt-out", "en": [r"\breply \W?stop\b"], "zh": ["回复td退订"]}],
        "must_say_initially": [{"label": "mini-Miranda", "en": [r"\battempt(ing)? to collect (a|the) debt\b"]}],
        "must_say_later": [{"label": "debt collector", "en": [r"\bdebt collector\b"]}],
    }
)
# Only the initial/later disclosures, so that every message reaches the question the history decides.
DISCLOSURES = WordingParams.model_validate(
    {"must_say_initially": REQUIRED.must_say_initially, "must_say_later": REQUIRED.must_say_later}
)

NAME = "示例消费金融有限公司"
ACCOUNT = "6222 0000 1111 2222"
# Each slot of a message, drawn independently, so most texts state most of what the rules ask for and
# the later questions (due date, account, opt-out, initial or later disclosure) are reached too.
NAMES = [NAME, "Example Recovery LLC", "示例 消费金融 有限公司", "EXAMPLE RECOVERY llc", "", "Example"]
AMOUNTS = [
    "¥1,234.56",
    "¥1234.56",
    "1,234.56元",
    "人民币1,234.56元",
    "RMB 1,234.56",
    "￥１，２３４．５６",
    "$1,234.56",
    "USD 1,234.56",
    "£1,234.56",
    "¥1,234.55",
    "¥11,234.56",
    "¥1,234.567",
    "¥1,234.6",
    "1,234.56",
    "500元",
    "¥ 0.01",
    "12,34.56元",
    "99999999999999999999.99元",
    "",
]
DATES = [
    "2026年1月17日",
    "2026年01月17日",
    "２０２６年１月１７日",
    "2026-01-17",
    "2026/1/17",
    "January 17, 2026",
    "17 January 2026",
    "Jan. 17th, 2026",
    "17 Jan 2026",
    "January 7, 2026",
    "01/17/2026",
    "12026-01-17",
    "2026-1-177",
    "May 2026",
    "",
]
ACCOUNTS = [ACCOUNT, "６２２２ ００００ １１１１ ２２２２", "examplebank.com/pay", "6222000011112223", ""]
WORDS = [
    "坐牢",
    "坐 牢",
    "老\u200b赖",
    "征信黑名单",
    "借新还旧",
    "网贷",
    "逾期",
    "欠款",
    "借款",
    "这里是朝阳区人民法院",
    "法院工作人员",
    "You will be ARRESTED",
    "arrangement",
    "jailbreak",
    "JAIL",
    "you deadbeat",
    "a court bailiff",
    "bailiffs",
    "missed delivery",
    "debt collector",
    "This is an attempt to collect a debt",
    "any information obtained will be used for that purpose",
    "Reply STOP",
    "reply “stop”",
    "回复TD退订",
    "you cannot opt out",
    "L-1001",
    "l-1001",
    "400-800-1234",
    "请通过官方App还款",
    "ａ",
    "Ｂ",
]
SEPARATORS = [" ", "\u3000", "\u200b", "\u00a0", "\n", "。", "，", ", ", ". ", ""]
FRAGMENTS = NAMES + AMOUNTS + DATES + ACCOUNTS + WORDS


# Around the proposal's moment (2026-03-03T10:00+08:00): only events strictly before it count.
MOMENTS = [
    "2026-03-01T09:00:00+08:00",
    "2026-03-03T09:59:59+08:00",
    "2026-03-03T10:00:00+08:00",
    "2026-03-03T02:00:00Z",
    "2026-03-04T09:00:00+08:00",
]
SYMBOL = {"CNY": "¥", "USD": "$", "GBP": "£", "JPY": "¥"}
CHANNELS = ["call", "sms", "email", "letter", "app_push", "visit", "social_media"]
OUTCOMES = ["conversation", "connected", "no_answer", "voicemail", "busy", "delivered", "failed"]
ACTORS = [("agency", "Example Recovery LLC"), ("lender", NAME), ("agency", NAME)] * 3 + [("debt_collector", " ")]


def _either(draw: st.DrawFn, right: str, options: list[str]) -> str:
    """The right wording three times in four, else any option (often a near miss)."""
    return draw(st.sampled_from(options)) if draw(st.integers(0, 3)) == 3 else right


@st.composite
def texts(draw: st.DrawFn, name: str, currency: str, balance: int, due: date | None, account: str) -> str:
    """A message built slot by slot, so that the later questions of a rule are reached as well as the first."""
    major, minor = divmod(balance, 100)
    day = due or date(2026, 1, 17)
    slots = [
        _either(draw, name, NAMES),
        _either(draw, f"{SYMBOL[currency]}{major:,}.{minor:02d}", AMOUNTS),
        _either(
            draw,
            draw(st.sampled_from([f"{day.year}年{day.month}月{day.day}日", f"{day:%B} {day.day}, {day.year}"])),
            DATES,
        ),
        _either(draw, account, ACCOUNTS),
        _either(draw, "Reply STOP", ["", "you cannot opt out"]),
        _either(draw, "a debt collector", ["", "a debt", "collector"]),
        _either(draw, "This is an attempt to collect a debt", [""]),
        *draw(st.lists(st.sampled_from(WORDS), max_size=3)),
    ]
    return "".join(part + draw(st.sampled_from(SEPARATORS)) for part in draw(st.permutations(slots)))


def event(draw: st.DrawFn, kind: str, name: str) -> dict[str, Any]:
    """An earlier communication that makes the proposal a later one, with one or two of its facts changed."""
    out: dict[str, Any] = {
        "at": "2026-03-01T09:00:00+08:00",
        "channel": "sms",
        "counterpart": "debtor",
        "outcome": "delivered",
        "debts": ["L-1001"],
        "actor": {"kind": kind, "name": name},
    }
    changes: dict[str, list[Any]] = {
        "at": MOMENTS,
        "channel": CHANNELS,
        "counterpart": ["spouse", "employer"],
        "outcome": OUTCOMES,
        "debts": [[], ["L-9"], ["L-9", "L-1001"]],
        "actor": [{"kind": kind, "name": "Other Collections Inc"}],
    }
    for key in draw(st.lists(st.sampled_from(sorted(changes)), max_size=2, unique=True)):
        out[key] = draw(st.sampled_from(changes[key]))
    return out


@st.composite
def proposals(draw: st.DrawFn, n: int) -> list[Proposal]:
    out = []
    for i in range(n):
        kind, name = draw(st.sampled_from(ACTORS))
        history = [event(draw, kind, name) for _ in range(draw(st.integers(0, 3)))]
        currency = draw(st.sampled_from(["CNY", "CNY", "USD", "GBP", "CNY", "USD", "JPY"]))
        balance = draw(st.sampled_from([123456, 123455, 1123456, 50000, 1, 0]))
        due = draw(st.sampled_from([date(2026, 1, 17), date(2026, 1, 7), date(2026, 12, 1), None]))
        accounts = draw(st.sampled_from([[ACCOUNT], ["examplebank.com/pay", ACCOUNT], [ACCOUNT], [], [" "], ["other"]]))
        text = texts(name, currency, balance, due, draw(st.sampled_from([*accounts, ACCOUNT])))
        doc: dict[str, Any] = {
            "id": f"p{i}",
            "jurisdiction": {"country": "CN"},
            "moment": "2026-03-03T10:00:00+08:00",
            "actor": {"kind": kind, "name": name},
            "channel": draw(st.sampled_from(CHANNELS)),
            "counterpart": draw(st.sampled_from(["debtor", "debtor", "spouse", "employer"])),
            "purpose": "collect",
            "message": None
            if draw(st.integers(0, 5)) == 0
            else {"text": draw(text), "language": draw(st.sampled_from(["zh", "en"]))},
            "debtor": {"id": "B-1", "time_zones": ["Asia/Shanghai"]},
            "debt": {
                "id": draw(st.sampled_from(["L-1001", "L-1001", " "])),
                "days_past_due": 45,
                "balance": balance,
                "currency": currency,
                "due_date": due,
                "official_accounts": accounts,
            },
            "history": history,
        }
        out.append(Proposal.model_validate(doc))
    return out


@pytest.mark.parametrize(
    "params",
    [
        *SHIPPED,
        pytest.param(DISCLOSURE, id="disclosure"),
        pytest.param(REQUIRED, id="required"),
        pytest.param(DISCLOSURES, id="disclosures"),
    ],
)
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batch=proposals(12))
def test_single_and_batch_agree(params: WordingParams, batch: list[Proposal]) -> None:
    assert_paths_agree(CHECK, params, batch)


# --- reading texts ------------------------------------------------------------------------------------

ALPHABET = st.sampled_from(
    [
        *"abcXYZ019 ,.-/年月日元¥$£坐牢老赖ＡＢ１２３￥，．：",
        "\u3000",
        "\u200b",
        "\u00a0",
        "\t",
        "\n",
        "\u00ad",
        "\ufeff",
    ]
)


@settings(max_examples=200, deadline=None)
@given(texts=st.lists(st.text(ALPHABET, max_size=40), min_size=1, max_size=10))
def test_normal_forms_agree(texts: list[str]) -> None:
    frame = pl.DataFrame({"t": texts}).select(s=spaced_expr(pl.col("t")), d=dense_expr(pl.col("t")))
    assert frame["s"].to_list() == [spaced(t) for t in texts]
    assert frame["d"].to_list() == [dense(t) for t in texts]


@settings(max_examples=200, deadline=None)
@given(
    texts=st.lists(st.lists(st.sampled_from(FRAGMENTS + SEPARATORS), max_size=8).map("".join), min_size=1, max_size=6)
)
def test_amount_and_date_readings_agree(texts: list[str]) -> None:
    frame = pl.DataFrame({"proposal_id": [str(i) for i in range(len(texts))], "t": texts}).with_columns(
        spaced=spaced_expr(pl.col("t"))
    )
    money = money_frame(frame)
    marked_money = money_frame(frame, MARKED_MONEY)
    dates = date_frame(frame)
    for i, t in enumerate(texts):
        mine = money.filter(pl.col("proposal_id") == str(i))
        assert list(zip(mine["currency"], mine["minor"], strict=True)) == money_tokens(spaced(t))
        marked = marked_money.filter(pl.col("proposal_id") == str(i))
        assert list(zip(marked["currency"], marked["minor"], strict=True)) == money_tokens(spaced(t), MARKED_MONEY)
        assert dates.filter(pl.col("proposal_id") == str(i))["date_key"].to_list() == date_keys(spaced(t))


def test_full_width_forms_fold_to_ascii() -> None:
    assert spaced("ＲＭＢ　１，２３４．５６￥") == "rmb 1,234.56¥"
    assert dense("坐 \u200b牢") == "坐牢"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("应还 ¥1,234.56", [("CNY", 123456)]),
        ("应还1234.56元", [("CNY", 123456)]),
        ("RMB 1,234.56", [("CNY", 123456)]),
        ("US$1,234.56", [("USD", 123456)]),
        ("1,234.56 pounds", [("GBP", 123456)]),
        ("¥1,234.567", [("CNY", None)]),
        ("¥1,234.5", [("CNY", None)]),
        ("¥12,34.56", [("CNY", None)]),
        ("1,234.56", [(None, 123456)]),
        ("¥11,234.56", [("CNY", 1123456)]),
        ("应还¥1,234.56，2026年1月17日到期", [("CNY", 123456), (None, None), (None, None)]),
        ("1,234.56,789", [(None, 123456)]),
        ("¥1,234.56.7", [("CNY", None)]),
    ],
)
def test_amounts_are_read_exactly(text: str, expected: list[tuple[str | None, int | None]]) -> None:
    assert money_tokens(spaced(text)) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026年1月17日", [20260117]),
        ("2026 年 1 月 17 日", [20260117]),
        ("2026-01-17", [20260117]),
        ("January 17, 2026", [20260117]),
        ("17 January 2026", [20260117]),
        ("the 17th of Jan. 2026", [20260117]),
        ("17 january 2026", [20260117]),
        ("01/17/2026", [None]),
        ("12026-01-17", [None]),
    ],
)
def test_dates_are_read_in_common_forms(text: str, expected: list[int | None]) -> None:
    assert date_keys(spaced(text)) == expected


# --- rule parameters ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "complaint"),
    [
        ({"forbidden": [{"label": "x", "en": ["(?=arrest)"]}]}, "both engines"),
        ({"forbidden": [{"label": "x", "en": ["(unclosed"]}]}, "both engines"),
        ({"forbidden": [{"label": "x", "en": ["a*"]}]}, "empty text"),
        ({"forbidden": [{"label": "x", "zh": ["坐 牢"]}]}, "has a space"),
        ({"forbidden": [{"label": "x", "en": ["Arrest"]}]}, "upper case"),
        ({"forbidden": [{"label": "x"}]}, "no pattern"),
        ({}, "neither forbids nor requires"),
        ({"must_state": ["salary"]}, "must_state"),
    ],
)
def test_bad_parameters_are_refused(values: dict[str, Any], complaint: str) -> None:
    with pytest.raises(ValidationError, match=complaint):
        WordingParams.model_validate(values)


def test_forbidden_labels_screens_a_text() -> None:
    threats = next(
        v.params for r in BOOK.rules if r.id == "CN.CONDUCT.THREATS" for v in r.versions if v.params is not None
    )
    assert isinstance(threats, WordingParams)
    assert forbidden_labels(threats, "你这个老赖，We know where you live") == [
        "threat of violence or harm",
        "insult",
    ]
    assert forbidden_labels(threats, "请您小心保管核验码") == []


def test_a_call_without_script_is_not_checked_but_a_letter_without_text_is_missing() -> None:
    doc: dict[str, Any] = {
        "id": "p",
        "jurisdiction": {"country": "CN"},
        "moment": "2026-03-03T10:00:00+08:00",
        "actor": {"kind": "lender", "name": NAME},
        "channel": "call",
        "counterpart": "debtor",
        "purpose": "collect",
        "debtor": {"id": "B", "time_zones": ["Asia/Shanghai"]},
        "debt": {"id": "L", "days_past_due": 1, "balance": 1, "currency": "CNY", "due_date": date(2026, 1, 17)},
    }
    call = Proposal.model_validate(doc)
    letter = Proposal.model_validate({**doc, "id": "q", "channel": "letter"})
    assert CHECK.one(call, REQUIRED, CTX).verdict == "not_applicable"
    assert CHECK.one(letter, REQUIRED, CTX).verdict == "missing_facts"
    assert_paths_agree(CHECK, REQUIRED, [call, letter])
