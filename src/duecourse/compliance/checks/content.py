"""What a message may not say and what it must say: forbidden and required wording, in Chinese and English.

One check, `message_wording`, parameterised by its rule: wording that is forbidden (threats, insults,
impersonating courts or police, invented blacklists or legal consequences, inducing new borrowing, and, for
third parties, any word about the debt), the facts of the proposal a message must state (who is
collecting, the amount owed, the due date, an official way to pay), and wording it must carry (the US
disclosures and opt-out instructions). Every phrase is a regular expression from the rule file; Chinese
phrases are matched in the dense form of the text, English ones in the spaced form (`content_text`).
Every language's phrases are tried on every message: the declared language is the sender's claim, and a
threat in English inside a Chinese message is still a threat.

Where there is no message: an SMS, e-mail, letter, app push or social-media message *is* its text, so
without it the wording cannot be checked (missing facts, which blocks). A call or visit is spoken: its
script is checked when one is given; without one the words are only known afterwards, from the recording
(CN.RECORDING.CALLS, CN.VISIT.RECORDING), so this check does not apply.
"""

from __future__ import annotations

import re
from typing import Final, Literal

import polars as pl
from pydantic import Field, field_validator, model_validator

from duecourse.compliance.checks.base import Check, CheckContext, Finding, Params, findings
from duecourse.compliance.checks.content_text import (
    CURRENCY_MARKS,
    MARKED_MONEY,
    compiled,
    date_frame,
    date_key,
    date_key_expr,
    date_keys,
    dense,
    dense_expr,
    money_frame,
    money_tokens,
    render_amount,
    render_amount_expr,
    spaced,
    spaced_expr,
)
from duecourse.compliance.facts import Outcome, Proposal

# The channels whose message is the whole contact; call and visit are spoken.
TEXT_CHANNELS: Final = ("sms", "email", "letter", "app_push", "social_media")
Fact = Literal["identity", "amount", "due_date", "official_account"]
_PROBES: Final = ("", " ", "a", "字", "0")


def _alternation(patterns: tuple[str, ...]) -> str:
    """One regex matching any of `patterns`; group 1 is the (leftmost) match.

    Not `(?i)`: the text is already in lower case, and Unicode case folding over a long alternation
    makes Rust's regex leave its fast automaton (a hundred times slower).
    """
    return "(" + "|".join(f"(?:{p})" for p in patterns) + ")"


class Wording(Params):
    """One kind of wording, e.g. "threat of arrest", as regular expressions in each language."""

    label: str = Field(min_length=1)
    zh: tuple[str, ...] = ()  # matched in the dense form: no spaces in a pattern
    en: tuple[str, ...] = ()  # matched in the spaced form: lower case (so are patterns), single spaces

    @field_validator("zh", "en")
    @classmethod
    def _readable_by_both_engines(cls, patterns: tuple[str, ...]) -> tuple[str, ...]:
        for p in patterns:
            if re.search("[A-Z]", re.sub(r"\\.", "", p)):
                raise ValueError(f"pattern {p!r} has upper case: it is matched against lower-case text")
            try:
                python = re.compile(p)
                pl.select(pl.lit("").str.contains(p))
            except (re.error, pl.exceptions.ComputeError) as exc:
                raise ValueError(f"pattern {p!r} is not a regular expression both engines read: {exc}") from exc
            if any((m := python.search(probe)) is not None and m.group(0) == "" for probe in _PROBES):
                raise ValueError(f"pattern {p!r} matches the empty text")
        return patterns

    @field_validator("zh")
    @classmethod
    def _no_spaces(cls, patterns: tuple[str, ...]) -> tuple[str, ...]:
        for p in patterns:
            if re.search(r"\s|\\s", p):
                raise ValueError(f"Chinese pattern {p!r} has a space: it is matched in the text without spaces")
        return patterns

    @model_validator(mode="after")
    def _some_pattern(self) -> Wording:
        if not self.zh and not self.en:
            raise ValueError(f"wording {self.label!r} has no pattern")
        return self

    def find(self, dense_text: str, spaced_text: str) -> str | None:
        """The matched words (Chinese first), or None."""
        for patterns, text in ((self.zh, dense_text), (self.en, spaced_text)):
            if patterns and (m := compiled(_alternation(patterns)).search(text)) is not None:
                return m.group(1)
        return None

    def found_expr(self) -> pl.Expr:
        return _any_wording((self,))

    def match_expr(self) -> pl.Expr:
        return pl.coalesce(
            [
                pl.col(col).str.extract(_alternation(ps), 1)
                for ps, col in ((self.zh, "dense"), (self.en, "spaced"))
                if ps
            ]
        )


