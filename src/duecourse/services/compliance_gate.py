"""The daily cycle's compliance gate: every ladder proposal becomes a compliance proposal and is decided.

Set-based: the cycle's proposals (joined with its facts) are turned into the `facts.PROPOSALS` frame
from the book — the debtor's jurisdiction (borrower `region`), candidate time zones (their own valid
contact points), flags and holds, the amount and due date, the rendered message — and decided by the
vectorised engine. Each proposal is planned at the house send time in the debtor's first time zone;
one blocked only by the time of day or a holiday is *rescheduled* to the next moment every rule
allows, not dropped. Steps that are not contacts with the debtor (legal referral, agency placement,
write-off review) have no rule that could allow them and are blocked for a person to decide.

The contact history is read from the recorded contact events (`contact_event`: dispatched messages,
delivery receipts, call and visit outcomes) over the longest window any frequency rule looks back.
`review(..., at=moment)` decides the same proposals at one given moment instead of the planned send
time: the dispatcher's and the agent's "may I contact them now?" check.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Final
from zoneinfo import ZoneInfo

import polars as pl
from sqlalchemy import Engine

from duecourse.adapters.db.bulk import read_frame
from duecourse.compliance.checks.base import CheckContext
from duecourse.compliance.engine import NO_RULE, decide_frame
from duecourse.compliance.facts import HISTORY, PROPOSALS, UTC_TIME, WINDOW
from duecourse.compliance.port import DECISION_COLUMNS
from duecourse.compliance.rulebook import Rulebook
from duecourse.services.contacts import contact_history
from duecourse.services.messages import MessageCatalogue, render

# Ladder channel -> compliance channel; the others are not contacts with the debtor.
CHANNEL: Final = {
    "call": "call",
    "sms": "sms",
    "email": "email",
    "letter": "letter",
    "app": "app_push",
    "visit": "visit",
}
# Which contact-point kind carries each channel (the address a frequency cap counts).
POINT_KIND: Final = {
    "call": "phone",
    "sms": "phone",
    "email": "email",
    "letter": "address",
    "app_push": "app",
    "visit": "address",
}
# Borrower flags (docs/book-format.md) that are compliance flags under the same name.
FLAGS: Final = ("elderly", "disabled", "deceased", "bankrupt")
# A country in the book's ISO 3166 `region` -> the rule pack's country code.
PACK_COUNTRY: Final = {"GB": "UK"}
# The visit rules that judge how a visit is arranged (asked at scheduling and check-in), as opposed to
# whether to visit at all (last resort, balance), which a candidate must pass now.
VISIT_ARRANGEMENTS: Final = frozenset(
    {
        "visit_team_size",
        "visit_certified_staff",
        "visit_identification",
        "visit_recording",
        "visit_entry",
        "visit_notice",
    }
)
VISIT_CANDIDATE: Final = (
    "door-visit candidate allowed for planning: a written notice first; the team, notice, identification, recording"
    " and entry rules are checked when the visit is scheduled and at check-in"
)
SEND_AT: Final = time(10, 0)  # house send time, in the debtor's own time zone
# How far back the contact history is read: longer than any frequency rule's window (the longest, a
# calendar month, spans at most 31 days).
HISTORY_LOOKBACK: Final = timedelta(days=35)


@dataclass(frozen=True)
class RulebookGate:
    """`CompliancePort` backed by the rulebook: `review` expects the cycle's proposals joined with its facts."""

    engine: Engine
    book: Rulebook
    ctx: CheckContext
    messages: MessageCatalogue
    lender_kind: str = "lender"

    def review(self, proposals: pl.DataFrame, as_of: date, at: datetime | None = None) -> pl.DataFrame:
        """Decide the proposals planned on `as_of` at the house send time, or all at the moment `at`."""
        if proposals.is_empty():
            return proposals.with_columns(**{name: pl.lit(None, dtype) for name, dtype in DECISION_COLUMNS.items()})
        frame = self.compliance_frame(proposals, as_of, at)
        contact = frame.filter(pl.col("channel").is_not_null())
        history = self._history(contact, at or datetime.combine(as_of, SEND_AT, UTC))
        decided = decide_frame(self.book, contact.select(PROPOSALS.names()), history, self.ctx)
        decided = self._visit_candidates(decided, contact)
        decided = decided.with_columns(
            compliance_rules=pl.col("violations").list.eval(pl.element().struct.field("rule")).list.join(","),
            compliance_reason=pl.col("violations")
            .list.eval(pl.format("{}: {}", pl.element().struct.field("rule"), pl.element().struct.field("facts")))
            .list.join("; "),
        )
        status = (
            pl.when(pl.col("decision") == "allow")
            .then(pl.lit("allowed"))
            .when(pl.col("next_allowed_at").is_not_null())
            .then(pl.lit("rescheduled"))
            .otherwise(pl.lit("blocked"))
        )
        verdicts = decided.join(contact.select("proposal_id", "moment_utc", "channel"), on="proposal_id").select(
            pl.col("proposal_id").cast(pl.Int64).alias("loan_key"),
            compliance_status=status,
            compliance_reason=pl.when((pl.col("decision") == "allow") & (pl.col("channel") == "visit"))
            .then(pl.lit(f"{VISIT_CANDIDATE} (rulebook {self.book.version})"))
            .when(pl.col("decision") == "allow")
            .then(pl.lit(f"allowed by rulebook {self.book.version}"))
            .otherwise(pl.format("rulebook {}: {}", pl.lit(self.book.version), pl.col("compliance_reason"))),
            compliance_rules=pl.when(pl.col("decision") == "block").then(pl.col("compliance_rules")),
            rulebook_version=pl.lit(self.book.version),
            scheduled_at=pl.when(pl.col("decision") == "allow")
            .then(pl.col("moment_utc"))
            .otherwise(pl.col("next_allowed_at")),
        )
        not_contact = frame.filter(pl.col("channel").is_null()).select(
            "loan_key",
            compliance_status=pl.lit("blocked"),
            compliance_reason=pl.format(
                "{}: a {} step is not a contact with the debtor; no rule can allow it, a person decides",
                pl.lit(NO_RULE),
                pl.col("ladder_channel"),
            ),
            compliance_rules=pl.lit(NO_RULE),
            rulebook_version=pl.lit(self.book.version),
            scheduled_at=pl.lit(None, UTC_TIME),
        )
        return proposals.join(pl.concat([verdicts, not_contact]), on="loan_key", how="left")

    def _visit_candidates(self, decided: pl.DataFrame, contact: pl.DataFrame) -> pl.DataFrame:
        """A ladder's door visit is a *candidate*: it is planned (a written notice first), not made today.
        The rules about the visit itself (team, certification, notice, identification, recording, entry)
        cannot answer before there is a team, a notice and a slot; they are asked with the real facts when
        the visit is scheduled and at check-in (services/visits.py). Every other rule — holds, vulnerable
        debtors, last resort, balance — decides the candidate now."""
        deferred = [r.id for r in self.book.rules if r.check.kind in VISIT_ARRANGEMENTS]
        visits = contact.filter(pl.col("channel") == "visit").get_column("proposal_id").implode()
        kept = pl.col("violations").list.eval(
            pl.element().filter(~pl.element().struct.field("rule").is_in(pl.lit(deferred, pl.List(pl.String))))
        )
        candidate = pl.col("proposal_id").is_in(visits) & (pl.col("decision") == "block")
        only_deferred = candidate & (kept.list.len() == 0)
        return decided.with_columns(
            decision=pl.when(only_deferred).then(pl.lit("allow")).otherwise(pl.col("decision")),
            violations=pl.when(candidate).then(kept).otherwise(pl.col("violations")),
        )

    def compliance_frame(self, proposals: pl.DataFrame, as_of: date, at: datetime | None = None) -> pl.DataFrame:
        """The `facts.PROPOSALS` frame (plus `loan_key`, `ladder_channel`) for the cycle's proposals."""
        keys = proposals.get_column("borrower_key").unique().to_list()
        borrowers = self._borrowers(keys)
        points = self._points(keys)
        holds = self._holds(keys, as_of)
        zones = (
            points.filter(pl.col("owner") == "borrower")
            .sort("contact_key")
            .group_by("borrower_key", maintain_order=True)
            .agg(debtor_time_zones=pl.col("time_zone").unique(maintain_order=True))
        )
        opted_out = (
            points.filter(~pl.col("consent"))
            .group_by("borrower_key")
            .agg(debtor_opted_out_addresses=pl.format("cp:{}", pl.col("contact_key")))
        )
        first_point = (
            points.filter((pl.col("owner") == "borrower") & pl.col("valid") & pl.col("consent"))
            .sort("contact_key")
            .group_by("borrower_key", "kind")
            .agg(address=pl.format("cp:{}", pl.col("contact_key")).first())
        )
        overdue = pl.col("days_past_due") > 0
        base = (
            proposals.join(borrowers, on="borrower_key", how="left")
            .join(zones, on="borrower_key", how="left")
            .join(opted_out, on="borrower_key", how="left")
            .join(holds, on="borrower_key", how="left")
            .with_columns(
                ladder_channel=pl.col("channel"),
                channel=pl.col("channel").replace_strict(CHANNEL, default=None, return_dtype=pl.String),
                message_language=pl.when(pl.col("language").str.starts_with("zh"))
                .then(pl.lit("zh"))
                .otherwise(pl.lit("en")),
                amount=pl.when(overdue).then(pl.col("overdue_total")).otherwise(pl.col("next_due_amount")),
                due_date=pl.when(overdue).then(pl.col("oldest_unpaid_due_date")).otherwise(pl.col("next_due_date")),
            )
        )
        base = base.with_columns(
            point_kind=pl.col("channel").replace_strict(POINT_KIND, default=None, return_dtype=pl.String)
        ).join(first_point, left_on=["borrower_key", "point_kind"], right_on=["borrower_key", "kind"], how="left")
        base = _with_moment(base.with_columns(message_text=render(self.messages, base)), as_of, at)
        return _conform(base, self.lender_kind, self.messages)

    def _history(self, contact: pl.DataFrame, until: datetime) -> pl.DataFrame:
        """Each proposal's contact history (its debtor's recorded contacts over the look-back window)."""
        keys = contact.get_column("borrower_key").unique().to_list()
        since = until - HISTORY_LOOKBACK
        with self.engine.connect() as conn:
            parts = [contact_history(conn, keys[i : i + 10_000], since) for i in range(0, len(keys), 10_000)]
        events = pl.concat(parts) if parts else pl.DataFrame(schema={"borrower_key": pl.Int64(), **HISTORY})
        if events.is_empty():
            return pl.DataFrame(schema=HISTORY)
        # The lender's own contacts are made under its name as each proposal states it.
        return (
            contact.select("proposal_id", "borrower_key", "actor_name")
            .join(events.drop("proposal_id", "actor_name"), on="borrower_key")
            .with_columns(actor_name=pl.when(pl.col("actor_kind") == self.lender_kind).then(pl.col("actor_name")))
            .select(HISTORY.names())
        )

    def _borrowers(self, keys: list[int]) -> pl.DataFrame:
        return read_frame(
            self.engine,
            f"SELECT borrower_key, birth_date, region FROM borrower WHERE borrower_key IN ({_ids(keys)})",
            pl.Schema({"borrower_key": pl.Int64(), "birth_date": pl.Date(), "region": pl.String()}),
        )

    def _points(self, keys: list[int]) -> pl.DataFrame:
        return read_frame(
            self.engine,
            "SELECT contact_key, borrower_key, kind, owner, time_zone, valid, consent FROM contact_point"
            f" WHERE borrower_key IN ({_ids(keys)})",
            pl.Schema(
                {
                    "contact_key": pl.Int64(),
                    "borrower_key": pl.Int64(),
                    "kind": pl.String(),
                    "owner": pl.String(),
                    "time_zone": pl.String(),
                    "valid": pl.Boolean(),
                    "consent": pl.Boolean(),
                }
            ),
        )

    def _holds(self, keys: list[int], as_of: date) -> pl.DataFrame:
        d = as_of.isoformat()
        held = read_frame(
            self.engine,
            f"SELECT borrower_key, kind, start_date FROM hold WHERE borrower_key IN ({_ids(keys)})"
            f" AND start_date <= '{d}' AND (end_date IS NULL OR end_date >= '{d}')",
            pl.Schema({"borrower_key": pl.Int64(), "kind": pl.String(), "start_date": pl.Date()}),
        )
        return held.group_by("borrower_key").agg(
            hold_dispute=(pl.col("kind") == "dispute").any(),
            hold_deceased=(pl.col("kind") == "deceased").any(),
        )


