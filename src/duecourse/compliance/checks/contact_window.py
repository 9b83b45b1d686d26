"""Contact hours: a contact must fall inside the allowed hours in every time zone the debtor may be in.

The rule gives the window (or none, where the law sets no figure, e.g. UK CONC 7.9.4R), whether its boundary
instants are themselves allowed, and how the debtor's own windows count. The debtor's windows are theirs only, so
they change the answer only for a contact with the debtor: an agreed window either *permits* contact inside it in
otherwise banned hours (FDCPA 1692c(a): "prior consent of the consumer") or *governs*, so that once agreed the
debtor is contacted only inside it (GB/T 45251-2025: "双方已事先约定催收时间的,催收作业从其约定"); an inconvenient
window always blocks where the rule honours requests (Reg F 1006.6(b)(1)(i), CONC 7.9.4R). Every candidate time zone
must allow the moment (Reg F comment 6(b)(1)(i)-1: all the consumer's possible locations).

Windows in the frames are whole minutes; `one` reads the debtor's windows to the minute too, so both paths agree.
Agreed windows are half-open [start, end); inconvenient windows are closed [start, end] (the stricter reading).
A window whose end is not after its start crosses midnight; start == end is the whole day.
"""

from __future__ import annotations

from datetime import datetime, time
from typing import Literal
from zoneinfo import ZoneInfo

import polars as pl
from pydantic import model_validator

from duecourse.compliance.checks.base import Check, CheckContext, Finding, Params, findings
from duecourse.compliance.facts import Proposal, Window

MINUTE_NS = 60 * 1_000_000_000


class ContactWindowParams(Params):
    """The allowed hours in the debtor's local time, and how the debtor's own windows count."""

    start: time | None = None  # both None: the rule sets no numeric window (UK CONC 7.9.4R)
    end: time | None = None
    start_allowed: bool = False  # is the start instant itself allowed (FDCPA "after 8 o'clock": no)
    end_allowed: bool = False  # is the end instant itself allowed (CN "22:00至次日8:00": no)
    agreed_windows: Literal["ignored", "permit", "govern"]
    inconvenient_windows: Literal["ignored", "block"]

    @model_validator(mode="after")
    def _both_or_neither(self) -> ContactWindowParams:
        if (self.start is None) != (self.end is None):
            raise ValueError("start and end go together: give both, or neither for a rule without a numeric window")
        return self


def _hhmm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def _minute(t: time) -> int:
    return t.hour * 60 + t.minute


def _hours(p: ContactWindowParams) -> str:
    assert p.start is not None and p.end is not None
    first = "from" if p.start_allowed else "after"
    last = "until" if p.end_allowed else "before"
    return f"{first} {_hhmm(_minute(p.start))} {last} {_hhmm(_minute(p.end))}"


def _in_default(t: time, p: ContactWindowParams) -> bool:
    """Inside the rule's own hours (always, when the rule sets none)."""
    if p.start is None or p.end is None:
        return True
    after_start = t >= p.start if p.start_allowed else t > p.start
    before_end = t <= p.end if p.end_allowed else t < p.end
    if p.start < p.end:
        return after_start and before_end
    return after_start or before_end


def _inside(t: time, w: Window, *, closed: bool) -> bool:
    s, e = time(w.start.hour, w.start.minute), time(w.end.hour, w.end.minute)
    before_end = t <= e if closed else t < e
    if s < e:
        return s <= t and before_end
    if s == e:
        return True
    return t >= s or before_end


def _why_blocked(t: time, p: Proposal, params: ContactWindowParams) -> str | None:
    """Why local time `t` is not allowed for this proposal, or None when it is."""
    own = p.counterpart == "debtor"
    if own and params.inconvenient_windows == "block":
        for w in p.debtor.inconvenient_windows:
            if _inside(t, w, closed=True):
                return f"inside {_hhmm(_minute(w.start))}–{_hhmm(_minute(w.end))}, a time the debtor named inconvenient"
    agreed = p.debtor.agreed_windows if own else ()
    in_agreed = any(_inside(t, w, closed=False) for w in agreed)
    if params.agreed_windows == "govern" and agreed:
        return None if in_agreed else "outside every window agreed with the debtor"
    if _in_default(t, params) or (params.agreed_windows == "permit" and in_agreed):
        return None
    return f"outside the allowed hours ({_hours(params)}) and no agreed window covers it"