def _any_wording(wordings: tuple[Wording, ...]) -> pl.Expr:
    """Whether the message uses any of `wordings`: one regex pass per language for all of them."""
    zh = tuple(p for w in wordings for p in w.zh)
    en = tuple(p for w in wordings for p in w.en)
    return pl.any_horizontal(
        [pl.col(col).str.contains(_alternation(ps)) for ps, col in ((zh, "dense"), (en, "spaced")) if ps]
    )


class WordingParams(Params):
    forbidden: tuple[Wording, ...] = ()
    # To a third party: no amount of money, not the balance as a bare figure, not the debt's id.
    forbid_debt_facts: bool = False
    must_state: tuple[Fact, ...] = ()
    must_say: tuple[Wording, ...] = ()  # each: at least one of its patterns
    # The first communication by this actor with the debtor on this debt (for a written message: the first
    # written one) and the later ones, as FDCPA 1692e(11) distinguishes them.
    must_say_initially: tuple[Wording, ...] = ()
    must_say_later: tuple[Wording, ...] = ()
    communicated: tuple[Outcome, ...] = ("conversation", "delivered")  # history outcomes that were communications

    @model_validator(mode="after")
    def _says_something(self) -> WordingParams:
        if not (
            self.forbidden
            or self.forbid_debt_facts
            or self.must_state
            or self.must_say
            or self.must_say_initially
            or self.must_say_later
        ):
            raise ValueError("the rule neither forbids nor requires anything")
        return self

    @property
    def needs_history(self) -> bool:
        return bool(self.must_say_initially or self.must_say_later)


def forbidden_labels(params: WordingParams, text: str) -> list[str]:
    """The labels of every forbidden wording `text` uses (for screening templates before use)."""
    d, s = dense(text), spaced(text)
    return [w.label for w in params.forbidden if w.find(d, s) is not None]


# The proposal columns the batch questions read besides the message.
_READ: Final = (
    "moment_utc",
    "channel",
    "counterpart",
    "actor_kind",
    "actor_name",
    "debt_id",
    "debt_balance",
    "debt_currency",
    "debt_due_date",
    "debt_official_accounts",
)


class MessageWording(Check):
    kind = "message_wording"
    reads = ("message_text", "message_spaced", "message_dense", *_READ)
    params = WordingParams

    def one(self, proposal: Proposal, params: WordingParams, ctx: CheckContext) -> Finding:
        p = proposal
        if p.message is None:
            if p.channel in TEXT_CHANNELS:
                return Finding("missing_facts", f"no message text is given for this {p.channel}")
            return Finding("not_applicable", f"no script is given for this {p.channel}")
        s = spaced(p.message.text)
        d = s.replace(" ", "")
        for w in params.forbidden:
            if (words := w.find(d, s)) is not None:
                return Finding("violation", f"the message uses forbidden wording: {w.label} ({words})")
        if params.forbid_debt_facts:
            tokens = money_tokens(s)
            if any(currency is not None or minor == p.debt.balance for currency, minor in tokens):
                return Finding("violation", f"the message to the {p.counterpart} states an amount of money")
            debt_id = dense(p.debt.id)
            if debt_id and debt_id in d:
                return Finding("violation", f"the message to the {p.counterpart} names the debt {p.debt.id}")
        for fact in params.must_state:
            if (found := _stated(fact, p, s, d)) is not None:
                return found
        for w in params.must_say:
            if w.find(d, s) is None:
                return Finding("violation", f"the message lacks required wording: {w.label}")
        if params.needs_history:
            initial = _is_initial(p, params)
            for w in params.must_say_initially if initial else params.must_say_later:
                if w.find(d, s) is None:
                    which = "the initial communication" if initial else "a later communication"
                    return Finding("violation", f"{which} lacks required wording: {w.label}")
        return Finding("pass", "the message uses no forbidden wording and says all it must")

    def precompute(self, proposals: pl.DataFrame) -> pl.DataFrame:
        """The spaced and dense forms of every message, normalised once for all wording rules."""
        if "message_spaced" in proposals.columns:
            return proposals
        return proposals.with_columns(message_spaced=spaced_expr(pl.col("message_text"))).with_columns(
            message_dense=pl.col("message_spaced").str.replace_all(" ", "", literal=True)
        )

    def batch(
        self, proposals: pl.DataFrame, history: pl.DataFrame, params: WordingParams, ctx: CheckContext
    ) -> pl.DataFrame:
        text = pl.col("message_text")
        no_text = proposals.filter(text.is_null() & pl.col("channel").is_in(TEXT_CHANNELS)).select(
            "proposal_id",
            verdict=pl.lit("missing_facts"),
            facts=pl.format("no message text is given for this {}", "channel"),
        )
        # Only the columns the questions read: a rule's subset has some sixty, and each rule filters its own.
        have = (
            self.precompute(proposals)
            .select("proposal_id", *_READ, spaced=pl.col("message_spaced"), dense=pl.col("message_dense"))
            .filter(pl.col("spaced").is_not_null())
        )
        questions = _batch_questions(have, history, params)
        if not questions:
            return findings(no_text)
        # The forbidden wordings come first. One pass of all their patterns at once finds the few messages that
        # use any; only those are searched wording by wording (most messages are lawful templates).
        n = len(params.forbidden)
        if n:
            suspect = have.select(_any_wording(params.forbidden)).to_series()
            have = pl.concat(
                [
                    have.filter(suspect).with_columns(**{f"c{i}": questions[i][0] for i in range(n)}),
                    have.filter(~suspect).with_columns(**{f"c{i}": pl.lit(False) for i in range(n)}),
                ]
            )
        have = have.with_columns(**{f"c{i}": cond for i, (cond, _, _) in enumerate(questions) if i >= n})
        # The first question a proposal fails decides its verdict and facts, as in the single path.
        verdict = pl.coalesce([pl.when(pl.col(f"c{i}")).then(pl.lit(v)) for i, (_, v, _) in enumerate(questions)])
        facts = pl.coalesce([pl.when(pl.col(f"c{i}")).then(f) for i, (_, _, f) in enumerate(questions)])
        blocked = have.filter(pl.any_horizontal(f"c{i}" for i in range(len(questions))))
        return findings(pl.concat([no_text, blocked.select("proposal_id", verdict=verdict, facts=facts)]))