def _ids(keys: list[int]) -> str:
    return ",".join(str(int(k)) for k in keys) or "NULL"


def _conform(base: pl.DataFrame, lender_kind: str, messages: MessageCatalogue) -> pl.DataFrame:
    """Shape the joined book facts as `facts.PROPOSALS`; what the book does not know stays null (unknown)."""
    region = pl.col("region").fill_null("")
    country = region.str.split("-").list.first().replace(PACK_COUNTRY)
    subdivision = region.str.split("-").list.get(1, null_on_oob=True)
    flags = pl.col("flags").fill_null(pl.lit([], pl.List(pl.String)))
    debtor_flags = flags.list.set_intersection(pl.lit(list(FLAGS), pl.List(pl.String)))
    debtor_flags = (
        pl.when(pl.col("hold_deceased").fill_null(False))
        .then(debtor_flags.list.concat(pl.lit(["deceased"], pl.List(pl.String))).list.unique())
        .otherwise(debtor_flags)
    )
    zones = pl.col("debtor_time_zones").fill_null(pl.lit([], pl.List(pl.String)))
    no_window = pl.lit([], pl.List(WINDOW))
    nothing = pl.lit([], pl.List(pl.String))
    return base.select(
        "loan_key",
        "borrower_key",
        "ladder_channel",
        proposal_id=pl.col("loan_key").cast(pl.String),
        country=pl.when(region == "").then(pl.lit("unknown")).otherwise(country),
        region=subdivision,
        moment_utc="moment_utc",
        moment_local_date="moment_local_date",
        moment_offset_minutes="moment_offset_minutes",
        actor_kind=pl.lit(lender_kind),
        # The lender names itself in the language of the message.
        actor_name=pl.col("message_language").replace_strict(
            messages.lender.name, default=None, return_dtype=pl.String
        ),
        channel="channel",
        counterpart=pl.lit("debtor"),
        purpose=pl.when(pl.col("days_past_due") > 0).then(pl.lit("collect")).otherwise(pl.lit("notify")),
        address="address",
        place=pl.when(pl.col("channel") == "visit").then(pl.lit("home")).otherwise(pl.lit(None, pl.String)),
        message_text="message_text",
        message_language="message_language",
        visit=pl.col("channel") == "visit",  # its arrangements are not known yet (VISIT_ARRANGEMENTS)
        visit_staff_count=pl.lit(None, pl.Int16),
        visit_certified_count=pl.lit(None, pl.Int16),
        visit_identification_shown=pl.lit(None, pl.Boolean),
        visit_enters_premises=pl.lit(None, pl.Boolean),
        visit_consent_to_enter=pl.lit(None, pl.Boolean),
        visit_recording=pl.lit(None, pl.Boolean),
        visit_notice_delivered_at=pl.lit(None, UTC_TIME),
        debtor_id="borrower_id",
        debtor_time_zones=zones,
        debtor_birth_date="birth_date",
        debtor_age=pl.col("age").cast(pl.Int16),
        debtor_flags=debtor_flags,
        debtor_vulnerability_approved=pl.lit(None, pl.Boolean),
        debtor_attorney_represented=flags.list.contains("attorney"),
        debtor_attorney_consents=pl.lit(None, pl.Boolean),
        debtor_cease_at=pl.lit(None, UTC_TIME),
        debtor_cease_form=pl.lit(None, pl.String),
        debtor_dispute_open=pl.col("hold_dispute").fill_null(False),
        debtor_dispute_written=pl.when(pl.col("hold_dispute").fill_null(False)).then(pl.lit(None, pl.Boolean)),
        debtor_dispute_at=pl.lit(None, UTC_TIME),
        debtor_opted_out_channels=nothing,
        debtor_opted_out_addresses=pl.col("debtor_opted_out_addresses").fill_null(nothing),
        debtor_agreed_windows=no_window,
        debtor_inconvenient_windows=no_window,
        debtor_inconvenient_places=nothing,
        debtor_employer_prohibits_contact=pl.lit(None, pl.Boolean),
        debtor_reachable=pl.lit(None, pl.Boolean),
        debtor_unreachable_since=pl.lit(None, UTC_TIME),
        debtor_breathing_space_start=pl.lit(None, pl.Date),
        debtor_breathing_space_end=pl.lit(None, pl.Date),
        debtor_breathing_space_kind=pl.lit(None, pl.String),
        debtor_consent_to_call_at=pl.lit(None, UTC_TIME),
        debt_id="loan_id",
        debt_days_past_due="days_past_due",
        debt_balance="amount",
        debt_currency="currency",
        debt_due_date="due_date",
        debt_time_barred=pl.lit(None, pl.Boolean),
        debt_in_validation_period=pl.lit(None, pl.Boolean),
        debt_fees_claimed=pl.lit(0, pl.Int64),
        debt_fees_allowed=pl.lit(None, pl.Int64),
        debt_payment_account=pl.lit(messages.lender.account),
        debt_official_accounts=pl.lit(list(messages.lender.official_accounts), pl.List(pl.String)),
    ).cast({name: dtype for name, dtype in PROPOSALS.items()})


