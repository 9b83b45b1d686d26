"""Reading a message as its reader would: one normal form of the text, and the amounts and dates it states.

Both engine paths must read a text identically, so each reading here has a Python form (the single path)
and a Polars expression form (the batch path) built from the same regular expressions. Those use only
syntax that Python's `re` and Rust's `regex` interpret alike: `[0-9]` rather than `\\d` (which matches
other scripts' digits that the two sides parse differently), no look-around, no back-references.

Two forms of a text: *spaced* (full-width forms folded to ASCII, so ＡＢＣ１２３，￥ become abc123,¥; ASCII
in lower case; invisible characters removed; every run of white space one space) for English, amounts and
dates, and *dense* (the spaced form without spaces) for Chinese, whose words are not separated and where a
space inside a phrase ("坐 牢") must not hide it. The fold is a table of single characters rather than
Unicode NFKC: it covers what Chinese text mixes in (full-width ASCII, the ideographic space, full-width
currency signs), maps both paths alike, and costs a quarter of NFKC on the batch path. Non-ASCII letters
keep their case; patterns match case-insensitively anyway.
"""

from __future__ import annotations

import re
from datetime import date
from functools import cache
from typing import Final

import polars as pl

# One character for one (or none): full-width ASCII forms (U+FF01–U+FF5E) to ASCII, full-width currency
# signs to theirs, ASCII upper case to lower case, and the soft hyphen and zero-width characters, which
# are invisible and so must not split a phrase, to nothing.
FOLD: Final[dict[str, str]] = {
    **{chr(c): chr(c - 0xFEE0).lower() for c in range(0xFF01, 0xFF5F)},
    **{"\uffe0": "¢", "\uffe1": "£", "\uffe5": "¥", "\uffe6": "₩"},
    **{chr(c): chr(c + 32) for c in range(ord("A"), ord("Z") + 1)},
    **dict.fromkeys("\u00ad\u200b\u200c\u200d\u2060\ufeff", ""),
}
_TABLE: Final = str.maketrans(FOLD)
# Unicode White_Space, spelled out so both engines agree on it.
WHITE: Final = "".join(
    ("\t\n\x0b\x0c\r \x85\xa0\u1680", *map(chr, range(0x2000, 0x200B)), "\u2028\u2029\u202f\u205f\u3000")
)
WHITESPACE: Final = f"[{WHITE}]+"
# The batch form folds each white space character to a space in the same pass as `FOLD` and then collapses
# runs of spaces: the same text as replacing each run of white space, at half the cost (most runs are one
# space, which the run-replacing regex would rewrite all the same).
_FOLD_AND_SPACE: Final = {**FOLD, **dict.fromkeys(WHITE.replace(" ", ""), " ")}


def spaced(text: str) -> str:
    return re.sub(WHITESPACE, " ", text.translate(_TABLE)).strip(" ")


def dense(text: str) -> str:
    return spaced(text).replace(" ", "")


def spaced_expr(text: pl.Expr) -> pl.Expr:
    folded = text.str.replace_many(list(_FOLD_AND_SPACE), list(_FOLD_AND_SPACE.values()))
    return folded.str.replace_all("  +", " ").str.strip_chars(" ")


def dense_expr(text: pl.Expr) -> pl.Expr:
    return spaced_expr(text).str.replace_all(" ", "", literal=True)


@cache
def compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


# --- amounts of money -------------------------------------------------------------------------------

# How each currency's amounts are marked, before or after the figure (in the spaced form: lower case,
# full-width ￥ already ¥). Longer marks first so "us$" is read whole. A currency not listed here cannot
# be read, and a rule that needs its amount blocks for missing facts.
CURRENCY_MARKS: Final[dict[str, tuple[tuple[str, ...], tuple[str, ...]]]] = {
    "CNY": (("人民币", "rmb", "cny", "¥"), ("元", "rmb", "cny")),
    "USD": (("us$", "usd", "$"), ("usd", "dollars")),
    "GBP": (("gbp", "£"), ("gbp", "pounds")),
}
MARK_CURRENCY: Final = {m: c for c, (before, after) in CURRENCY_MARKS.items() for m in (*before, *after)}
_BEFORE: Final = "|".join(re.escape(m) for c in CURRENCY_MARKS.values() for m in c[0])
_AFTER: Final = "|".join(re.escape(m) for c in CURRENCY_MARKS.values() for m in c[1])
_FIGURE: Final = "[0-9](?:[0-9,.]*[0-9])?"
# A figure with the currency mark around it, if any: "¥1,234.56", "1234.56 元", "$ 1,234.56", "2026".
MONEY: Final = f"(?:(?:{_BEFORE}) ?)?{_FIGURE}(?: ?(?:{_AFTER}))?"
# Only figures with a mark: an amount owed must say its currency, and most figures (dates, phone numbers,
# accounts) have none, so the batch path reads far fewer tokens.
MARKED_MONEY: Final = f"(?:{_BEFORE}) ?{_FIGURE}(?: ?(?:{_AFTER}))?|{_FIGURE} ?(?:{_AFTER})"
# An amount as the policy accepts it (group 1): thousands separated by commas or not at all, exactly two
# decimals, at most 16 integer digits (so the minor units fit in 64 bits on both paths). A comma and more
# figures may follow, as when a full-width comma runs into the next number ("¥1,234.56，2026年…").
AMOUNT: Final = r"^((?:[0-9]{1,3}(?:,[0-9]{3}){1,5}|[0-9]{1,16})\.[0-9]{2})(?:,[0-9][0-9,.]*)?$"