def _stated(fact: Fact, p: Proposal, s: str, d: str) -> Finding | None:
    """None when the message states `fact`; else why not (missing facts when the fact itself is unknown)."""
    debt = p.debt
    if fact == "identity":
        name = dense(p.actor.name)
        if not name:
            return Finding("missing_facts", "the name of the actor making the contact is blank")
        if name not in d:
            return Finding("violation", f"the message does not name the {p.actor.kind} making the contact")
    elif fact == "amount":
        if debt.currency not in CURRENCY_MARKS:
            return Finding("missing_facts", f"amounts in {debt.currency} cannot be read from a message")
        if (debt.currency, debt.balance) not in money_tokens(s, MARKED_MONEY):
            owed = render_amount(debt.currency, debt.balance)
            return Finding("violation", f"the message does not state the amount owed ({owed})")
    elif fact == "due_date":
        if debt.due_date is None:
            return Finding("missing_facts", "the due date is unknown")
        if date_key(debt.due_date) not in date_keys(s):
            return Finding("violation", f"the message does not state the due date ({debt.due_date.isoformat()})")
    else:
        accounts = [a for a in (dense(a) for a in debt.official_accounts) if a]
        if not accounts:
            return Finding("missing_facts", "no official way to pay is recorded for the debt")
        if not any(a in d for a in accounts):
            named = ", ".join(debt.official_accounts)
            return Finding("violation", f"the message names none of the official ways to pay ({named})")
    return None


def _is_initial(p: Proposal, params: WordingParams) -> bool:
    written = p.channel in TEXT_CHANNELS
    return not any(
        e.at < p.moment
        and e.counterpart == "debtor"
        and e.outcome in params.communicated
        and e.actor.name == p.actor.name
        and p.debt.id in e.debts
        and (not written or e.channel in TEXT_CHANNELS)
        for e in p.history
    )


# --- batch ------------------------------------------------------------------------------------------

Question = tuple[pl.Expr, str, pl.Expr]  # (blocks?, verdict, facts), in the order the single path asks


def _member(ids: pl.DataFrame) -> pl.Expr:
    return pl.col("proposal_id").is_in(ids.get_column("proposal_id").unique().implode())


