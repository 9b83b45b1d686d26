"""The words of the ladder's messages: texts per template and language, rendered set-based from the book.

`templates/messages.yaml` holds the texts and the lender's identity (name, hotline, official
accounts, the markets it lends in). Rendering happens before compliance, so the content rules judge
exactly what would be sent. Amounts are rendered from integer minor units with integer arithmetic
(¥1,234.56), never floats. Every message carries its verification code and where to check it.

A template that could never pass the content rules (forbidden wording, missing required wording, a
payment account that is not official) is refused when the catalogue is loaded (`screen`), not when a
message is sent: each text is rendered with specimen facts and judged by the rulebook of every market.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl
import yaml

from duecourse.compliance.checks.base import CheckContext
from duecourse.compliance.engine import decide
from duecourse.compliance.facts import Proposal
from duecourse.compliance.rulebook import Rulebook
from duecourse.domain.dates import MONTHS
from duecourse.domain.errors import StrategyError

PLACEHOLDER = re.compile(r"\{(\w+)\}")
FIELDS = ("lender", "amount", "due_date", "loan_id", "account", "hotline", "code", "verify_url")
# Planning renders a message before its code exists (dispatch issues it); this stand-in keeps the text's
# shape for the content rules, which never depend on the code's value.
CODE_NOT_YET_ISSUED = "0000-0000-0000-0000"
SYMBOL = {"CNY": "¥", "USD": "$", "GBP": "£"}


@dataclass(frozen=True)
class Lender:
    name: dict[str, str]  # by language: zh, en
    address: dict[str, str]  # postal address for written disputes and complaints, by language
    hotline: str
    account: str
    official_accounts: tuple[str, ...]
    markets: tuple[str, ...]  # the rule-pack countries the lender collects in: its templates must pass each


@dataclass(frozen=True)
class MessageCatalogue:
    lender: Lender
    texts: dict[tuple[str, str], str]  # (template, language) -> text with placeholders
    verify_url: str  # the public verification page every message points to
    path: str

    @classmethod
    def load(cls, path: Path, verify_url: str = "http://127.0.0.1:8000/verify") -> MessageCatalogue:
        try:
            doc: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
            lender = doc["lender"]
            texts = {(name, lang): text for name, by_lang in doc["templates"].items() for lang, text in by_lang.items()}
            catalogue = cls(
                Lender(
                    dict(lender["name"]),
                    dict(lender["address"]),
                    lender["hotline"],
                    lender["account"],
                    tuple(lender["official_accounts"]),
                    tuple(lender["markets"]),
                ),
                texts,
                verify_url,
                str(path),
            )
        except (OSError, yaml.YAMLError, KeyError, TypeError, AttributeError) as exc:
            raise StrategyError(str(path), "(file)", f"unusable message catalogue: {exc!r}") from exc
        for (name, lang), text in texts.items():
            unknown = set(PLACEHOLDER.findall(text)) - set(FIELDS)
            if unknown:
                raise StrategyError(str(path), f"templates.{name}.{lang}", f"unknown placeholders {sorted(unknown)}")
            if lang not in lender["name"]:
                raise StrategyError(str(path), f"templates.{name}.{lang}", f"no lender name in language {lang!r}")
        return catalogue


def _pad3(value: pl.Expr) -> pl.Expr:
    return value.cast(pl.String).str.zfill(3)


def amount_text(minor: pl.Expr, currency: pl.Expr) -> pl.Expr:
    """¥1,234.56 from 123456 minor units and CNY (two-decimal currencies), with thousands separators."""
    major, cents = minor // 100, (minor % 100).cast(pl.String).str.zfill(2)
    groups = [(major // 10**9), (major // 10**6) % 1000, (major // 1000) % 1000, major % 1000]
    grouped = (
        pl.when(major >= 10**9)
        .then(pl.format("{},{},{},{}", groups[0], _pad3(groups[1]), _pad3(groups[2]), _pad3(groups[3])))
        .when(major >= 10**6)
        .then(pl.format("{},{},{}", groups[1], _pad3(groups[2]), _pad3(groups[3])))
        .when(major >= 1000)
        .then(pl.format("{},{}", groups[2], _pad3(groups[3])))
        .otherwise(groups[3].cast(pl.String))
    )
    symbol = currency.replace_strict(SYMBOL, default=currency + pl.lit(" "))
    return pl.format("{}{}.{}", symbol, grouped, cents)


def date_text(day: pl.Expr, language: str) -> pl.Expr:
    """2026年1月17日 (zh) or January 17, 2026 (en)."""
    if language == "zh":
        return pl.format("{}年{}月{}日", day.dt.year(), day.dt.month(), day.dt.day())
    month = day.dt.month().replace_strict(dict(enumerate(MONTHS, start=1)), return_dtype=pl.String)
    return pl.format("{} {}, {}", month, day.dt.day(), day.dt.year())


def render(catalogue: MessageCatalogue, frame: pl.DataFrame) -> pl.Series:
    """The text for each row of `frame` (template, language, loan_id, amount, currency, due_date and,
    once issued, verification_code), or null where the catalogue has no text for that template and
    language. One pass per (template, language)."""
    code = pl.col("verification_code") if "verification_code" in frame.columns else pl.lit(CODE_NOT_YET_ISSUED)
    out = pl.Series("message_text", [None] * frame.height, dtype=pl.String)
    indexed = frame.with_row_index("_row")
    for (template, language), part in indexed.partition_by("template", "message_language", as_dict=True).items():
        text = catalogue.texts.get((str(template), str(language)))
        if text is None:
            continue
        values = {
            "lender": pl.lit(catalogue.lender.name[str(language)]),
            "amount": amount_text(pl.col("amount"), pl.col("currency")),
            "due_date": date_text(pl.col("due_date"), str(language)),
            "loan_id": pl.col("loan_id"),
            "account": pl.lit(catalogue.lender.account),
            "hotline": pl.lit(catalogue.lender.hotline),
            "code": code,
            "verify_url": pl.lit(catalogue.verify_url),
        }
        names = PLACEHOLDER.findall(text)
        fmt = PLACEHOLDER.sub("{}", text)
        rendered = part.select("_row", text=pl.format(fmt, *[values[n] for n in names]))
        out = out.scatter(rendered["_row"], rendered["text"])
    return out


# The first part of a template's name says which channel carries it (templates/messages.yaml).
TEMPLATE_CHANNEL = {"sms": "sms", "app": "app_push", "email": "email", "letter": "letter"}
# Specimen facts per market for screening: its currency and a time zone in it.
MARKET_CURRENCY = {"CN": "CNY", "US": "USD", "UK": "GBP"}
MARKET_ZONE = {"CN": "Asia/Shanghai", "US": "America/New_York", "UK": "Europe/London"}
# The checks that judge a message's words; the others judge the moment, the debtor or the history.
CONTENT_CHECKS = frozenset({"message_wording", "official_payment_account"})


def screen(catalogue: MessageCatalogue, book: Rulebook, ctx: CheckContext, on: date) -> None:
    """Refuse a catalogue with a template the content rules in force on `on` would block in any market.

    Each text is rendered with specimen facts (an overdue debt for collection templates, a coming due
    date for `pre_due` ones) and decided by the rulebook; only the content checks' findings count here —
    whether a message may be sent at a given moment to a given debtor is the send-time decision.
    """
    problems: list[tuple[str, str]] = []
    for country in catalogue.lender.markets:
        if not book.has_country(country):
            problems.append(("lender.markets", f"no rule pack for market {country!r}"))
    for (name, language), _ in sorted(catalogue.texts.items()):
        key = f"templates.{name}.{language}"
        channel = TEMPLATE_CHANNEL.get(name.split(".")[0])
        if channel is None:
            problems.append((key, f"the name must start with one of {sorted(TEMPLATE_CHANNEL)}"))
            continue
        for country in (c for c in catalogue.lender.markets if book.has_country(c)):
            verdict = decide(book, _specimen(catalogue, name, language, channel, country, on), ctx, reschedule=False)
            for o in verdict.outcomes:
                if o.blocks and o.rule is not None and o.rule.check.kind in CONTENT_CHECKS:
                    problems.append((key, f"{country}: {o.rule_id} ({o.rule.title.en}): {o.facts}"))
    if problems:
        detail = "; ".join(f"{k}: {why}" for k, why in problems)
        raise StrategyError(catalogue.path, problems[0][0], f"templates the content rules refuse: {detail}")


def _specimen(catalogue: MessageCatalogue, name: str, language: str, channel: str, country: str, on: date) -> Proposal:
    pre_due = "pre_due" in name
    due = on + timedelta(days=3) if pre_due else on - timedelta(days=30)
    currency = MARKET_CURRENCY.get(country, "CNY")
    row = pl.DataFrame(
        {
            "template": [name],
            "message_language": [language],
            "loan_id": ["L-SPECIMEN"],
            "amount": [123_456],
            "currency": [currency],
            "due_date": [due],
            "verification_code": ["K7QM-3XZP-9RTA-B2CW"],
        }
    )
    text = render(catalogue, row)[0]
    zone = MARKET_ZONE.get(country, "UTC")
    return Proposal.model_validate(
        {
            "id": f"screen:{name}:{language}:{country}",
            "jurisdiction": {"country": country},
            "moment": datetime.combine(on, time(10, 0), ZoneInfo(zone)).isoformat(),
            "actor": {"kind": "lender", "name": catalogue.lender.name[language]},
            "channel": channel,
            "counterpart": "debtor",
            "purpose": "notify" if pre_due else "collect",
            "message": {"language": language, "text": text},
            "debtor": {"id": "B-SPECIMEN", "time_zones": [zone], "flags": [], "reachable": True},
            "debt": {
                "id": "L-SPECIMEN",
                "days_past_due": 0 if pre_due else 30,
                "balance": 123_456,
                "currency": currency,
                "due_date": due.isoformat(),
                "fees_claimed": 0,
                "payment_account": catalogue.lender.account,
                "official_accounts": list(catalogue.lender.official_accounts),
            },
            "history": [],
        }
    )
