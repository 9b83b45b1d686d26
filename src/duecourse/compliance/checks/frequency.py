"""Caps on how often a person may be contacted, counted from the contact history over windows of local days.

One check kind, `contact_cap`, applies every numeric frequency rule; the rule's values say what counts:

- which history events: channels, outcomes (Reg F 1006.14(b)(3)(ii): a busy signal or a number not in
  service does not count, rang-unanswered and voicemail do), and who initiated them (a consumer-initiated
  call does not count toward the Reg F 7-call prong but its conversation starts the 7-day window);
- the counting unit (`per`): the same counterpart (person), the same number or address, the same debt
  (an event about several debts counts for each of them), the same actor by name; a unit left out is
  combined (the CN caps add up the lender and all its agencies);
- the window: `days` consecutive local days ending with the proposal's own day (Reg F "seven consecutive
  days"; `days: 1` is the calendar day, CN "每日"), or every earlier day (`days: null`);
- `cap`: the most counted contacts the window may already hold; one more is refused (the 8th Reg F call in
  7 days, the 4th connected CN call in a day); `cap: 1` on conversations is the Reg F post-conversation
  window (a conversation on day 1 bars calls through day 7);
- `consent_days`: Reg F 1006.14(b)(3)(i) — calls within that many days of the person's direct prior
  consent (day of receipt = day 1) are excluded from the count.

Days are the debtor's local calendar days in the *first* of `debtor.time_zones` (the principal location):
a count needs one calendar, and contact *hours* — where every candidate zone matters — are another check's
business. An unknown zone blocks as missing facts. Unknowns in history are counted against the collector:
an event with no number counts for every number, one with no debts listed counts for every debt.
The proposal's history is taken to be the records of this lender and the agencies working for it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import ClassVar, Literal
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl
from pydantic import Field

from duecourse.compliance.checks.base import Check, CheckContext, Finding, Params, findings
from duecourse.compliance.facts import UTC_TIME, Channel, HistoryEvent, Initiator, Outcome, Proposal

Unit = Literal["counterpart", "address", "debt", "actor"]
NO_ZONE = "the debtor's time zone is unknown, so the days of the count cannot be placed"


# --- local days -------------------------------------------------------------------------------------


def debtor_zone(p: Proposal) -> ZoneInfo | None:
    """The debtor's first (principal) time zone, in which days are counted."""
    return ZoneInfo(p.debtor.time_zones[0]) if p.debtor.time_zones else None


def local_day(at: datetime, zone: ZoneInfo) -> date:
    return at.astimezone(zone).date()


def day_start(day: date, zone: ZoneInfo) -> datetime:
    """The first instant of local `day` in UTC (a skipped midnight: the day starts at the transition)."""
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


_BLOCK = 2**53  # key = zone code * _BLOCK + epoch microseconds: each zone's day starts in its own sorted block