class ContactWindow(Check):
    kind = "contact_window"
    reads = ("moment_utc", "counterpart", "debtor_time_zones", "debtor_agreed_windows", "debtor_inconvenient_windows")
    params = ContactWindowParams
    time_only = True

    def one(self, proposal: Proposal, params: ContactWindowParams, ctx: CheckContext) -> Finding:
        zones = proposal.debtor.time_zones
        if not zones:
            return Finding("missing_facts", "the debtor's time zone is unknown, so their local time cannot be known")
        moment = proposal.moment_utc
        for zone in zones:
            local = moment.astimezone(ZoneInfo(zone))
            why = _why_blocked(local.time().replace(tzinfo=None), proposal, params)
            if why is not None:
                return Finding("violation", f"{local:%H:%M} {zone} is {why}")
        return Finding("pass", f"{_local_times(moment, zones)} allowed in every candidate time zone")

    def batch(
        self, proposals: pl.DataFrame, history: pl.DataFrame, params: ContactWindowParams, ctx: CheckContext
    ) -> pl.DataFrame:
        own = (pl.col("counterpart") == "debtor").fill_null(False)
        rows = local_times(
            proposals.with_columns(own=own, n_agreed=pl.col("debtor_agreed_windows").list.len()), "own", "n_agreed"
        ).with_columns(tod=pl.col("local").dt.time().cast(pl.Int64))  # nanoseconds since local midnight

        # Why a (proposal, zone) is blocked, as a code; the sentence is built only for the blocked rows.
        has_request, in_agreed = pl.lit(False), pl.lit(False)
        if params.inconvenient_windows == "block":
            hit = _first_window(rows.filter("own"), proposals, "debtor_inconvenient_windows", closed=True)
            rows = rows.join(hit, on=["row", "zone_index"], how="left")
            has_request = pl.col("hit_start").is_not_null()
        if params.agreed_windows != "ignored":
            agreed = _first_window(rows.filter("own"), proposals, "debtor_agreed_windows", closed=False)
            rows = rows.join(
                agreed.select("row", "zone_index", in_agreed=pl.lit(True)),
                on=["row", "zone_index"],
                how="left",
            )
            in_agreed = pl.col("in_agreed").fill_null(False)
        default_ok = _in_default_expr(params)
        if params.agreed_windows == "govern":
            has_agreed = pl.col("own") & (pl.col("n_agreed") > 0)
            code = (
                pl.when(has_request)
                .then(1)
                .when(has_agreed & ~in_agreed)
                .then(2)
                .when(~has_agreed & ~default_ok)
                .then(3)
            )
        else:
            allowed = default_ok | in_agreed if params.agreed_windows == "permit" else default_ok
            code = pl.when(has_request).then(1).when(~allowed).then(3)
        failing = first_per_proposal(
            proposals, rows.with_columns(code=code).filter(pl.col("code").is_not_null() | pl.col("zone").is_null())
        )
        outside = "" if params.start is None else f"outside the allowed hours ({_hours(params)})"
        why = (
            pl.when(pl.col("code") == 2)
            .then(pl.lit("outside every window agreed with the debtor"))
            .otherwise(pl.lit(f"{outside} and no agreed window covers it"))
        )
        if params.inconvenient_windows == "block":
            why = (
                pl.when(pl.col("code") == 1)
                .then(
                    pl.format("inside {}–{}, a time the debtor named inconvenient", _fmt("hit_start"), _fmt("hit_end"))
                )
                .otherwise(why)
            )
        return findings(
            failing.select(
                proposal_id=pl.col("proposal_id"),
                verdict=pl.when(pl.col("zone").is_null()).then(pl.lit("missing_facts")).otherwise(pl.lit("violation")),
                facts=pl.when(pl.col("zone").is_null())
                .then(pl.lit("the debtor's time zone is unknown, so their local time cannot be known"))
                .otherwise(pl.format("{} {} is {}", pl.col("local").dt.strftime("%H:%M"), "zone", why)),
            )
        )


def _local_times(moment: datetime, zones: tuple[str, ...]) -> str:
    return ", ".join(f"{moment.astimezone(ZoneInfo(z)):%H:%M} {z}" for z in zones)


