"""Door visits, the pure part: the cost model, who is worth visiting and why, team and slot checks, routes.

Figures of law come from the rulebook (the services layer reads them into `VisitRules`); figures of the
lender's own choosing (costs, offices, recovery rates, slot hours) come from `policy/visits.yaml`
(`VisitPolicy`). Nothing here reads a file or a database.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Final

import polars as pl

from duecourse.domain.errors import DueCourseError

EARTH_RADIUS_M: Final = 6_371_000
POLICY_SOURCE: Final = "policy/visits.yaml"  # the house policy it holds: internal:collections-policy-2026#visits
# The visit's steps in order; an action is allowed only from the statuses listed for it.
STATUSES: Final = (
    "planned",
    "notice_issued",
    "notice_delivered",
    "scheduled",
    "checked_in",
    "checked_out",
    "reported",
)
ALLOWED_FROM: Final[Mapping[str, tuple[str, ...]]] = {
    "notice": ("planned",),
    "deliver": ("notice_issued",),
    "schedule": ("notice_delivered", "scheduled"),  # a scheduled visit may be moved
    "check_in": ("scheduled",),
    "check_out": ("checked_in",),
    "outcome": ("checked_out",),
}
CERTIFICATION: Final = "field_visit"
CERTIFIED_RULE: Final = "HOUSE.VISIT.CERTIFIED"  # names the member whose certification fails the rule


class VisitRefused(DueCourseError):
    """A visit step the rules or the policy forbid; `reasons` are "RULE: sentence" lines naming the source."""

    def __init__(self, visit_id: str, step: str, reasons: Sequence[str]) -> None:
        super().__init__(f"visit {visit_id}: cannot {step}: " + "; ".join(reasons))
        self.visit_id = visit_id
        self.step = step
        self.reasons = tuple(reasons)


def require_status(visit_id: str, step: str, status: str) -> None:
    allowed = ALLOWED_FROM[step]
    if status not in allowed:
        raise VisitRefused(visit_id, step, [f"the visit is {status}; this step needs it to be {' or '.join(allowed)}"])


# --- parameters -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VisitRules:
    """The rulebook's figures for visits on one day in one jurisdiction, and the rule each comes from."""

    min_days_past_due: int
    min_failed_attempts: int
    lookback_days: int
    failed_outcomes: tuple[str, ...]
    elderly_age: int
    vulnerable_flags: tuple[str, ...]
    min_notice_days: int
    min_staff: int
    source: Mapping[str, str]  # "last_resort" | "vulnerable" | "notice" | "team" -> rule id


@dataclass(frozen=True)
class Office:
    office_id: str
    name: str
    region: str
    latitude: float
    longitude: float


