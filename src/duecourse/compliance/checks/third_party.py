"""Contact with anyone but the debtor: who counts as the debtor's side, and when a third party may be reached.

Three check kinds, mapped to the catalogue's rules:

- `counterparts` — which counterparts a contact may address. `parties` are the debtor's side (any purpose the
  rule's scope admits); `unverified` may be liable but the proposal records no fact that says so, which blocks
  as missing facts; anyone else is a third party, reachable only for `third_party_purposes`.
  CN.TARGET.DEBTOR_ONLY (scope: purpose collect): collect from the debtor only; a guarantor or a spouse may be
  jointly liable ("向担保人等连带责任人催收应以国家法律、法规、规定和协议约定为限"; a spouse for household
  debts, 民法典 1064), which is not recorded; the debtor's attorney acts for the debtor (民法典 161).
  US.THIRDPARTY: 1692c(b) allows the consumer — the obligor (a guarantor is obligated, 1692a(3)), the spouse
  (1692c(d)) — and the consumer's attorney; a `locate` contact with anyone else is US.LOCATION's business.
  UK.THIRDPARTY: CONC 7.9.6R/7.9.10R forbid disclosing the debt to anyone but the customer or someone acting for
  them, so a third party may be contacted only to locate the customer (without disclosure); whether the person
  who answers is the customer (identity established before disclosing, 7.9.10R) is for the agent's script, and
  the wording (7.9.8G, 7.9.11G) for the content rules.
- `unreachable_debtor` — CN.THIRDPARTY.CONTACT: contacts and other third parties only when the debtor cannot be
  reached (失联), has died or lacks civil capacity (debtor flags), and only to ask for the debtor's contact
  details or relay a message (purposes locate, notify). Unreachable means either recorded
  (`debtor.reachable` false, `unreachable_since`) or shown by the history: `failed_calls` consecutive collector
  calls to the debtor that did not connect, with no contact reaching the debtor since; third parties from
  `wait_days` local days after (CBA: from the next day, so the same day as the third failed call is blocked).
  A recorded `reachable: true` is taken at its word. Not encoded: stopping when a contact refuses (no fact).
- `location_contact` — US.LOCATION (1692b, 1006.10): a counted cap like `contact_cap` (once per person: the
  same counterpart on the same number or address, by the same collector; the person's request for another
  contact is not a recorded fact), and no location contact once the consumer is known to have an attorney
  for the debt unless the attorney consents or fails to respond (1692b(6)). The wording (no statement that a
  debt is owed) is for the content rules.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl
from pydantic import Field

from duecourse.compliance.checks.base import Check, CheckContext, Finding, Params, findings
from duecourse.compliance.checks.frequency import (
    NO_ZONE,
    CapParams,
    ContactCap,
    aligned_runs,
    any_of,
    debtor_zone,
    local_day,
    on_history,
    with_days,
)
from duecourse.compliance.facts import UTC_TIME, Counterpart, Flag, Outcome, Proposal, Purpose

REACHED: tuple[Outcome, ...] = ("conversation", "connected")  # a contact that reached the debtor


class CounterpartsParams(Params):
    parties: tuple[Counterpart, ...] = Field(min_length=1, description="The debtor's side: any purpose in scope")
    unverified: tuple[Counterpart, ...] = Field(default=(), description="May be liable; the liability is unrecorded")
    third_party_purposes: tuple[Purpose, ...] = Field(default=(), description="Purposes open with anyone else")


class Counterparts(Check):
    kind = "counterparts"
    reads = ("counterpart", "debt_id", "purpose")
    params = CounterpartsParams

    def one(self, proposal: Proposal, params: CounterpartsParams, ctx: CheckContext) -> Finding:
        who, why = proposal.counterpart, proposal.purpose
        if who in params.parties:
            return Finding("pass", f"the {who} may be contacted about the debt")
        if who in params.unverified:
            return Finding("missing_facts", _unverified(who, proposal.debt.id))
        if why in params.third_party_purposes:
            return Finding("pass", f"the {who} is a third party, contacted to {why}, which is allowed")
        return Finding("violation", _third_party(who, why, params))

    def batch(
        self, proposals: pl.DataFrame, history: pl.DataFrame, params: CounterpartsParams, ctx: CheckContext
    ) -> pl.DataFrame:
        who, why = pl.col("counterpart"), pl.col("purpose")
        unverified = who.is_in(params.unverified)
        blocked = proposals.filter(~who.is_in(params.parties) & (unverified | ~why.is_in(params.third_party_purposes)))
        return findings(
            blocked.select(
                "proposal_id",
                verdict=pl.when(unverified).then(pl.lit("missing_facts")).otherwise(pl.lit("violation")),
                facts=pl.when(unverified)
                .then(pl.format("whether the {} is liable for debt {} is not recorded", who, "debt_id"))
                .otherwise(pl.format(_third_party("{}", "{}", params), who, why)),
            )
        )


def _unverified(who: str, debt: str) -> str:
    return f"whether the {who} is liable for debt {debt} is not recorded"


def _third_party(who: str, why: str, params: CounterpartsParams) -> str:
    if not params.third_party_purposes:
        return f"the {who} is a third party and may not be contacted to {why}: only the debtor's side may"
    allowed = " or ".join(params.third_party_purposes)
    return f"the {who} is a third party and may be contacted only to {allowed}, not to {why}"


# --- CN: contacts only when the debtor cannot be reached ---------------------------------------------------


class UnreachableParams(Params):
    purposes: tuple[Purpose, ...] = Field(min_length=1, description="What a third-party contact may be for")
    failed_calls: int | None = Field(ge=1, description="Consecutive failed calls that make the debtor unreachable")
    failed_outcomes: tuple[Outcome, ...] = ()
    wait_days: int = Field(ge=0, description="Local days after becoming unreachable before third parties")
    flags: tuple[Flag, ...] = Field(default=(), description="Debtor conditions that also open contacts")


class UnreachableDebtor(Check):
    kind = "unreachable_debtor"
    reads = (
        "channel",
        "counterpart",
        "debtor_flags",
        "debtor_reachable",
        "debtor_time_zones",
        "debtor_unreachable_since",
        "moment_utc",
        "purpose",
    )
    params = UnreachableParams

    def one(self, proposal: Proposal, params: UnreachableParams, ctx: CheckContext) -> Finding:
        p, d = proposal, proposal.debtor
        if p.purpose not in params.purposes:
            return Finding("violation", _purpose(p.counterpart, p.purpose, params))
        opening = [f for f in params.flags if f in d.flags]
        if opening:
            return Finding("pass", f"the debtor is flagged {opening[0]}, so contacts may be reached")
        zone = debtor_zone(p)
        if zone is None:
            return Finding("missing_facts", NO_ZONE)
        if d.reachable is True:
            return Finding("violation", _REACHABLE)
        since = [d.unreachable_since] if d.reachable is False and d.unreachable_since is not None else []
        if params.failed_calls is not None:
            since += _failed_since(p, params.failed_calls, params.failed_outcomes)
        if not since:
            if d.reachable is False:
                return Finding("missing_facts", _NO_SINCE)
            return Finding("missing_facts", _UNKNOWN)
        became = local_day(min(since), zone)
        opens = became + timedelta(days=params.wait_days)
        if opens > local_day(p.moment, zone):
            return Finding("violation", _too_soon(became.isoformat(), opens.isoformat()))
        return Finding("pass", f"the debtor has been unreachable since {became.isoformat()} ({zone})")

    def batch(
        self, proposals: pl.DataFrame, history: pl.DataFrame, params: UnreachableParams, ctx: CheckContext
    ) -> pl.DataFrame:
        frame = with_days(
            proposals.select(
                "proposal_id",
                "moment_utc",
                "debtor_time_zones",
                "counterpart",
                "purpose",
                "debtor_flags",
                "debtor_reachable",
                "debtor_unreachable_since",
            ),
            {"_opens": 1 - params.wait_days},
        )
        reachable, recorded = pl.col("debtor_reachable"), pl.col("debtor_unreachable_since")
        since = pl.when(reachable.not_()).then(recorded).otherwise(pl.lit(None, UTC_TIME))
        if params.failed_calls is not None:
            failed = _batch_failed_since(frame, history, params.failed_calls, params.failed_outcomes)
            frame = frame.with_columns(_failed_since=failed)
            since = pl.min_horizontal(since, pl.col("_failed_since"))
        frame = frame.with_columns(_since=since)
        became = _local_date(frame, "_since")
        verdict, facts = _first_match(
            [
                (
                    ~pl.col("purpose").is_in(params.purposes),
                    "violation",
                    pl.format(_purpose("{}", "{}", params), "counterpart", "purpose"),
                ),
                (pl.col("debtor_flags").list.set_intersection(list(params.flags)).list.len() > 0, "pass", None),
                (pl.col("zone").is_null(), "missing_facts", pl.lit(NO_ZONE)),
                (reachable.fill_null(False), "violation", pl.lit(_REACHABLE)),
                (pl.col("_since").is_null() & reachable.is_not_null(), "missing_facts", pl.lit(_NO_SINCE)),
                (pl.col("_since").is_null(), "missing_facts", pl.lit(_UNKNOWN)),
                (
                    pl.col("_since") >= pl.col("_opens"),
                    "violation",
                    pl.format(_too_soon("{}", "{}"), became, became.dt.offset_by(f"{params.wait_days}d")),
                ),
            ]
        )
        return findings(frame.select("proposal_id", verdict=verdict, facts=facts))


_REACHABLE = "the debtor is recorded as reachable, so third parties may not be contacted"
_NO_SINCE = "the debtor is recorded as unreachable but not since when"
_UNKNOWN = "whether the debtor can be reached is not recorded or shown by the history"


def _first_match(cases: list[tuple[pl.Expr, str, pl.Expr | None]]) -> tuple[pl.Expr, pl.Expr]:
    """(verdict, facts) of the first case whose condition holds, else pass: the batch twin of `one`'s order."""
    verdict: pl.Expr = pl.lit("pass")
    facts: pl.Expr = pl.lit("")
    for condition, outcome, sentence in reversed(cases):
        verdict = pl.when(condition).then(pl.lit(outcome)).otherwise(verdict)
        facts = pl.when(condition).then(sentence if sentence is not None else pl.lit("")).otherwise(facts)
    return verdict, facts