def _with_moment(base: pl.DataFrame, as_of: date, at: datetime | None) -> pl.DataFrame:
    """The moment of each proposal: the house send time on `as_of` in the debtor's first time zone, or the
    given instant `at`; with its local date and UTC offset there (UTC when no zone is known: the hours rules
    then block it for the missing zone). One conversion per distinct zone."""
    first = base.get_column("debtor_time_zones").list.first().fill_null("UTC")
    zones = first.unique().to_list()
    if at is None:
        aware = [datetime.combine(as_of, SEND_AT, ZoneInfo(z)) for z in zones]
    else:
        aware = [at.astimezone(ZoneInfo(z)) for z in zones]
    table = pl.DataFrame(
        {
            "_zone": zones,
            "moment_utc": [a.astimezone(UTC) for a in aware],
            "moment_local_date": [a.date() for a in aware],
            "moment_offset_minutes": [int(a.utcoffset().total_seconds() // 60) for a in aware],  # type: ignore[union-attr]
        },
        schema={
            "_zone": pl.String(),
            "moment_utc": UTC_TIME,
            "moment_local_date": pl.Date(),
            "moment_offset_minutes": pl.Int16(),
        },
    )
    return base.with_columns(_zone=first).join(table, on="_zone", how="left", maintain_order="left")