def _batch_questions(have: pl.DataFrame, history: pl.DataFrame, params: WordingParams) -> list[Question]:
    """The single path's questions as frame conditions over `have` (with its spaced and dense text)."""
    out: list[Question] = []
    for w in params.forbidden:
        out.append(
            (
                w.found_expr(),
                "violation",
                pl.format("the message uses forbidden wording: {} ({})", pl.lit(w.label), w.match_expr()),
            )
        )
    if params.forbid_debt_facts:
        balance = have.select("proposal_id", "debt_balance")
        told = (
            money_frame(have)
            .join(balance, on="proposal_id")
            .filter(pl.col("currency").is_not_null() | (pl.col("minor") == pl.col("debt_balance")))
        )
        debt_id = dense_expr(pl.col("debt_id"))
        out.append(
            (_member(told), "violation", pl.format("the message to the {} states an amount of money", "counterpart"))
        )
        out.append(
            (
                (debt_id != "") & pl.col("dense").str.contains(debt_id, literal=True),
                "violation",
                pl.format("the message to the {} names the debt {}", "counterpart", "debt_id"),
            )
        )
    for fact in params.must_state:
        out.extend(_batch_stated(fact, have))
    for w in params.must_say:
        out.append((~w.found_expr(), "violation", pl.lit(f"the message lacks required wording: {w.label}")))
    if params.needs_history:
        initial = ~_member(_prior_communications(have, history, params))
        for w in params.must_say_initially:
            lacks = f"the initial communication lacks required wording: {w.label}"
            out.append((initial & ~w.found_expr(), "violation", pl.lit(lacks)))
        for w in params.must_say_later:
            lacks = f"a later communication lacks required wording: {w.label}"
            out.append((~initial & ~w.found_expr(), "violation", pl.lit(lacks)))
    return out


def _batch_stated(fact: Fact, have: pl.DataFrame) -> list[Question]:
    if fact == "identity":
        name = dense_expr(pl.col("actor_name"))
        return [
            (name == "", "missing_facts", pl.lit("the name of the actor making the contact is blank")),
            (
                ~pl.col("dense").str.contains(name, literal=True),
                "violation",
                pl.format("the message does not name the {} making the contact", "actor_kind"),
            ),
        ]
    if fact == "amount":
        owed = (
            money_frame(have, MARKED_MONEY)
            .join(have.select("proposal_id", "debt_currency", "debt_balance"), on="proposal_id")
            .filter((pl.col("currency") == pl.col("debt_currency")) & (pl.col("minor") == pl.col("debt_balance")))
        )
        currency = pl.col("debt_currency")
        return [
            (
                ~currency.is_in(list(CURRENCY_MARKS)),
                "missing_facts",
                pl.format("amounts in {} cannot be read from a message", currency),
            ),
            (
                ~_member(owed),
                "violation",
                pl.format(
                    "the message does not state the amount owed ({})",
                    render_amount_expr(currency, pl.col("debt_balance")),
                ),
            ),
        ]
    if fact == "due_date":
        due = have.filter(pl.col("debt_due_date").is_not_null()).select(
            "proposal_id", due=date_key_expr(pl.col("debt_due_date"))
        )
        stated = date_frame(have).join(due, on="proposal_id").filter(pl.col("date_key") == pl.col("due"))
        return [
            (pl.col("debt_due_date").is_null(), "missing_facts", pl.lit("the due date is unknown")),
            (
                ~_member(stated),
                "violation",
                pl.format("the message does not state the due date ({})", pl.col("debt_due_date").cast(pl.String)),
            ),
        ]
    accounts = (
        have.select("proposal_id", "dense", account=pl.col("debt_official_accounts"))
        .explode("account")
        .with_columns(account=dense_expr(pl.col("account")))
        .filter(pl.col("account").is_not_null() & (pl.col("account") != ""))
    )
    named = accounts.filter(pl.col("dense").str.contains(pl.col("account"), literal=True))
    return [
        (~_member(accounts), "missing_facts", pl.lit("no official way to pay is recorded for the debt")),
        (
            ~_member(named),
            "violation",
            pl.format(
                "the message names none of the official ways to pay ({})",
                pl.col("debt_official_accounts").list.join(", "),
            ),
        ),
    ]


def _prior_communications(have: pl.DataFrame, history: pl.DataFrame, params: WordingParams) -> pl.DataFrame:
    """Proposals with an earlier communication by the same actor with the debtor on the same debt."""
    asked = have.select(
        "proposal_id",
        "moment_utc",
        "debt_id",
        proposal_actor=pl.col("actor_name"),
        written=pl.col("channel").is_in(TEXT_CHANNELS),
    )
    # Lazy, with the event's own conditions first: the join pairs only the communications with the debtor,
    # and only the columns read.
    return (
        history.lazy()
        .filter((pl.col("counterpart") == "debtor") & pl.col("outcome").is_in(list(params.communicated)))
        .join(asked.lazy(), on="proposal_id")
        .filter(
            (pl.col("at") < pl.col("moment_utc"))
            & (pl.col("actor_name") == pl.col("proposal_actor"))
            & pl.col("debts").list.contains(pl.col("debt_id"))
            & (~pl.col("written") | pl.col("channel").is_in(TEXT_CHANNELS))
        )
        .select("proposal_id")
        .collect()
    )