def _local_date(frame: pl.DataFrame, column: str) -> pl.Expr:
    """`column` (UTC instants) as local dates in each row's `zone`: one conversion per distinct zone."""
    out = pl.lit(None, pl.Date)
    for zone in frame.get_column("zone").drop_nulls().unique().to_list():
        here = pl.col(column).dt.convert_time_zone(zone).dt.date()
        out = pl.when(pl.col("zone") == zone).then(here).otherwise(out)
    return out


def _batch_failed_since(
    frame: pl.DataFrame, history: pl.DataFrame, failed_calls: int, outcomes: tuple[Outcome, ...]
) -> pl.Series:
    """The batch twin of `_failed_since`, aligned with `frame`'s rows (null where the history shows nothing)."""
    run = aligned_runs(history, frame)
    debtor = history.select(pl.col("counterpart") == "debtor").to_series()
    events = history.select(
        "proposal_id", "at", "channel", "outcome", "initiated_by", _row=pl.int_range(pl.len(), dtype=pl.UInt32)
    ).filter(debtor)
    if run is None:
        events = on_history(events, frame)
    else:
        events = events.with_columns(_pos=pl.lit(run).gather(pl.col("_row")))
    events = events.filter(pl.col("at") < pl.lit(frame.get_column("moment_utc")).gather(pl.col("_pos")))
    reached = events.filter(any_of("outcome", REACHED)).group_by("_pos").agg(_reached=pl.col("at").max())
    failed = (
        events.filter(
            (pl.col("channel") == "call") & (pl.col("initiated_by") == "collector") & any_of("outcome", outcomes)
        )
        .join(reached, on="_pos", how="left")
        .filter(pl.col("_reached").is_null() | (pl.col("at") > pl.col("_reached")))
        .group_by("_pos")
        .agg(_failed_since=pl.col("at").sort().slice(failed_calls - 1, 1).first())
    )
    return (
        frame.select(_pos=pl.int_range(pl.len(), dtype=pl.UInt32))
        .join(failed, on="_pos", how="left", maintain_order="left")
        .get_column("_failed_since")
    )