def money(token: str) -> tuple[str | None, int | None]:
    """A `MONEY` token's currency (None: unmarked) and minor units (None: not a well-formed amount)."""
    before = re.match(f"(?:{_BEFORE})", token)
    after = re.search(f"(?:{_AFTER})$", token)
    mark = before.group(0) if before else after.group(0) if after else None
    figure = re.search(_FIGURE, token)
    amount = None if figure is None else re.search(AMOUNT, figure.group(0))
    minor = None if amount is None else int(re.sub("[,.]", "", amount.group(1)))
    return (None if mark is None else MARK_CURRENCY[mark]), minor


def money_tokens(spaced_text: str, pattern: str = MONEY) -> list[tuple[str | None, int | None]]:
    return [money(m.group(0)) for m in compiled(pattern).finditer(spaced_text)]


def money_frame(frame: pl.DataFrame, pattern: str = MONEY, key: str = "proposal_id") -> pl.DataFrame:
    """Every `pattern` token of `frame["spaced"]`: (key, currency, minor), one row per token."""
    token = pl.col("token")
    figure = token.str.extract(f"({_FIGURE})", 1)
    mark = pl.coalesce(token.str.extract(f"^({_BEFORE})", 1), token.str.extract(f"({_AFTER})$", 1))
    return (
        frame.select(key, token=pl.col("spaced").str.extract_all(pattern))
        .explode("token")
        .drop_nulls("token")
        .select(
            key,
            currency=mark.replace_strict(MARK_CURRENCY, default=None, return_dtype=pl.String),
            minor=figure.str.extract(AMOUNT, 1).str.replace_all("[,.]", "").cast(pl.Int64, strict=False),
        )
    )


def render_amount(currency: str, minor: int) -> str:
    return f"{currency} {minor // 100}.{minor % 100:02d}"


def render_amount_expr(currency: pl.Expr, minor: pl.Expr) -> pl.Expr:
    return pl.format("{} {}.{}", currency, minor // 100, (minor % 100).cast(pl.String).str.zfill(2))


# --- dates ------------------------------------------------------------------------------------------

_MONTH_NAMES: Final = (
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
)
MONTH_NUMBER: Final = {name[:3]: i for i, name in enumerate(_MONTH_NAMES, start=1)}
_MONTH: Final = "|".join(
    (*_MONTH_NAMES, "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sept", "sep", "oct", "nov", "dec")
)
_ORDINAL: Final = "(?:st|nd|rd|th)?"
# 2026-01-17, 2026/1/17, 2026.1.17; 2026年1月17日; January 17, 2026; 17 January 2026 (abbreviations too).
DATE: Final = (
    "[0-9]+[-/.][0-9]+[-/.][0-9]+"
    "|[0-9]+ ?年 ?[0-9]+ ?月 ?[0-9]+ ?[日号]"
    f"|(?:{_MONTH})\\.? [0-9]+{_ORDINAL},? [0-9]+"
    f"|[0-9]+{_ORDINAL} (?:of )?(?:{_MONTH})\\.?,? [0-9]+"
)


def date_key(day: date) -> int:
    return day.year * 10000 + day.month * 100 + day.day


def date_token_key(token: str) -> int | None:
    """A `DATE` token as year*10000 + month*100 + day; None when its year is not 4 digits and so on."""
    digits = re.findall("[0-9]+", token)
    name = re.search(f"({_MONTH})", token)
    if name is not None:
        if len(digits) != 2:
            return None
        day, year, month = digits[0], digits[1], MONTH_NUMBER[name.group(1)[:3]]
    else:
        if len(digits) != 3 or not 1 <= len(digits[1]) <= 2:
            return None
        year, month, day = digits[0], int(digits[1]), digits[2]
    if len(year) != 4 or not 1 <= len(day) <= 2:
        return None
    return int(year) * 10000 + month * 100 + int(day)


def date_keys(spaced_text: str) -> list[int | None]:
    return [date_token_key(m.group(0)) for m in compiled(DATE).finditer(spaced_text)]


def date_frame(frame: pl.DataFrame, key: str = "proposal_id") -> pl.DataFrame:
    """Every `DATE` token of `frame["spaced"]` as (key, date_key), one row per token."""
    token = pl.col("token")
    digits = pl.col("digits")
    name = pl.col("name")
    named = name.is_not_null()

    def part(i: int) -> pl.Expr:
        return digits.list.get(i, null_on_oob=True)

    year = pl.when(named).then(part(1)).otherwise(part(0))
    day = pl.when(named).then(part(0)).otherwise(part(2))
    month_digits = part(1)
    month = (
        pl.when(named)
        .then(name.str.slice(0, 3).replace_strict(MONTH_NUMBER, default=None, return_dtype=pl.Int64))
        .otherwise(month_digits.cast(pl.Int64, strict=False))
    )
    valid = (
        pl.when(named)
        .then(digits.list.len() == 2)
        .otherwise((digits.list.len() == 3) & month_digits.str.len_chars().is_between(1, 2))
        & (year.str.len_chars() == 4)
        & day.str.len_chars().is_between(1, 2)
    )
    return (
        frame.select(key, token=pl.col("spaced").str.extract_all(DATE))
        .explode("token")
        .drop_nulls("token")
        .with_columns(digits=token.str.extract_all("[0-9]+"), name=token.str.extract(f"({_MONTH})", 1))
        .select(
            key,
            date_key=pl.when(valid)
            .then(year.cast(pl.Int64, strict=False) * 10000 + month * 100 + day.cast(pl.Int64, strict=False))
            .otherwise(None),
        )
    )


def date_key_expr(day: pl.Expr) -> pl.Expr:
    return day.dt.year().cast(pl.Int64) * 10000 + day.dt.month().cast(pl.Int64) * 100 + day.dt.day().cast(pl.Int64)
