"""The words of the ladder's messages: texts per template and language, rendered set-based from the book.

`templates/messages.yaml` holds the texts and the lender's identity (name, hotline, official
accounts). Rendering happens before compliance, so the content rules judge exactly what would be sent.
Amounts are rendered from integer minor units with integer arithmetic (¥1,234.56), never floats.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import yaml

from duecourse.domain.errors import StrategyError

PLACEHOLDER = re.compile(r"\{(\w+)\}")
FIELDS = ("lender", "amount", "due_date", "loan_id", "account", "hotline")
SYMBOL = {"CNY": "¥", "USD": "$", "GBP": "£"}
MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


@dataclass(frozen=True)
class Lender:
    name: dict[str, str]  # by language: zh, en
    hotline: str
    account: str
    official_accounts: tuple[str, ...]


@dataclass(frozen=True)
class MessageCatalogue:
    lender: Lender
    texts: dict[tuple[str, str], str]  # (template, language) -> text with placeholders

    @classmethod
    def load(cls, path: Path) -> MessageCatalogue:
        try:
            doc: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
            lender = doc["lender"]
            texts = {(name, lang): text for name, by_lang in doc["templates"].items() for lang, text in by_lang.items()}
            catalogue = cls(
                Lender(dict(lender["name"]), lender["hotline"], lender["account"], tuple(lender["official_accounts"])),
                texts,
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
    """The text for each row of `frame` (template, language, loan_id, amount, currency, due_date), or null
    where the catalogue has no text for that template and language. One pass per (template, language)."""
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
        }
        names = PLACEHOLDER.findall(text)
        fmt = PLACEHOLDER.sub("{}", text)
        rendered = part.select("_row", text=pl.format(fmt, *[values[n] for n in names]))
        out = out.scatter(rendered["_row"], rendered["text"])
    return out