def _purpose(who: str, why: str, params: UnreachableParams) -> str:
    return f"a contact with the {who} may only be to {' or '.join(params.purposes)}, not to {why}"


def _too_soon(became: str, opens: str) -> str:
    return f"the debtor became unreachable on {became}; third parties may be contacted from {opens}"


def _failed_since(p: Proposal, failed_calls: int, outcomes: tuple[Outcome, ...]) -> list[datetime]:
    """When the history shows the debtor unreachable: the `failed_calls`-th failed call since the debtor was
    last reached (before the proposal), or nothing."""
    earlier = [e for e in p.history if e.counterpart == "debtor" and e.at < p.moment]
    reached = max((e.at for e in earlier if e.outcome in REACHED), default=None)
    failed = sorted(
        e.at
        for e in earlier
        if e.channel == "call"
        and e.initiated_by == "collector"
        and e.outcome in outcomes
        and (reached is None or e.at > reached)
    )
    return [failed[failed_calls - 1]] if len(failed) >= failed_calls else []


# --- US: location communications -----------------------------------------------------------------------


class LocationContact(ContactCap):
    kind = "location_contact"
    reads = (*ContactCap.reads, "debtor_attorney_represented", "debtor_attorney_consents")
    params = CapParams

    def one(self, proposal: Proposal, params: CapParams, ctx: CheckContext) -> Finding:
        d = proposal.debtor
        if d.attorney_represented is None:
            return Finding("missing_facts", _ATTORNEY_UNKNOWN)
        if d.attorney_represented and d.attorney_consents is not True:
            return Finding("violation", _ATTORNEY_KNOWN)
        return super().one(proposal, params, ctx)

    def batch(
        self, proposals: pl.DataFrame, history: pl.DataFrame, params: CapParams, ctx: CheckContext
    ) -> pl.DataFrame:
        counted = self.verdicts(proposals, history, params)  # in `proposals`' order
        represented = proposals.get_column("debtor_attorney_represented")
        consents = proposals.get_column("debtor_attorney_consents")
        unknown, known = represented.is_null(), represented & consents.ne_missing(True)
        return findings(
            counted.select(
                "proposal_id",
                verdict=pl.when(pl.lit(unknown))
                .then(pl.lit("missing_facts"))
                .when(pl.lit(known))
                .then(pl.lit("violation"))
                .otherwise(pl.col("verdict")),
                facts=pl.when(pl.lit(unknown))
                .then(pl.lit(_ATTORNEY_UNKNOWN))
                .when(pl.lit(known))
                .then(pl.lit(_ATTORNEY_KNOWN))
                .otherwise(pl.col("facts")),
            )
        )


_ATTORNEY_UNKNOWN = "whether the consumer has an attorney for this debt is not recorded"
_ATTORNEY_KNOWN = (
    "the consumer has an attorney for this debt: location information may be sought only from the attorney"
)