def with_days(frame: pl.DataFrame, starts: Mapping[str, int]) -> pl.DataFrame:
    """`frame` (`debtor_time_zones`, `moment_utc`) with `zone`, `day` — the moment's local date in the debtor's
    first time zone — and, for each `name: n` of `starts`, column `name`: the UTC instant local day `day + n`
    starts. Day starts come from zoneinfo for the few days the frame spans, so both paths share one calendar;
    each row finds its day with one binary search over every zone's day starts."""
    frame = frame.with_columns(zone=pl.col("debtor_time_zones").list.first())
    spans = (
        frame.filter(pl.col("zone").is_not_null())
        .group_by("zone")
        .agg(lo=pl.col("moment_utc").min(), hi=pl.col("moment_utc").max())
    )
    shifts = [0, *starts.values()]
    codes: dict[str, int] = {}
    keys: list[int] = []
    days: list[date] = []
    bounds: list[datetime] = []
    for code, (zone_name, lo, hi) in enumerate(spans.iter_rows()):  # one pass per distinct time zone: a handful
        zone = ZoneInfo(zone_name)
        first = local_day(lo, zone) + timedelta(days=min(shifts) - 1)
        span = [first + timedelta(days=i) for i in range((local_day(hi, zone) - first).days + max(shifts) + 2)]
        codes[zone_name] = code
        for day in span:
            start = day_start(day, zone)
            keys.append(code * _BLOCK + (start - _EPOCH) // timedelta(microseconds=1))
            days.append(day)
            bounds.append(start)
    zone_code = pl.col("zone").replace_strict(codes, default=None, return_dtype=pl.Int64)
    key = zone_code * _BLOCK + pl.col("moment_utc").dt.epoch("us")
    index = pl.lit(pl.Series(keys, dtype=pl.Int64)).search_sorted(key, side="right").cast(pl.Int64) - 1
    frame = frame.with_columns(_index=pl.when(zone_code.is_not_null()).then(index))
    starts_utc = pl.lit(pl.Series(bounds, dtype=UTC_TIME))
    return frame.with_columns(
        day=pl.lit(pl.Series(days, dtype=pl.Date)).gather(pl.col("_index")),
        **{name: starts_utc.gather(pl.col("_index") + n) for name, n in starts.items()},
    ).drop("_index")


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def on_history(history: pl.DataFrame, proposals: pl.DataFrame) -> pl.DataFrame:
    """`history` with `_pos`, the row of each event's proposal in `proposals`; events without one are dropped."""
    pos = event_rows(history, proposals)
    located = history.with_columns(_pos=pos)
    # Filtering copies every column: only when some events belong to no proposal here.
    return located if pos.null_count() == 0 else located.filter(pl.col("_pos").is_not_null())


def event_rows(history: pl.DataFrame, proposals: pl.DataFrame) -> pl.Series:
    """The row in `proposals` of each event's proposal (null when it is not there), in the history's order.

    The daily cycle and `to_frames` write a proposal's events together, so the lookup runs on the runs of
    equal proposal_id — about one row per proposal — and is gathered back onto the events: the cost of
    matching the proposals, not every event (any order gives the same rows, only more slowly). Runs that
    line up with `proposals` row for row need no join at all; otherwise ids are joined by 64-bit hash,
    checked, with the plain join kept for a collision.
    """
    run = aligned_runs(history, proposals)
    if run is not None:
        return run
    run = history.get_column("proposal_id").rle_id()
    heads = history.select(pl.col("proposal_id").rle().struct.field("value").alias("proposal_id"))
    return _positions(heads, proposals.get_column("proposal_id")).gather(run)


def aligned_runs(history: pl.DataFrame, proposals: pl.DataFrame) -> pl.Series | None:
    """The run number of each event when the history's runs of proposal_id are `proposals`' rows in order
    (then a run number is the proposal's row), else None."""
    run = history.get_column("proposal_id").rle_id()
    ids = proposals.get_column("proposal_id")
    runs = run[-1] + 1 if run.len() else 0  # run numbers only grow
    if runs != ids.len():
        return None
    firsts = (run.diff().fill_null(1) != 0).arg_true()
    if not bool((history.get_column("proposal_id").gather(firsts) == ids).all()):
        return None
    return run


def _positions(heads: pl.DataFrame, ids: pl.Series) -> pl.Series:
    """The row in `ids` of each head's proposal_id (null when absent)."""
    if ids.is_empty():  # e.g. every proposal of the frame is in a jurisdiction without a pack
        return pl.Series("_pos", [None] * heads.height, dtype=pl.UInt32)
    keyed = pl.DataFrame({"_key": ids.hash(), "_pos": pl.int_range(ids.len(), dtype=pl.UInt32, eager=True)})
    found = heads.with_columns(_key=pl.col("proposal_id").hash()).join(
        keyed, on="_key", how="left", maintain_order="left"
    )
    pos = found.get_column("_pos")
    same = ids.gather(pos.fill_null(0)) == heads.get_column("proposal_id")
    if found.height == heads.height and bool((same | pos.is_null()).all()):
        return pos
    exact = pl.DataFrame({"proposal_id": ids, "_pos": keyed.get_column("_pos")})  # a hash collision: join ids
    return heads.join(exact, on="proposal_id", how="left", maintain_order="left").get_column("_pos")


# --- the check ----------------------------------------------------------------------------------------


class CapParams(Params):
    what: str = Field(min_length=1, description="What is counted, for the facts sentence, e.g. 'connected calls'")
    cap: int = Field(ge=1, description="The most counted contacts the window may already hold")
    days: int | None = Field(ge=1, description="Consecutive local days ending with the proposal's; null: all")
    channels: tuple[Channel, ...] = Field(min_length=1)
    outcomes: tuple[Outcome, ...] = Field(min_length=1)
    initiated_by: tuple[Initiator, ...] = Field(min_length=1)
    per: tuple[Unit, ...] = ()
    consent_days: int | None = Field(default=None, ge=1, description="Days a direct prior consent excludes calls")


class ContactCap(Check):
    kind = "contact_cap"
    reads: ClassVar[tuple[str, ...]] = (
        "moment_utc",
        "debtor_time_zones",
        "debtor_consent_to_call_at",
        "channel",
        "counterpart",
        "address",
        "debt_id",
        "actor_name",
    )
    params = CapParams

    def one(self, proposal: Proposal, params: CapParams, ctx: CheckContext) -> Finding:
        p = proposal
        zone = debtor_zone(p)
        if zone is None:
            return Finding(
                "missing_facts", "the debtor's time zone is unknown, so the days of the count cannot be placed"
            )
        if "address" in params.per and p.address is None:
            return Finding("missing_facts", f"the {p.channel} names no number or address to count {params.what} on")
        day = local_day(p.moment, zone)
        consent = p.debtor.consent_to_call_at
        if params.consent_days is not None and consent is not None and consent <= p.moment:
            given = local_day(consent, zone)
            if given > day - timedelta(days=params.consent_days):
                last = given + timedelta(days=params.consent_days - 1)
                return Finding("pass", f"direct prior consent given on {given} excludes calls through {last}")
        first = None if params.days is None else day - timedelta(days=params.days - 1)
        n = sum(1 for e in p.history if _counts(e, p, params, zone, first, day))
        text = _sentence(p, params, str(zone), day, n)
        if n >= params.cap:
            return Finding("violation", text)
        return Finding("pass", text)

    def batch(
        self, proposals: pl.DataFrame, history: pl.DataFrame, params: CapParams, ctx: CheckContext
    ) -> pl.DataFrame:
        return findings(self.verdicts(proposals, history, params))

    def verdicts(self, proposals: pl.DataFrame, history: pl.DataFrame, params: CapParams) -> pl.DataFrame:
        """proposal_id, verdict, facts for every proposal, in `proposals`' order (counted over the whole frame,
        so the history's runs still line up with it)."""
        starts = {"_end": 1}
        if params.days is not None:
            starts["_first"] = 1 - params.days
        if params.consent_days is not None:
            starts["_consent"] = 1 - params.consent_days
        frame = with_days(proposals.select("proposal_id", *ContactCap.reads), starts)
        frame = frame.with_columns(n=_count(frame, history, params))
        no_zone = pl.col("zone").is_null()
        no_address = pl.lit("address" in params.per) & pl.col("address").is_null()
        excluded = pl.lit(False)
        if params.consent_days is not None:
            consent = pl.col("debtor_consent_to_call_at")
            excluded = ((consent <= pl.col("moment_utc")) & (consent >= pl.col("_consent"))).fill_null(False)
        over = pl.col("n") >= params.cap
        return frame.select(
            "proposal_id",
            verdict=pl.when(no_zone | no_address)
            .then(pl.lit("missing_facts"))
            .when(~excluded & over)
            .then(pl.lit("violation"))
            .otherwise(pl.lit("pass")),
            facts=pl.when(no_zone)
            .then(pl.lit(NO_ZONE))
            .when(no_address)
            .then(pl.format(f"the {{}} names no number or address to count {params.what} on", "channel"))
            .when(~excluded & over)
            .then(_sentence_expr(params))
            .otherwise(pl.lit("")),
        )


def _counts(e: HistoryEvent, p: Proposal, params: CapParams, zone: ZoneInfo, first: date | None, day: date) -> bool:
    if e.channel not in params.channels or e.outcome not in params.outcomes:
        return False
    if e.initiated_by not in params.initiated_by:
        return False
    on = local_day(e.at, zone)
    if on > day or (first is not None and on < first):
        return False
    same = {
        "counterpart": e.counterpart == p.counterpart,
        "address": e.address is None or e.address == p.address,
        "debt": not e.debts or p.debt.id in e.debts,
        "actor": e.actor.name == p.actor.name,
    }
    return all(same[unit] for unit in params.per)


def _count(frame: pl.DataFrame, history: pl.DataFrame, params: CapParams) -> pl.Series:
    """The counted events in each window, aligned with `frame`'s rows.

    Cheapest tests first: the span of all windows, then what counts, then each proposal's own window, and
    only for the events left the counting units (gathered from `history` by row, lists included)."""
    if frame.is_empty() or history.is_empty() or frame.get_column("_end").null_count() == frame.height:
        return pl.Series("n", [0] * frame.height, dtype=pl.UInt32)
    at = pl.col("at")
    span = at < frame.get_column("_end").max()
    if params.days is not None:
        span = span & (at >= frame.get_column("_first").min())
    counted = any_of("channel", params.channels) & any_of("outcome", params.outcomes)
    counted = counted & any_of("initiated_by", params.initiated_by)
    run = aligned_runs(history, frame)  # the whole history's runs: events keep their proposal's row for free
    keep = history.select(span & counted).to_series()  # a mask first: the filter then copies three columns
    events = history.select("proposal_id", "at", _row=pl.int_range(pl.len(), dtype=pl.UInt32)).filter(keep)
    if run is None:
        events = on_history(events, frame)
    else:
        events = events.with_columns(_pos=pl.lit(run).gather(pl.col("_row")))
    inside = at < _theirs(frame, "_end")
    if params.days is not None:
        inside = inside & (at >= _theirs(frame, "_first"))
    events = events.filter(inside)
    # The units' values are gathered into columns first: filtering on the gathers directly is far slower.
    events = events.with_columns(
        **{f"_mine_{u}": _mine(history, _UNIT_HISTORY[u]) for u in params.per},
        **{f"_theirs_{u}": _theirs(frame, _UNIT_SOURCE[u]) for u in params.per},
    )
    events = events.filter(pl.all_horizontal(pl.lit(True), *[_same(u) for u in params.per]))
    counts = np.bincount(events.get_column("_pos").to_numpy(), minlength=frame.height)
    return pl.Series("n", counts, dtype=pl.UInt32)


def any_of(column: str, values: Sequence[str]) -> pl.Expr:
    """`column` is one of `values`: equalities joined by or, several times faster than `is_in` on strings."""
    return pl.any_horizontal(*[pl.col(column) == value for value in values]) if values else pl.lit(False)


def _theirs(frame: pl.DataFrame, column: str) -> pl.Expr:
    """`frame[column]` of each event's proposal (events carry `_pos`)."""
    return pl.lit(frame.get_column(column)).gather(pl.col("_pos"))


def _mine(history: pl.DataFrame, column: str) -> pl.Expr:
    """`history[column]` of each event (events carry `_row`)."""
    return pl.lit(history.get_column(column)).gather(pl.col("_row"))


_UNIT_SOURCE = {"counterpart": "counterpart", "address": "address", "debt": "debt_id", "actor": "actor_name"}
_UNIT_HISTORY = {"counterpart": "counterpart", "address": "address", "debt": "debts", "actor": "actor_name"}


def _same(unit: Unit) -> pl.Expr:
    mine, theirs = pl.col(f"_mine_{unit}"), pl.col(f"_theirs_{unit}")
    if unit == "address":  # an event with no number recorded counts for every number
        return mine.is_null() | (mine == theirs)
    if unit == "debt":  # an event with no debts recorded counts for every debt
        return (mine.list.len() == 0) | mine.list.contains(theirs)
    return mine == theirs


# --- the facts sentence, both paths ---------------------------------------------------------------


def _span(params: CapParams) -> str:
    if params.days is None:
        return "up to {}"
    if params.days == 1:
        return "on {}"
    return f"in the {params.days} days to {{}}"


_UNIT_TEXT = {"counterpart": " with the {}", "address": " on {}", "debt": " about debt {}", "actor": " by {}"}


def _sentence(p: Proposal, params: CapParams, zone: str, day: date, n: int) -> str:
    values = {"counterpart": p.counterpart, "address": p.address, "debt": p.debt.id, "actor": p.actor.name}
    units = "".join(_UNIT_TEXT[u].format(values[u]) for u in params.per)
    head = f"{params.what}{units} {_span(params).format(day.isoformat())} ({zone})"
    if n >= params.cap:
        return f"{head} already number {n}, the cap is {params.cap}"
    return f"{head} number {n}, under the cap of {params.cap}"


def _sentence_expr(params: CapParams) -> pl.Expr:
    """The violation sentence of `_sentence` for a frame with `n`, `day`, `zone` and the unit columns."""
    template = params.what + "".join(_UNIT_TEXT[u] for u in params.per) + f" {_span(params)} ({{}})"
    template += f" already number {{}}, the cap is {params.cap}"
    return pl.format(template, *[_UNIT_SOURCE[u] for u in params.per], "day", "zone", "n")