def local_times(proposals: pl.DataFrame, *keep: str) -> pl.DataFrame:
    """One row per (proposal, candidate zone): row (the proposal's position), n_zones, zone_index, zone and the
    naive local datetime `local`.

    A proposal without any zone keeps one row with a null zone (the caller reports missing facts). Most debtors
    have one zone, so only the others are exploded. Local times are computed once per distinct (zone, moment) —
    a cycle proposes few distinct moments — one zone at a time, since Polars converts a column to one named zone.
    """
    base = proposals.select(
        "moment_utc",
        *keep,
        row=pl.int_range(pl.len(), dtype=pl.UInt32),
        zones=pl.col("debtor_time_zones"),
        n_zones=pl.col("debtor_time_zones").list.len(),
    )
    single = base.filter(pl.col("n_zones") == 1).select(
        pl.exclude("zones"), zone=pl.col("zones").list.first(), zone_index=pl.lit(0, pl.Int64)
    )
    several = (
        base.filter(pl.col("n_zones") != 1)
        .with_columns(zone_index=pl.int_ranges(pl.col("n_zones")))
        .explode("zones", "zone_index", empty_as_null=True)
        .rename({"zones": "zone"})
        .select(single.columns)
    )
    rows = pl.concat([single, several])
    pairs = rows.select("zone", "moment_utc").drop_nulls("zone").unique()
    local = [
        part.with_columns(local=pl.col("moment_utc").dt.convert_time_zone(str(zone)).dt.replace_time_zone(None))
        for (zone,), part in pairs.partition_by("zone", as_dict=True).items()
    ]
    table = pl.concat(local) if local else pairs.with_columns(local=pl.lit(None, pl.Datetime("us")))
    return rows.join(table, on=["zone", "moment_utc"], how="left")


def first_per_proposal(proposals: pl.DataFrame, rows: pl.DataFrame, *order: str) -> pl.DataFrame:
    """The first of `rows` for each proposal by `order` then zone order, with its proposal_id.

    Only debtors with several zones can have several rows, so only those are sorted.
    """
    several = rows.filter(pl.col("n_zones") > 1).sort("row", *order, "zone_index")
    first = pl.concat([rows.filter(pl.col("n_zones") <= 1), several.unique("row", keep="first")])
    return first.with_columns(proposal_id=proposals.get_column("proposal_id").gather(first.get_column("row")))


def _fmt(column: str) -> pl.Expr:
    m = pl.col(column)
    return pl.format("{}:{}", (m // 60).cast(pl.String).str.zfill(2), (m % 60).cast(pl.String).str.zfill(2))


def _inside_expr(tod: pl.Expr, start: pl.Expr, end: pl.Expr, *, closed: bool) -> pl.Expr:
    s, e = start.cast(pl.Int64) * MINUTE_NS, end.cast(pl.Int64) * MINUTE_NS
    before_end = tod <= e if closed else tod < e
    return pl.when(s < e).then((tod >= s) & before_end).when(s == e).then(True).otherwise((tod >= s) | before_end)


def _first_window(rows: pl.DataFrame, proposals: pl.DataFrame, column: str, *, closed: bool) -> pl.DataFrame:
    """Per (proposal, zone): the first of the debtor's windows (list order) that holds the local time."""
    windows = (
        proposals.select(
            row=pl.int_range(pl.len(), dtype=pl.UInt32),
            w=pl.col(column),
            w_index=pl.int_ranges(pl.col(column).list.len()),
        )
        .filter(pl.col("w").list.len() > 0)
        .explode("w", "w_index")
        .unnest("w")
    )
    return (
        rows.select("row", "zone_index", "tod")
        .join(windows, on="row")
        .filter(_inside_expr(pl.col("tod"), pl.col("start_minute"), pl.col("end_minute"), closed=closed))
        .sort("w_index")
        .group_by("row", "zone_index")
        .agg(hit_start=pl.col("start_minute").first(), hit_end=pl.col("end_minute").first())
    )


def _in_default_expr(p: ContactWindowParams) -> pl.Expr:
    if p.start is None or p.end is None:
        return pl.lit(True)
    tod = pl.col("tod")
    s = (p.start.hour * 3600 + p.start.minute * 60 + p.start.second) * 1_000_000_000
    e = (p.end.hour * 3600 + p.end.minute * 60 + p.end.second) * 1_000_000_000
    after_start = tod >= s if p.start_allowed else tod > s
    before_end = tod <= e if p.end_allowed else tod < e
    return (after_start & before_end) if s < e else (after_start | before_end)