@dataclass(frozen=True)
class VisitPolicy:
    """The lender's visit policy: cost model, offices, recovery rates, slots and route limits."""

    currency: str
    offices: tuple[Office, ...]
    base_cost: Mapping[str, int]  # region -> minor units for a two-person visit; "*" for any other region
    cost_per_km: int  # minor units per km travelled (there and back)
    recovery_rate_bp: Mapping[str, int]  # delinquency bucket -> expected recovery, basis points of the overdue amount
    max_distance_km: int
    max_visits_per_day: int
    day_start: time
    day_end: time
    slot_minutes: int
    posting_days: int  # days between issuing a notice and the earliest delivery we plan for
    window_days: int  # length of the visit window a notice announces
    check_in_radius_m: int  # a check-in further than this from the address is flagged

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> VisitPolicy:
        """Parse the policy file's content; every figure is required (no silent default)."""
        try:
            offices = tuple(
                Office(str(o["id"]), str(o["name"]), str(o["region"]), float(o["latitude"]), float(o["longitude"]))
                for o in data["offices"]
            )
            rates = {str(k): _basis_points(v) for k, v in data["recovery_rate"].items()}
            policy = cls(
                currency=str(data["currency"]),
                offices=offices,
                base_cost={str(k): int(v) for k, v in data["base_cost"].items()},
                cost_per_km=int(data["cost_per_km"]),
                recovery_rate_bp=rates,
                max_distance_km=int(data["max_distance_km"]),
                max_visits_per_day=int(data["max_visits_per_day"]),
                day_start=time.fromisoformat(str(data["daytime"]["start"])),
                day_end=time.fromisoformat(str(data["daytime"]["end"])),
                slot_minutes=int(data["slot_minutes"]),
                posting_days=int(data["posting_days"]),
                window_days=int(data["window_days"]),
                check_in_radius_m=int(data["check_in_radius_m"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"visit policy: {exc!r}") from exc
        if not offices:
            raise ValueError("visit policy: at least one office is needed")
        if "*" not in policy.base_cost:
            raise ValueError("visit policy: base_cost needs a '*' entry for regions not listed")
        if policy.day_start >= policy.day_end or policy.slot_minutes <= 0 or policy.max_visits_per_day <= 0:
            raise ValueError("visit policy: daytime must start before it ends; slots and visits per day positive")
        return policy

    def slot_end(self, start: datetime) -> datetime:
        return start + timedelta(minutes=self.slot_minutes)


def _basis_points(rate: object) -> int:
    """A recovery rate given as a decimal string ("0.25") in exact basis points."""
    bp = Decimal(str(rate)) * 10_000
    if bp != bp.to_integral_value() or not 0 <= bp <= 10_000:
        raise ValueError(f"recovery rate {rate!r} must be between 0 and 1 in whole basis points")
    return int(bp)


# --- distance ---------------------------------------------------------------------------------------------


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> int:
    """Great-circle distance in whole metres (haversine)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return round(2 * EARTH_RADIUS_M * math.asin(math.sqrt(a)))


def _distance_expr(lat1: pl.Expr, lon1: pl.Expr, lat2: pl.Expr, lon2: pl.Expr) -> pl.Expr:
    p1, p2 = lat1.radians(), lat2.radians()
    a = ((p2 - p1) / 2).sin() ** 2 + p1.cos() * p2.cos() * ((lon2 - lon1).radians() / 2).sin() ** 2
    return (2 * EARTH_RADIUS_M * a.sqrt().arcsin()).round(0).cast(pl.Int64)


# --- eligibility ------------------------------------------------------------------------------------------

# The facts eligibility reads for each candidate (one row per `visit` action of the cycle).
CANDIDATES: Final = pl.Schema(
    {
        "action_key": pl.Int64(),
        "borrower_key": pl.Int64(),
        "loan_key": pl.Int64(),
        "contact_key": pl.Int64(),  # the debtor's valid postal address with coordinates; null: none
        "latitude": pl.Float64(),
        "longitude": pl.Float64(),
        "region": pl.String(),
        "currency": pl.String(),
        "days_past_due": pl.Int32(),
        "bucket": pl.String(),
        "balance": pl.Int64(),  # overdue amount, minor units
        "age": pl.Int16(),  # on the planning day; null: unknown
        "flags": pl.List(pl.String()),
        "failed_attempts": pl.Int32(),  # remote attempts that failed within the lookback window
        "conversations": pl.Int32(),  # conversations with the debtor within the lookback window
        "broken_promises": pl.Int32(),  # promises to pay whose date passed unkept
        "holds": pl.String(),  # kinds of the active holds, comma-separated; null: none
        "approved": pl.Boolean(),  # a supervisor approved contact with a vulnerable debtor
    }
)


def eligibility(candidates: pl.DataFrame, rules: VisitRules, policy: VisitPolicy) -> pl.DataFrame:
    """Each candidate with its nearest office, distance, cost, expected recovery and an explained verdict.

    Adds `office_id`, `distance_m`, `cost`, `expected_recovery`, `reasons` (list of "SOURCE: sentence" for
    every condition that fails) and `eligible` (no reason). Set-based over the whole frame.
    """
    offices = pl.DataFrame(
        {
            "office_id": [o.office_id for o in policy.offices],
            "office_lat": [o.latitude for o in policy.offices],
            "office_lon": [o.longitude for o in policy.offices],
        },
        schema={"office_id": pl.String, "office_lat": pl.Float64, "office_lon": pl.Float64},
    )
    nearest = (
        candidates.select("action_key", "latitude", "longitude")
        .filter(pl.col("latitude").is_not_null() & pl.col("longitude").is_not_null())
        .join(offices, how="cross")
        .with_columns(
            distance_m=_distance_expr(
                pl.col("latitude"), pl.col("longitude"), pl.col("office_lat"), pl.col("office_lon")
            )
        )
        .sort("action_key", "distance_m", "office_id")
        .group_by("action_key", maintain_order=True)
        .first()
        .select("action_key", "office_id", "distance_m")
    )
    base = pl.col("region").replace_strict(dict(policy.base_cost), default=policy.base_cost["*"], return_dtype=pl.Int64)
    rate = pl.col("bucket").replace_strict(dict(policy.recovery_rate_bp), default=0, return_dtype=pl.Int64)
    # Money in integer minor units, rounded half up: travel is there and back at cost_per_km a kilometre.
    travel = (2 * policy.cost_per_km * pl.col("distance_m") + 500) // 1000
    frame = candidates.join(nearest, on="action_key", how="left").with_columns(
        cost=base + travel.fill_null(0),
        expected_recovery=(pl.col("balance") * rate + 5_000) // 10_000,
    )
    lr, vul = rules.source["last_resort"], rules.source["vulnerable"]
    vulnerable_flags = pl.col("flags").list.set_intersection(pl.lit(list(rules.vulnerable_flags), pl.List(pl.String)))
    elderly = pl.col("age") >= rules.elderly_age
    tried_and_failed = (pl.col("failed_attempts") >= rules.min_failed_attempts) & (pl.col("conversations") == 0)
    failing: list[tuple[pl.Expr, pl.Expr]] = [
        (
            pl.col("contact_key").is_null() | pl.col("distance_m").is_null(),
            pl.lit(f"{POLICY_SOURCE}: no valid postal address of the debtor with coordinates to visit"),
        ),
        (
            pl.col("days_past_due") < rules.min_days_past_due,
            pl.format(
                "{}: {} days past due, fewer than {}",
                pl.lit(lr),
                pl.col("days_past_due"),
                pl.lit(rules.min_days_past_due),
            ),
        ),
        (
            ~tried_and_failed & (pl.col("broken_promises") == 0),
            pl.format(
                "{}: {} failed attempts and {} conversation(s) in the last {} days, and no broken promise: "
                "remote contact has not failed (needs at least {} failed attempts and no conversation)",
                pl.lit(lr),
                pl.col("failed_attempts"),
                pl.col("conversations"),
                pl.lit(rules.lookback_days),
                pl.lit(rules.min_failed_attempts),
            ),
        ),
        (
            pl.col("holds").is_not_null(),
            pl.format("{}: on hold ({}): no visit while a hold lasts", pl.lit(POLICY_SOURCE), pl.col("holds")),
        ),
        (
            ~pl.col("approved") & pl.col("age").is_null(),
            pl.lit(f"{vul}: the debtor's age is unknown, so a supervisor must approve a visit"),
        ),
        (
            ~pl.col("approved") & ((vulnerable_flags.list.len() > 0) | elderly.fill_null(False)),
            pl.format(
                "{}: a vulnerable debtor (age {}, flags {}) is visited only with a supervisor's approval",
                pl.lit(vul),
                pl.col("age"),
                vulnerable_flags.list.join(","),
            ),
        ),
        (
            pl.col("distance_m").fill_null(0) > policy.max_distance_km * 1000,
            pl.format(
                "{}: {} m from the nearest office {}, beyond {} km",
                pl.lit(POLICY_SOURCE),
                pl.col("distance_m"),
                pl.col("office_id"),
                pl.lit(policy.max_distance_km),
            ),
        ),
        (
            pl.col("expected_recovery") <= pl.col("cost"),
            pl.format(
                "{}: expected recovery {} ({} bucket) does not exceed the visit's cost {} (minor units {})",
                pl.lit(POLICY_SOURCE),
                pl.col("expected_recovery"),
                pl.col("bucket"),
                pl.col("cost"),
                pl.col("currency"),
            ),
        ),
    ]
    # An unknown fact fails its condition (blocks), with a sentence that says so if the usual one cannot be built.
    reasons = pl.concat_list(
        [
            pl.when(fails.fill_null(True))
            .then(pl.coalesce(sentence, pl.lit(f"{POLICY_SOURCE}: a fact this condition needs is unknown")))
            .otherwise(pl.lit(None, pl.String))
            for fails, sentence in failing
        ]
    ).list.drop_nulls()
    return frame.with_columns(reasons=reasons).with_columns(eligible=pl.col("reasons").list.len() == 0)


# --- team, window, slot -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Member:
    staff_id: str
    badge: str
    active: bool
    certified_until: date | None  # last day of the longest-running field_visit certification; None: none


def certified_until(certifications: Sequence[tuple[date, date]], day: date) -> date | None:
    """The expiry of the certification that covers `day` and runs longest ((issued_on, expires_on) pairs).

    A certification not yet issued on `day` does not count; the latest expiry otherwise (so an expired one
    shows as expired)."""
    issued = [expires for start, expires in certifications if start <= day]
    return max(issued) if issued else None


def team_problems(team: Sequence[Member], day: date, rules: VisitRules, *, size: bool = True) -> list[str]:
    """Why `team` may not make a visit on `day` (empty when it may), naming each member at fault.

    `size=False` leaves the team-size count out, for callers that ask the compliance engine, which cites it."""
    problems: list[str] = []
    ids = [m.staff_id for m in team]
    if len(set(ids)) != len(ids):
        problems.append(f"{POLICY_SOURCE}: a staff member is named twice in the team")
    if size and len(set(ids)) < rules.min_staff:
        problems.append(
            f"{rules.source['team']}: {len(set(ids))} collector(s) in the team, "
            f"a visit needs at least {rules.min_staff}"
        )
    for m in team:
        if not m.active:
            problems.append(f"{POLICY_SOURCE}: staff {m.staff_id} (badge {m.badge}) is not active")
        if m.certified_until is None:
            problems.append(
                f"{CERTIFIED_RULE}: staff {m.staff_id} (badge {m.badge}) holds no field-visit certification"
            )
        elif m.certified_until < day:
            problems.append(
                f"{CERTIFIED_RULE}: staff {m.staff_id} (badge {m.badge}) certification expired on "
                f"{m.certified_until.isoformat()}, before the visit on {day.isoformat()}"
            )
    return problems


def visit_window(notice_day: date, rules: VisitRules, policy: VisitPolicy) -> tuple[date, date]:
    """The window a notice issued on `notice_day` announces: it opens once posting and the lead time have passed."""
    start = notice_day + timedelta(days=policy.posting_days + rules.min_notice_days)
    return start, start + timedelta(days=policy.window_days - 1)


def slot_problems(
    start_local: datetime,
    policy: VisitPolicy,
    off_day: bool | None,
    window: tuple[date, date],
    delivered_at: datetime,
    rules: VisitRules,
) -> list[str]:
    """Why a visit may not start at `start_local` (aware, the debtor's local time): daytime, working day,
    inside the announced window, and the notice's lead time (full 24-hour days after delivery)."""
    problems: list[str] = []
    day, end = start_local.date(), policy.slot_end(start_local)
    if (
        start_local.timetz().replace(tzinfo=None) < policy.day_start
        or end.date() != day
        or (end.time() > policy.day_end)
    ):
        problems.append(
            f"{POLICY_SOURCE}: a visit from {start_local:%H:%M} to {end:%H:%M} is outside the daytime slots "
            f"{policy.day_start:%H:%M}-{policy.day_end:%H:%M} (debtor's local time)"
        )
    if off_day is None:
        problems.append(f"{POLICY_SOURCE}: the holiday calendar does not cover {day.isoformat()}: working day unknown")
    elif off_day:
        problems.append(f"{POLICY_SOURCE}: {day.isoformat()} is not a working day (weekend or statutory holiday)")
    if not window[0] <= day <= window[1]:
        problems.append(
            f"{POLICY_SOURCE}: {day.isoformat()} is outside the window the notice announced "
            f"({window[0].isoformat()} to {window[1].isoformat()})"
        )
    earliest = delivered_at + timedelta(days=rules.min_notice_days)
    if start_local < earliest:
        problems.append(
            f"{rules.source['notice']}: the notice was delivered at {delivered_at.isoformat()}; a visit may start "
            f"{rules.min_notice_days} full days later, from {earliest.isoformat()}"
        )
    return problems


# --- outcome ------------------------------------------------------------------------------------------------

# Words that tell a third party about a debt (CN.THIRDPARTY.NODISCLOSE): a note about a third party may say
# who was present, never why we came.
_DEBT_WORDS: Final = re.compile(
    r"欠|债|逾期|还款|贷款|借款|催收|利息|本金|罚息|¥|￥|人民币|\bdebt|\bowe|overdue|arrear|loan|repay|balance|"
    r"instal|interest|collect|\bcny\b|\brmb\b",
    re.IGNORECASE,
)


def debt_details_in(note: str, figures: Sequence[str]) -> list[str]:
    """What in a third-party note would disclose the debt: debt words, or the visit's own figures (amounts, ids)."""
    found = {m.group(0).lower() for m in _DEBT_WORDS.finditer(note)}
    compact = note.replace(",", "").replace(" ", "")
    found |= {f for f in figures if f and f in compact}
    return sorted(found)


# --- routes --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stop:
    key: str
    latitude: float
    longitude: float


@dataclass(frozen=True)
class Route:
    """Stops in visiting order from the office and back; `legs_m[i]` is the leg that ends at stop i, and the
    last leg returns to the office."""

    stops: tuple[Stop, ...]
    legs_m: tuple[int, ...]

    @property
    def total_m(self) -> int:
        return sum(self.legs_m)


def _legs(points: Sequence[tuple[float, float]], order: Sequence[int]) -> tuple[int, ...]:
    """Leg lengths of the round trip from point 0 (the office) through `order` and back."""
    return tuple(distance_m(*points[a], *points[b]) for a, b in itertools.pairwise([0, *order, 0]))


def plan_route(office: Office, stops: Sequence[Stop]) -> Route:
    """A short round trip from the office through every stop once: nearest neighbour, then 2-opt.

    Small by construction (a team visits at most `max_visits_per_day` addresses a day), so exact distances
    are recomputed freely. Deterministic: ties go to the stop listed first.
    """
    points = [(office.latitude, office.longitude), *((s.latitude, s.longitude) for s in stops)]
    left = list(range(1, len(points)))
    order: list[int] = []
    here = 0
    while left:
        here = min(left, key=lambda i: distance_m(*points[here], *points[i]))
        order.append(here)
        left.remove(here)
    improved = True
    while improved:
        improved = False
        for i in range(len(order) - 1):
            for j in range(i + 1, len(order)):
                candidate = order[:i] + order[i : j + 1][::-1] + order[j + 1 :]
                if sum(_legs(points, candidate)) < sum(_legs(points, order)):
                    order, improved = candidate, True
    return Route(tuple(stops[i - 1] for i in order), _legs(points, order))


def day_groups(office: Office, stops: Sequence[Stop], per_day: int) -> list[Route]:
    """Split many stops from one office into days of at most `per_day` nearby stops, each a planned route.

    The stops are ordered along one round trip first, so consecutive (hence nearby) stops share a day."""
    if per_day <= 0:
        raise ValueError("per_day must be positive")
    ordered = plan_route(office, stops).stops
    return [plan_route(office, ordered[i : i + per_day]) for i in range(0, len(ordered), per_day)]
