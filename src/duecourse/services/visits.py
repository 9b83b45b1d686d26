"""Door visits (issue 4, point 5): staff registry, eligibility, the visit lifecycle and routes, over the database.

The imperative shell around `domain/visits.py`: it reads the book, the contact history and the rulebook,
asks the pure core and the compliance engine, and writes each step with its audit entry in the same
transaction. A step the rules forbid raises `VisitRefused` naming the rule (or the policy) and why.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Final, Protocol
from zoneinfo import ZoneInfo

import polars as pl
import yaml
from sqlalchemy import Connection, and_, delete, func, insert, select, update

from duecourse.adapters.crypto import FieldCipher
from duecourse.adapters.db import tables as t
from duecourse.audit.chain import AuditRecord, as_utc
from duecourse.audit.log import append
from duecourse.compliance.checks.base import CheckContext
from duecourse.compliance.checks.visit import VisitCheck
from duecourse.compliance.engine import RuleOutcome, decide
from duecourse.compliance.facts import (
    Actor,
    Debt,
    Debtor,
    Dispute,
    HistoryEvent,
    Jurisdiction,
    Proposal,
    Staff,
    Visit,
)
from duecourse.compliance.rulebook import Rulebook
from duecourse.domain.errors import DueCourseError, NotFoundError, RowError
from duecourse.domain.money import from_minor
from duecourse.domain.verification import CodeSigner
from duecourse.domain.visits import (
    CANDIDATES,
    CERTIFICATION,
    POLICY_SOURCE,
    Member,
    Office,
    Route,
    Stop,
    VisitPolicy,
    VisitRefused,
    VisitRules,
    certified_until,
    day_groups,
    debt_details_in,
    distance_m,
    eligibility,
    plan_route,
    require_status,
    slot_problems,
    team_problems,
    visit_window,
)
from duecourse.services.compliance_gate import FLAGS, PACK_COUNTRY
from duecourse.services.contacts import ContactEvent, record_contacts
from duecourse.services.messages import MessageCatalogue

REFERENCE_PREFIX: Final = "visit:"
ORIGIN_SYSTEM: Final = "system:visits"
STAFF_FIELDS: Final = ("staff_id", "name", "badge", "region", "active", "certification", "issued_on", "expires_on")
CERTIFICATIONS: Final = (CERTIFICATION,)
# Which check kind gives each figure of `VisitRules`; the strictest rule in force wins.
_RULE_CHECKS: Final = {
    "last_resort": "visit_last_resort",
    "vulnerable": "vulnerable_debtor",
    "notice": "visit_notice",
    "team": "visit_team_size",
}


class VisitParts(Protocol):
    """What the composition root provides (bootstrap.Container has all of it)."""

    @property
    def rulebook(self) -> Rulebook: ...
    @property
    def check_context(self) -> CheckContext: ...
    @property
    def cipher(self) -> FieldCipher: ...
    @property
    def signer(self) -> CodeSigner: ...
    @property
    def messages(self) -> MessageCatalogue: ...


@dataclass(frozen=True)
class VisitDeps:
    rulebook: Rulebook
    ctx: CheckContext
    policy: VisitPolicy
    cipher: FieldCipher
    signer: CodeSigner
    messages: MessageCatalogue
    data_dir: Path  # evidence under data_dir/evidence, notices under data_dir/letters/visits
    public_url: str  # the /verify page's base URL printed on notices

    @classmethod
    def of(cls, parts: VisitParts, policy_path: Path, data_dir: Path, public_url: str) -> VisitDeps:
        return cls(
            parts.rulebook,
            parts.check_context,
            load_policy(policy_path),
            parts.cipher,
            parts.signer,
            parts.messages,
            data_dir,
            public_url.rstrip("/"),
        )


def load_policy(path: Path) -> VisitPolicy:
    with path.open(encoding="utf-8") as f:
        data = yaml.safe_load(f)
    try:
        return VisitPolicy.from_mapping(data)
    except ValueError as exc:
        raise DueCourseError(f"{path}: {exc}") from exc


# --- rulebook figures -------------------------------------------------------------------------------------


def visit_rules(book: Rulebook, country: str, day: date) -> VisitRules:
    """The rulebook's figures for visits in `country` on `day`; the strictest rule in force wins.

    A figure no rule in force gives is refused (compliance blocks by default, never a guessed number)."""
    found: dict[str, list[tuple[str, Any]]] = {name: [] for name in _RULE_CHECKS}
    for rule in book.for_country(country):
        for name, kind in _RULE_CHECKS.items():
            version = rule.version_on(day)
            if rule.check.kind == kind and version is not None and version.params is not None:
                found[name].append((rule.id, version.params))
    missing = [name for name, hits in found.items() if not hits]
    if missing:
        raise DueCourseError(
            f"visits in {country} on {day.isoformat()}: no rule in force gives the {', '.join(missing)} figures, "
            "so no visit can be planned there"
        )

    def strictest(name: str, attr: str) -> tuple[str, int]:
        rule_id, params = max(found[name], key=lambda hit: getattr(hit[1], attr))
        return rule_id, int(getattr(params, attr))

    lr_id, min_dpd = strictest("last_resort", "min_days_past_due")
    lr = dict(found["last_resort"])[lr_id]
    vul_id, elderly_age = min(
        ((rid, int(p.elderly_age)) for rid, p in found["vulnerable"]), key=lambda hit: hit[1]
    )  # the youngest age is the strictest
    notice_id, min_notice = strictest("notice", "min_days")
    team_id, min_staff = strictest("team", "min_staff")
    return VisitRules(
        min_days_past_due=min_dpd,
        min_failed_attempts=max(int(p.min_failed_attempts) for _, p in found["last_resort"]),
        lookback_days=max(int(p.lookback_days) for _, p in found["last_resort"]),
        failed_outcomes=tuple(lr.failed_outcomes),
        elderly_age=elderly_age,
        vulnerable_flags=tuple(sorted({f for _, p in found["vulnerable"] for f in p.flags})),
        min_notice_days=min_notice,
        min_staff=min_staff,
        source={"last_resort": lr_id, "vulnerable": vul_id, "notice": notice_id, "team": team_id},
    )


def _country(region: str | None) -> str:
    if not region:
        return "unknown"
    head = region.split("-")[0]
    return PACK_COUNTRY.get(head, head)


def _subdivision(region: str | None) -> str | None:
    parts = (region or "").split("-")
    return parts[1] if len(parts) > 1 else None


# --- staff registry ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StaffImport:
    accepted: int  # rows stored
    staff: int  # distinct staff written
    errors: tuple[RowError, ...]


def import_staff(
    conn: Connection, cipher: FieldCipher, path: Path, now: datetime, actor: str, origin: str
) -> StaffImport:
    """Load staff and their certifications from a CSV (one certification a row); bad rows come back as data.

    A staff id seen before is updated (name, badge, region, active); a certification already stored is kept."""
    raw = pl.read_csv(path, infer_schema=False).fill_null("")
    absent = [c for c in STAFF_FIELDS if c not in raw.columns]
    if absent:
        errs = tuple(RowError(str(path), 0, c, "column missing from the header") for c in absent)
        return StaffImport(0, 0, errs)
    frame = (
        raw.select(STAFF_FIELDS).with_row_index("row", offset=1).with_columns(pl.all().exclude("row").str.strip_chars())
    )
    issued = pl.col("issued_on").str.to_date("%Y-%m-%d", strict=False)
    expires = pl.col("expires_on").str.to_date("%Y-%m-%d", strict=False)
    checks: list[tuple[str, pl.Expr, str]] = [
        (
            "staff_id",
            ~pl.col("staff_id").str.contains(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$"),
            "must be 1-32 letters/digits",
        ),
        ("name", pl.col("name") == "", "must not be empty"),
        ("badge", ~pl.col("badge").str.contains(r"^[A-Za-z0-9][A-Za-z0-9-]{2,31}$"), "must be 3-32 letters/digits/-"),
        ("region", ~pl.col("region").str.contains(r"^[A-Z]{2}(-[A-Z0-9]{1,3})?$"), "must be ISO 3166 like CN-BJ"),
        ("active", ~pl.col("active").str.to_lowercase().is_in(["true", "false"]), "must be true or false"),
        ("certification", ~pl.col("certification").is_in(list(CERTIFICATIONS)), f"must be one of {CERTIFICATIONS}"),
        ("issued_on", issued.is_null(), "must be a date YYYY-MM-DD"),
        ("expires_on", expires.is_null(), "must be a date YYYY-MM-DD"),
        ("expires_on", expires < issued, "must not be before issued_on"),
    ]
    errors = pl.concat(
        [
            frame.filter(bad.fill_null(False)).select("row", field=pl.lit(name), reason=pl.lit(reason))
            for name, bad, reason in checks
        ]
    )
    # One staff id must name one person, one badge one staff id, across the file.
    clash = (
        frame.group_by("staff_id")
        .agg(pl.col("row"), n=pl.struct("name", "badge", "region", "active").n_unique())
        .filter(pl.col("n") > 1)
        .explode("row")
        .select("row", field=pl.lit("staff_id"), reason=pl.lit("rows of this staff id disagree on name/badge/region"))
    )
    taken = (
        frame.group_by("badge")
        .agg(pl.col("row"), n=pl.col("staff_id").n_unique())
        .filter(pl.col("n") > 1)
        .explode("row")
        .select("row", field=pl.lit("badge"), reason=pl.lit("the same badge is given to different staff ids"))
    )
    errors = pl.concat([errors, clash, taken]).sort("row", "field")
    good = frame.filter(~pl.col("row").is_in(errors.get_column("row").implode())).with_columns(
        issued_on=issued, expires_on=expires, active=pl.col("active").str.to_lowercase() == "true"
    )
    people = good.unique("staff_id", keep="first", maintain_order=True)
    known = {
        r.staff_id: int(r.staff_key)
        for r in conn.execute(
            select(t.staff.c.staff_id, t.staff.c.staff_key).where(
                t.staff.c.staff_id.in_(people.get_column("staff_id").to_list())
            )
        )
    }
    rows = people.to_dicts()
    names = cipher.encrypt_many([r["name"] for r in rows], "staff.name_enc")
    fresh = [
        {
            "staff_id": r["staff_id"],
            "name_enc": n,
            "badge": r["badge"],
            "region": r["region"],
            "active": r["active"],
            "updated_at": now,
        }
        for r, n in zip(rows, names, strict=True)
        if r["staff_id"] not in known
    ]
    if fresh:
        conn.execute(insert(t.staff), fresh)
    for r, n in zip(rows, names, strict=True):
        if r["staff_id"] in known:
            conn.execute(
                update(t.staff)
                .where(t.staff.c.staff_key == known[r["staff_id"]])
                .values(name_enc=n, badge=r["badge"], region=r["region"], active=r["active"], updated_at=now)
            )
    keys = _staff_keys(conn, people.get_column("staff_id").to_list())
    certs = good.select(
        staff_key=pl.col("staff_id").replace_strict(keys, return_dtype=pl.Int64),
        kind="certification",
        issued_on="issued_on",
        expires_on="expires_on",
    ).unique(["staff_key", "kind", "issued_on"])
    stored = {
        (int(r.staff_key), r.kind, r.issued_on)
        for r in conn.execute(
            select(
                t.staff_certification.c.staff_key, t.staff_certification.c.kind, t.staff_certification.c.issued_on
            ).where(t.staff_certification.c.staff_key.in_(list(keys.values())))
        )
    }
    new_certs = [c for c in certs.to_dicts() if (c["staff_key"], c["kind"], c["issued_on"]) not in stored]
    if new_certs:
        conn.execute(insert(t.staff_certification), new_certs)
    row_errors = tuple(RowError(path.name, int(r["row"]), r["field"], r["reason"]) for r in errors.to_dicts())
    append(
        conn,
        [
            AuditRecord(
                actor,
                origin,
                "staff.imported",
                "staff",
                path.name,
                f"{good.height} row(s) accepted, {errors.get_column('row').n_unique()} rejected",
                {
                    "file": path.name,
                    "staff_ids": people.get_column("staff_id").to_list(),
                    "certifications_added": len(new_certs),
                    "rejected": [e.__dict__ for e in row_errors],
                },
            )
        ],
        now,
    )
    return StaffImport(good.height, people.height, row_errors)


def _staff_keys(conn: Connection, staff_ids: Sequence[str]) -> dict[str, int]:
    rows = conn.execute(select(t.staff.c.staff_id, t.staff.c.staff_key).where(t.staff.c.staff_id.in_(list(staff_ids))))
    return {r.staff_id: int(r.staff_key) for r in rows}


@dataclass(frozen=True)
class StaffRow:
    staff_id: str
    name: str
    badge: str
    region: str
    active: bool
    certified_until: date | None  # on the day asked about


def list_staff(conn: Connection, cipher: FieldCipher, day: date) -> list[StaffRow]:
    members = _members(conn, None, day)
    rows = conn.execute(
        select(t.staff.c.staff_id, t.staff.c.name_enc, t.staff.c.region).order_by(t.staff.c.staff_id)
    ).all()
    names = dict(
        zip([r.staff_id for r in rows], cipher.decrypt_many([r.name_enc for r in rows], "staff.name_enc"), strict=True)
    )
    return [
        StaffRow(
            r.staff_id,
            names[r.staff_id],
            members[r.staff_id].badge,
            r.region,
            members[r.staff_id].active,
            members[r.staff_id].certified_until,
        )
        for r in rows
    ]


def _members(conn: Connection, staff_ids: Sequence[str] | None, day: date) -> dict[str, Member]:
    """Staff as team members on `day` (certification covering that day, else the last one that expired)."""
    s, c = t.staff, t.staff_certification
    q = select(s.c.staff_id, s.c.badge, s.c.active, c.c.issued_on, c.c.expires_on).select_from(
        s.outerjoin(c, and_(c.c.staff_key == s.c.staff_key, c.c.kind == CERTIFICATION))
    )
    if staff_ids is not None:
        q = q.where(s.c.staff_id.in_(list(staff_ids)))
    certs: dict[str, list[tuple[date, date]]] = {}
    info: dict[str, tuple[str, bool]] = {}
    for r in conn.execute(q):
        info[r.staff_id] = (r.badge, bool(r.active))
        certs.setdefault(r.staff_id, [])
        if r.issued_on is not None:
            certs[r.staff_id].append((r.issued_on, r.expires_on))
    return {sid: Member(sid, badge, active, certified_until(certs[sid], day)) for sid, (badge, active) in info.items()}


def _team(conn: Connection, visit_id: str, staff_ids: Sequence[str], day: date) -> list[Member]:
    members = _members(conn, staff_ids, day)
    unknown = [s for s in staff_ids if s not in members]
    if unknown:
        raise VisitRefused(visit_id, "assign the team", [f"unknown staff id(s): {', '.join(unknown)}"])
    return [members[s] for s in staff_ids]


def visit_team_for_reference(conn: Connection, cipher: FieldCipher, reference: str) -> list[tuple[str, str]]:
    """(name, badge) of each member of the team of the visit a verification code refers to ("visit:<visit_id>").

    Empty when the reference is not a visit, the visit is unknown, or no team is named yet.
    """
    if not reference.startswith(REFERENCE_PREFIX):
        return []
    visit_id = reference.removeprefix(REFERENCE_PREFIX)
    rows = conn.execute(
        select(t.staff.c.name_enc, t.staff.c.badge)
        .select_from(
            t.visit.join(t.visit_team, t.visit_team.c.visit_key == t.visit.c.visit_key).join(
                t.staff, t.staff.c.staff_key == t.visit_team.c.staff_key
            )
        )
        .where(t.visit.c.visit_id == visit_id)
        .order_by(t.staff.c.badge)
    ).all()
    return [(cipher.decrypt(r.name_enc, "staff.name_enc"), str(r.badge)) for r in rows]


def approve_vulnerable(
    conn: Connection, borrower_id: str, approved_by: str, reason: str, valid_until: date, now: datetime, origin: str
) -> None:
    """A supervisor's approval to visit a vulnerable debtor (HOUSE.VULNERABLE), audited."""
    key = conn.execute(select(t.borrower.c.borrower_key).where(t.borrower.c.borrower_id == borrower_id)).scalar()
    if key is None:
        raise NotFoundError(f"no borrower {borrower_id!r}")
    if not reason.strip():
        raise DueCourseError("an approval states its reason")
    conn.execute(
        insert(t.visit_approval).values(
            borrower_key=key, approved_by=approved_by, reason=reason, approved_at=now, valid_until=valid_until
        )
    )
    append(
        conn,
        [
            AuditRecord(
                approved_by,
                origin,
                "visit.vulnerable_approved",
                "borrower",
                borrower_id,
                reason,
                {"valid_until": valid_until.isoformat()},
            )
        ],
        now,
    )


# --- eligibility and planning ------------------------------------------------------------------------------


def visit_actions(conn: Connection, book: Rulebook, as_of: date) -> list[int]:
    """The cycle's `visit` actions of `as_of` that visit planning may take up.

    Allowed ones, and those blocked only by rules about the visit itself (team, certification, notice,
    identification, recording, entry, last resort, balance): the cycle proposes a visit before it has a
    team, a notice or a slot, so those rules can only answer when the visit is scheduled, where the
    engine asks them again with the real facts and blocks what they forbid."""
    a = t.proposed_action
    rows = conn.execute(
        select(a.c.action_key, a.c.compliance_status, a.c.compliance_rules).where(
            a.c.as_of == as_of, a.c.channel == "visit"
        )
    ).all()
    deferred = {r.id for r in book.rules if isinstance(r.check, VisitCheck)}
    return [
        int(r.action_key)
        for r in rows
        if r.compliance_status == "allowed"
        or (r.compliance_status == "blocked" and set((r.compliance_rules or "?").split(",")) <= deferred)
    ]


def candidates(conn: Connection, deps: VisitDeps, action_keys: Sequence[int], now: datetime) -> pl.DataFrame:
    """The facts eligibility reads (`domain.visits.CANDIDATES`) for these `visit` actions, from the book."""
    a, s = t.proposed_action, t.delinquency_snapshot
    actions = _frame(
        conn,
        select(
            a.c.action_key,
            a.c.loan_key,
            a.c.as_of,
            t.loan.c.borrower_key,
            t.loan.c.currency,
            s.c.days_past_due,
            s.c.bucket,
            s.c.overdue_total.label("balance"),
            t.borrower.c.region,
            t.borrower.c.birth_date,
            t.borrower.c.flags,
        )
        .select_from(
            a.join(t.loan, t.loan.c.loan_key == a.c.loan_key)
            .join(t.borrower, t.borrower.c.borrower_key == t.loan.c.borrower_key)
            .outerjoin(s, and_(s.c.loan_key == a.c.loan_key, s.c.as_of == a.c.as_of))
        )
        .where(a.c.action_key.in_([int(k) for k in action_keys]), a.c.channel == "visit"),
        {
            "action_key": pl.Int64,
            "loan_key": pl.Int64,
            "as_of": pl.Date,
            "borrower_key": pl.Int64,
            "currency": pl.String,
            "days_past_due": pl.Int32,
            "bucket": pl.String,
            "balance": pl.Int64,
            "region": pl.String,
            "birth_date": pl.Date,
            "flags": pl.String,
        },
    )
    borrowers = actions.get_column("borrower_key").unique().to_list()
    loans = actions.get_column("loan_key").unique().to_list()
    day = now.date()
    addresses = _addresses(conn, borrowers)
    held = (
        _frame(
            conn,
            select(t.hold.c.borrower_key, t.hold.c.kind).where(
                t.hold.c.borrower_key.in_(borrowers),
                t.hold.c.start_date <= day,
                (t.hold.c.end_date.is_(None)) | (t.hold.c.end_date >= day),
            ),
            {"borrower_key": pl.Int64, "kind": pl.String},
        )
        .group_by("borrower_key")
        .agg(holds=pl.col("kind").unique().sort().str.join(","))
    )
    approved = (
        _frame(
            conn,
            select(t.visit_approval.c.borrower_key).where(
                t.visit_approval.c.borrower_key.in_(borrowers), t.visit_approval.c.valid_until >= day
            ),
            {"borrower_key": pl.Int64},
        )
        .unique()
        .with_columns(approved=pl.lit(True))
    )
    rules_by_country = {
        c: visit_rules(deps.rulebook, c, day) for c in {_country(r) for r in actions.get_column("region").to_list()}
    }
    # Contact history is counted per borrower over the longest look-back any country's rule uses.
    lookback = max((r.lookback_days for r in rules_by_country.values()), default=0)
    failed = sorted({o for r in rules_by_country.values() for o in r.failed_outcomes})
    e = t.contact_event
    history = (
        _frame(
            conn,
            select(e.c.borrower_key, e.c.channel, e.c.outcome, e.c.initiated_by).where(
                e.c.borrower_key.in_(borrowers),
                e.c.counterpart == "debtor",
                e.c.at >= now - timedelta(days=lookback),
                e.c.at < now,
            ),
            {"borrower_key": pl.Int64, "channel": pl.String, "outcome": pl.String, "initiated_by": pl.String},
        )
        .group_by("borrower_key")
        .agg(
            failed_attempts=(
                (pl.col("channel") != "visit")
                & (pl.col("initiated_by") == "collector")
                & pl.col("outcome").is_in(failed)
            )
            .sum()
            .cast(pl.Int32),
            conversations=(pl.col("outcome") == "conversation").sum().cast(pl.Int32),
        )
    )
    promises = _broken_promises(conn, loans, day)
    born = pl.col("birth_date")
    # Whole years on `day` (month and day widened first: Polars gives them as Int8).
    birthday_later = (born.dt.month().cast(pl.Int32) * 100 + born.dt.day().cast(pl.Int32)) > day.month * 100 + day.day
    age = pl.lit(day.year) - born.dt.year() - birthday_later.cast(pl.Int32)
    return (
        actions.join(addresses, on="borrower_key", how="left")
        .join(held, on="borrower_key", how="left")
        .join(approved, on="borrower_key", how="left")
        .join(history, on="borrower_key", how="left")
        .join(promises, on="loan_key", how="left")
        .select(
            "action_key",
            "borrower_key",
            "loan_key",
            "contact_key",
            "latitude",
            "longitude",
            "region",
            "currency",
            "days_past_due",
            "bucket",
            "balance",
            age=age.cast(pl.Int16),
            flags=pl.col("flags").fill_null("").str.split(",").list.eval(pl.element().filter(pl.element() != "")),
            failed_attempts=pl.col("failed_attempts").fill_null(0),
            conversations=pl.col("conversations").fill_null(0),
            broken_promises=pl.col("broken_promises").fill_null(0),
            holds="holds",
            approved=pl.col("approved").fill_null(False),
        )
        .cast(CANDIDATES)
    )


def _addresses(conn: Connection, borrowers: Sequence[int]) -> pl.DataFrame:
    """Each borrower's first valid postal address with coordinates that they have not withdrawn consent for."""
    c = t.contact_point
    return (
        _frame(
            conn,
            select(c.c.contact_key, c.c.borrower_key, c.c.latitude, c.c.longitude, c.c.time_zone).where(
                c.c.borrower_key.in_(list(borrowers)),
                c.c.kind == "address",
                c.c.owner == "borrower",
                c.c.valid.is_(True),
                c.c.consent.is_(True),
                c.c.latitude.is_not(None),
                c.c.longitude.is_not(None),
            ),
            {
                "contact_key": pl.Int64,
                "borrower_key": pl.Int64,
                "latitude": pl.Float64,
                "longitude": pl.Float64,
                "time_zone": pl.String,
            },
        )
        .sort("contact_key")
        .unique("borrower_key", keep="first")
    )


def _broken_promises(conn: Connection, loans: Sequence[int], day: date) -> pl.DataFrame:
    """Promises to pay on these loans whose day has passed without the promised amount paid since they were made."""
    p = t.promise_to_pay
    promises = _frame(
        conn,
        select(p.c.promise_key, p.c.loan_key, p.c.amount, p.c.due_date, p.c.taken_at, p.c.state).where(
            p.c.loan_key.in_(list(loans)), p.c.due_date < day
        ),
        {
            "promise_key": pl.Int64,
            "loan_key": pl.Int64,
            "amount": pl.Int64,
            "due_date": pl.Date,
            "taken_at": pl.Datetime("us"),
            "state": pl.String,
        },
    )
    payments = _frame(
        conn,
        select(t.payment.c.loan_key, t.payment.c.value_date, t.payment.c.amount).where(
            t.payment.c.loan_key.in_(list(loans))
        ),
        {"loan_key": pl.Int64, "value_date": pl.Date, "amount": pl.Int64},
    )
    paid = (
        promises.join(payments.rename({"amount": "paid"}), on="loan_key", how="left")
        .filter(
            pl.col("value_date").is_null()
            | ((pl.col("value_date") >= pl.col("taken_at").dt.date()) & (pl.col("value_date") <= pl.col("due_date")))
        )
        .group_by("promise_key", "loan_key", "amount", "state")
        .agg(paid=pl.col("paid").fill_null(0).sum())
    )
    broken = (pl.col("state") == "broken") | ((pl.col("state") == "open") & (pl.col("paid") < pl.col("amount")))
    return paid.group_by("loan_key").agg(broken_promises=broken.sum().cast(pl.Int32))


def _frame(conn: Connection, query: Any, schema: dict[str, Any]) -> pl.DataFrame:
    """Rows as a frame; instants as naive UTC (SQLite returns them naive, PostgreSQL aware)."""
    rows = [
        tuple(as_utc(v).replace(tzinfo=None) if isinstance(v, datetime) else v for v in r) for r in conn.execute(query)
    ]
    return pl.DataFrame(rows, schema=schema, orient="row")


@dataclass(frozen=True)
class Planned:
    verdicts: pl.DataFrame  # every candidate with its explained verdict (domain.visits.eligibility)
    planned: tuple[str, ...]  # visit ids created now
    already: tuple[str, ...]  # visits planned earlier for these actions


def check_eligibility(conn: Connection, deps: VisitDeps, action_keys: Sequence[int], now: datetime) -> pl.DataFrame:
    """Every candidate with its explained verdict, per jurisdiction's rules (no write)."""
    facts = candidates(conn, deps, action_keys, now)
    if facts.is_empty():
        return eligibility(facts, _any_rules(deps, now), deps.policy)
    head = pl.col("region").str.split("-").list.first()
    countries = facts.with_columns(country=head.replace(PACK_COUNTRY).fill_null("unknown"))
    parts = [
        eligibility(group.drop("country"), visit_rules(deps.rulebook, str(country), now.date()), deps.policy)
        for (country,), group in countries.group_by("country")
    ]
    return pl.concat(parts).sort("action_key")


def _any_rules(deps: VisitDeps, now: datetime) -> VisitRules:
    return visit_rules(deps.rulebook, deps.rulebook.countries[0], now.date())


def plan_visits_from_actions(
    conn: Connection,
    deps: VisitDeps,
    action_keys: Sequence[int],
    now: datetime,
    actor: str = ORIGIN_SYSTEM,
    origin: str = "cycle",
) -> Planned:
    """Plan a visit for each eligible `visit` action (idempotent: an action already planned is left alone).

    Every candidate's verdict is audited: `visit.planned` with the cost model's figures, or `visit.not_planned`
    with the reasons."""
    existing = {
        int(r.action_key): r.visit_id
        for r in conn.execute(
            select(t.visit.c.action_key, t.visit.c.visit_id).where(
                t.visit.c.action_key.in_([int(k) for k in action_keys])
            )
        )
    }
    verdicts = check_eligibility(conn, deps, [k for k in action_keys if int(k) not in existing], now)
    eligible = verdicts.filter(pl.col("eligible"))
    window = (now.date(), now.date() + timedelta(days=deps.policy.window_days - 1))  # provisional: set by the notice
    rows = [
        {
            "visit_id": _visit_id(now, int(r["action_key"])),
            "action_key": r["action_key"],
            "borrower_key": r["borrower_key"],
            "loan_key": r["loan_key"],
            "contact_key": r["contact_key"],
            "status": "planned",
            "currency": r["currency"],
            "balance": r["balance"],
            "expected_recovery": r["expected_recovery"],
            "cost": r["cost"],
            "office_id": r["office_id"],
            "distance_m": r["distance_m"],
            "eligibility": _explained(r),
            "window_start": window[0],
            "window_end": window[1],
            "planned_at": now,
        }
        for r in eligible.to_dicts()
    ]
    if rows:
        conn.execute(insert(t.visit), rows)
    records = [
        AuditRecord(
            actor, origin, "visit.planned", "visit", row["visit_id"], "eligible for a door visit", row["eligibility"]
        )
        for row in rows
    ] + [
        AuditRecord(
            actor,
            origin,
            "visit.not_planned",
            "proposed_action",
            str(r["action_key"]),
            "; ".join(r["reasons"]),
            _explained(r),
        )
        for r in verdicts.filter(~pl.col("eligible")).to_dicts()
    ]
    append(conn, records, now)
    return Planned(verdicts, tuple(r["visit_id"] for r in rows), tuple(existing.values()))


def _visit_id(now: datetime, action_key: int) -> str:
    return f"V-{now.year}-{action_key:06d}"


def _explained(r: dict[str, Any]) -> dict[str, Any]:
    keys = (
        "action_key",
        "days_past_due",
        "bucket",
        "balance",
        "currency",
        "failed_attempts",
        "conversations",
        "broken_promises",
        "holds",
        "approved",
        "office_id",
        "distance_m",
        "cost",
        "expected_recovery",
        "eligible",
        "reasons",
    )
    return {k: r[k] for k in keys}


# --- the lifecycle -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VisitFacts:
    """One stored visit with what the steps need."""

    visit_key: int
    visit_id: str
    status: str
    action_key: int
    borrower_key: int
    loan_key: int
    contact_key: int
    latitude: float
    longitude: float
    time_zone: str
    region: str | None
    office_id: str
    window_start: date
    window_end: date
    notice_issued_at: datetime | None
    notice_delivered_at: datetime | None
    scheduled_start: datetime | None
    checked_in_at: datetime | None
    team: tuple[str, ...]  # staff ids
    eligibility: dict[str, Any]

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)


def _visit(conn: Connection, visit_id: str) -> VisitFacts:
    v, c = t.visit, t.contact_point
    row = conn.execute(
        select(v, c.c.latitude, c.c.longitude, c.c.time_zone, t.borrower.c.region)
        .select_from(
            v.join(c, c.c.contact_key == v.c.contact_key).join(
                t.borrower, t.borrower.c.borrower_key == v.c.borrower_key
            )
        )
        .where(v.c.visit_id == visit_id)
    ).first()
    if row is None:
        raise NotFoundError(f"no visit {visit_id!r}")
    team = conn.execute(
        select(t.staff.c.staff_id)
        .select_from(t.visit_team.join(t.staff, t.staff.c.staff_key == t.visit_team.c.staff_key))
        .where(t.visit_team.c.visit_key == row.visit_key)
        .order_by(t.staff.c.staff_id)
    ).scalars()
    return VisitFacts(
        int(row.visit_key),
        row.visit_id,
        row.status,
        int(row.action_key),
        int(row.borrower_key),
        int(row.loan_key),
        int(row.contact_key),
        float(row.latitude),
        float(row.longitude),
        row.time_zone,
        row.region,
        row.office_id,
        row.window_start,
        row.window_end,
        _utc(row.notice_issued_at),
        _utc(row.notice_delivered_at),
        _utc(row.scheduled_start),
        _utc(row.checked_in_at),
        tuple(team),
        dict(row.eligibility),
    )


def _utc(at: datetime | None) -> datetime | None:
    return None if at is None else as_utc(at)


def _aware(at: datetime, what: str) -> datetime:
    if at.tzinfo is None:
        raise DueCourseError(f"{what} must carry its UTC offset")
    return at


def _audit(
    conn: Connection,
    visit: VisitFacts,
    action: str,
    reason: str,
    payload: dict[str, Any],
    now: datetime,
    actor: str,
    origin: str,
) -> None:
    append(conn, [AuditRecord(actor, origin, action, "visit", visit.visit_id, reason, payload)], now)


def _set(conn: Connection, visit: VisitFacts, **values: Any) -> None:
    conn.execute(update(t.visit).where(t.visit.c.visit_key == visit.visit_key).values(**values))


def _replace_team(conn: Connection, visit: VisitFacts, staff_ids: Sequence[str]) -> None:
    keys = _staff_keys(conn, staff_ids)
    conn.execute(delete(t.visit_team).where(t.visit_team.c.visit_key == visit.visit_key))
    conn.execute(insert(t.visit_team), [{"visit_key": visit.visit_key, "staff_key": keys[s]} for s in staff_ids])


def _rules_for(deps: VisitDeps, visit: VisitFacts, day: date) -> VisitRules:
    return visit_rules(deps.rulebook, _country(visit.region), day)


@dataclass(frozen=True)
class NoticeFacts:
    """What the pre-visit notice prints about the visit, handed to the letters service."""

    visit_id: str
    action_key: int
    borrower_key: int
    loan_key: int
    window_start: date
    window_end: date
    visitors: tuple[tuple[str, str], ...]  # (name, badge)
    reasons: tuple[str, ...]  # letters.VISIT_REASONS


class NoticeWriter(Protocol):
    """Renders and files the pre-visit notice PDF (services/letters.py); returns the file written."""

    def __call__(self, conn: Connection, facts: NoticeFacts, code: str, now: datetime) -> Path: ...


def issue_notice(
    conn: Connection,
    deps: VisitDeps,
    visit_id: str,
    staff_ids: Sequence[str],
    now: datetime,
    write_notice: NoticeWriter,
    actor: str = ORIGIN_SYSTEM,
    origin: str = "cli",
) -> tuple[Path, str]:
    """Name the team and the visit window, issue the notice's verification code ("visit:<visit_id>") and
    render the notice; returns (the PDF, the code)."""
    from duecourse.services.verification import CodeRequest, issue

    visit = _visit(conn, visit_id)
    require_status(visit_id, "notice", visit.status)
    local_day = now.astimezone(visit.zone).date()
    rules = _rules_for(deps, visit, local_day)
    window = visit_window(local_day, rules, deps.policy)
    team = _team(conn, visit_id, staff_ids, window[0])
    problems = team_problems(team, window[0], rules)
    if problems:
        raise VisitRefused(visit_id, "issue the notice", problems)
    _replace_team(conn, visit, staff_ids)
    expires = datetime.combine(window[1] + timedelta(days=1), datetime.min.time(), visit.zone).astimezone(UTC)
    code = issue(
        conn,
        deps.signer,
        CodeRequest(
            # Purpose "visit": the one code the notice prints and the team shows at the door, so /verify names
            # the team (services/verification.py shows a visit code's team).
            "visit",
            "visit",
            visit.borrower_key,
            deps.messages.lender.name["zh"],
            loan_key=visit.loan_key,
            action_key=visit.action_key,
            reference=f"{REFERENCE_PREFIX}{visit_id}",
            valid_for=expires - now,
        ),
        now,
    )
    visitors = tuple(visit_team_for_reference(conn, deps.cipher, f"{REFERENCE_PREFIX}{visit_id}"))
    reasons = ("promises_broken",) if visit.eligibility.get("broken_promises") else ("contact_failed",)
    pdf = write_notice(
        conn,
        NoticeFacts(
            visit_id, visit.action_key, visit.borrower_key, visit.loan_key, window[0], window[1], visitors, reasons
        ),
        code,
        now,
    )
    _set(
        conn,
        visit,
        status="notice_issued",
        notice_issued_at=now,
        notice_letter=pdf.name,
        window_start=window[0],
        window_end=window[1],
    )
    _audit(
        conn,
        visit,
        "visit.notice_issued",
        "pre-visit notice rendered",
        {
            "team": list(staff_ids),
            "window": [window[0].isoformat(), window[1].isoformat()],
            "letter": pdf.name,
            "sha256": hashlib.sha256(pdf.read_bytes()).hexdigest(),
        },
        now,
        actor,
        origin,
    )
    return pdf, code


def record_delivery(
    conn: Connection,
    visit_id: str,
    delivered_at: datetime,
    method: str,
    now: datetime,
    actor: str = ORIGIN_SYSTEM,
    origin: str = "cli",
) -> None:
    """The notice reached the debtor (when, and how: registered post, courier, by hand). A contact event too."""
    visit = _visit(conn, visit_id)
    require_status(visit_id, "deliver", visit.status)
    delivered_at = as_utc(_aware(delivered_at, "the delivery time"))
    assert visit.notice_issued_at is not None
    if not visit.notice_issued_at <= delivered_at <= now:
        raise VisitRefused(
            visit_id,
            "record delivery",
            [f"delivery at {delivered_at.isoformat()} is before the notice was issued or in the future"],
        )
    if not method.strip():
        raise VisitRefused(visit_id, "record delivery", ["say how the notice was delivered"])
    _set(conn, visit, status="notice_delivered", notice_delivered_at=delivered_at, notice_delivery=method)
    record_contacts(
        conn,
        [
            ContactEvent(
                f"visit:{visit_id}:notice",
                visit.borrower_key,
                delivered_at,
                "letter",
                "delivered",
                loan_key=visit.loan_key,
                action_key=visit.action_key,
                address=f"cp:{visit.contact_key}",
                agent=actor,
                details={"detail": "pre_visit_notice_delivered", "visit_id": visit_id, "method": method},
            )
        ],
        now,
    )
    _audit(
        conn,
        visit,
        "visit.notice_delivered",
        f"delivered by {method}",
        {"delivered_at": delivered_at, "method": method},
        now,
        actor,
        origin,
    )


def _proposal(
    conn: Connection,
    deps: VisitDeps,
    visit: VisitFacts,
    moment: datetime,
    team: Sequence[Member],
    *,
    identification_shown: bool,
    recording: bool,
) -> Proposal:
    """The compliance proposal for this visit at `moment` (local to the visited address), from the book."""
    b = conn.execute(
        select(t.borrower.c.borrower_id, t.borrower.c.birth_date, t.borrower.c.flags, t.borrower.c.region).where(
            t.borrower.c.borrower_key == visit.borrower_key
        )
    ).one()
    loan = conn.execute(select(t.loan.c.loan_id, t.loan.c.currency).where(t.loan.c.loan_key == visit.loan_key)).one()
    s = t.delinquency_snapshot
    snap = conn.execute(
        select(s.c.as_of, s.c.days_past_due, s.c.overdue_total)
        .where(s.c.loan_key == visit.loan_key)
        .order_by(s.c.as_of.desc())
        .limit(1)
    ).first()
    day = moment.date()
    holds = (
        conn.execute(
            select(t.hold.c.kind).where(
                t.hold.c.borrower_key == visit.borrower_key,
                t.hold.c.start_date <= day,
                (t.hold.c.end_date.is_(None)) | (t.hold.c.end_date >= day),
            )
        )
        .scalars()
        .all()
    )
    flags = [f for f in (b.flags or "").split(",") if f in FLAGS] + (["deceased"] if "deceased" in holds else [])
    approved = conn.execute(
        select(func.count())
        .select_from(t.visit_approval)
        .where(t.visit_approval.c.borrower_key == visit.borrower_key, t.visit_approval.c.valid_until >= day)
    ).scalar_one()
    lender = Actor(kind="lender", name=deps.messages.lender.name["zh"])
    e = t.contact_event
    history = conn.execute(
        select(e.c.at, e.c.channel, e.c.counterpart, e.c.address, e.c.outcome, e.c.initiated_by, e.c.actor_kind)
        .where(e.c.borrower_key == visit.borrower_key, e.c.at >= moment - timedelta(days=400), e.c.at < moment)
        .order_by(e.c.at)
    ).all()
    # Days past due on the visit's day: the last snapshot's count plus the days since, as long as it stays unpaid.
    dpd = 0 if snap is None else int(snap.days_past_due) + max((day - snap.as_of).days, 0) * (snap.days_past_due > 0)
    return Proposal(
        id=visit.visit_id,
        jurisdiction=Jurisdiction(country=_country(b.region), region=_subdivision(b.region)),
        moment=moment,
        actor=lender,
        channel="visit",
        counterpart="debtor",
        purpose="collect",
        address=f"cp:{visit.contact_key}",
        place="home",
        visit=Visit(
            staff=tuple(Staff(name=m.staff_id, badge=m.badge, certified_until=m.certified_until) for m in team),
            identification_shown=identification_shown,
            enters_premises=False,  # the plan is to talk at the door; entering needs consent (CN.VISIT.ENTRY)
            recording=recording,
            notice_delivered_at=visit.notice_delivered_at,
        ),
        debtor=Debtor(
            id=b.borrower_id,
            time_zones=(visit.time_zone,),
            birth_date=b.birth_date,
            flags=tuple(sorted(set(flags))),  # type: ignore[arg-type]
            vulnerability_approved=approved > 0 or None,
            dispute=Dispute(open=True) if "dispute" in holds else None,
            attorney_represented="attorney" in (b.flags or "").split(","),
        ),
        debt=Debt(
            id=loan.loan_id,
            days_past_due=dpd,
            balance=0 if snap is None else int(snap.overdue_total),
            currency=loan.currency,
            payment_account=deps.messages.lender.account,
            official_accounts=deps.messages.lender.official_accounts,
        ),
        history=tuple(
            HistoryEvent(
                at=as_utc(h.at),
                channel=h.channel,
                counterpart=h.counterpart,
                address=h.address,
                outcome=h.outcome,
                initiated_by=h.initiated_by,
                actor=Actor(kind=h.actor_kind, name=lender.name),
            )
            for h in history
        ),
    )


def _blocking(outcomes: Sequence[RuleOutcome]) -> list[str]:
    """Each blocking rule as "RULE (source, article): the facts"."""
    lines = []
    for o in outcomes:
        if not o.blocks:
            continue
        cited = (
            ""
            if o.version is None or not o.version.citations
            else f" ({o.version.citations[0].source}, {o.version.citations[0].article})"
        )
        lines.append(f"{o.rule_id}{cited}: {o.facts}")
    return lines


def _decide(
    conn: Connection, deps: VisitDeps, visit: VisitFacts, moment: datetime, team: Sequence[Member], **facts: bool
) -> tuple[list[str], dict[str, Any]]:
    proposal = _proposal(conn, deps, visit, moment, team, **facts)
    verdict = decide(deps.rulebook, proposal, deps.ctx, reschedule=False)
    return _blocking(verdict.outcomes), verdict.to_json()


def schedule(
    conn: Connection,
    deps: VisitDeps,
    visit_id: str,
    staff_ids: Sequence[str],
    start: datetime,
    now: datetime,
    actor: str = ORIGIN_SYSTEM,
    origin: str = "cli",
) -> datetime:
    """Fix the visit's slot and team, once the rules and the policy allow it; returns the slot's end.

    Refused (with every reason at once) for: a team smaller than the rules' minimum, a member not certified on
    the day or not named on the notice, a slot outside daytime or on a day off, outside the announced window or
    before the notice's lead time, a team already full that day, and anything the compliance engine blocks."""
    visit = _visit(conn, visit_id)
    require_status(visit_id, "schedule", visit.status)
    local = _aware(start, "the visit start").astimezone(visit.zone)
    day = local.date()
    rules = _rules_for(deps, visit, day)
    team = _team(conn, visit_id, staff_ids, day)
    assert visit.notice_delivered_at is not None
    problems = team_problems(team, day, rules, size=False)
    strangers = sorted(set(staff_ids) - set(visit.team))
    if strangers:
        problems.append(
            f"{POLICY_SOURCE}: {', '.join(strangers)} not named on the notice; the debtor was told who would come "
            f"({', '.join(visit.team)})"
        )
    off = deps.ctx.calendar.is_off_day(_country(visit.region), day)
    problems += slot_problems(
        local,
        deps.policy,
        off,
        (visit.window_start, visit.window_end),
        visit.notice_delivered_at.astimezone(visit.zone),
        rules,
    )
    end = deps.policy.slot_end(local)
    problems += _capacity(conn, deps, visit, staff_ids, local, end)
    refused, verdict = _decide(conn, deps, visit, local, team, identification_shown=True, recording=True)
    if problems or refused:
        raise VisitRefused(visit_id, "schedule", problems + refused)
    _replace_team(conn, visit, staff_ids)
    _set(conn, visit, status="scheduled", scheduled_start=local.astimezone(UTC), scheduled_end=end.astimezone(UTC))
    _audit(
        conn,
        visit,
        "visit.scheduled",
        f"scheduled {local.isoformat()}",
        {"start": local, "end": end, "team": list(staff_ids), "compliance": verdict},
        now,
        actor,
        origin,
    )
    return end


def _capacity(
    conn: Connection, deps: VisitDeps, visit: VisitFacts, staff_ids: Sequence[str], start: datetime, end: datetime
) -> list[str]:
    """A member already out on another visit at that time, or a member's day already full."""
    v, tm, s = t.visit, t.visit_team, t.staff
    day_start = datetime.combine(start.date(), datetime.min.time(), start.tzinfo).astimezone(UTC)
    rows = conn.execute(
        select(s.c.staff_id, v.c.visit_id, v.c.scheduled_start, v.c.scheduled_end)
        .select_from(v.join(tm, tm.c.visit_key == v.c.visit_key).join(s, s.c.staff_key == tm.c.staff_key))
        .where(
            s.c.staff_id.in_(list(staff_ids)),
            v.c.visit_key != visit.visit_key,
            v.c.status.in_(("scheduled", "checked_in", "checked_out", "reported")),
            v.c.scheduled_start >= day_start,
            v.c.scheduled_start < day_start + timedelta(days=1),
        )
    ).all()
    problems = []
    per_staff: dict[str, int] = {}
    for r in rows:
        per_staff[r.staff_id] = per_staff.get(r.staff_id, 0) + 1
        if as_utc(r.scheduled_start) < end and start < as_utc(r.scheduled_end):
            problems.append(f"{POLICY_SOURCE}: {r.staff_id} is on visit {r.visit_id} at that time")
    problems += [
        f"{POLICY_SOURCE}: {sid} already has {n} visit(s) that day, the most a day is {deps.policy.max_visits_per_day}"
        for sid, n in sorted(per_staff.items())
        if n >= deps.policy.max_visits_per_day
    ]
    return problems


def check_in(
    conn: Connection,
    deps: VisitDeps,
    visit_id: str,
    at: datetime,
    latitude: float,
    longitude: float,
    *,
    identification_shown: bool,
    recording: bool,
    now: datetime,
    actor: str = ORIGIN_SYSTEM,
    origin: str = "cli",
) -> int:
    """The team arrives: time and place recorded, the compliance engine asked again at that moment (team still
    certified, daytime, lead time, identification shown, recording on). Returns the distance to the address in m."""
    visit = _visit(conn, visit_id)
    require_status(visit_id, "check_in", visit.status)
    local = _aware(at, "the check-in time").astimezone(visit.zone)
    assert visit.scheduled_start is not None
    problems = []
    if local.date() != visit.scheduled_start.astimezone(visit.zone).date():
        problems.append(
            f"{POLICY_SOURCE}: the visit is scheduled for {visit.scheduled_start.astimezone(visit.zone).date()}, "
            f"not {local.date()}"
        )
    if as_utc(local) > now:
        problems.append("a check-in cannot be in the future")
    team = _team(conn, visit_id, visit.team, local.date())
    refused, verdict = _decide(
        conn, deps, visit, local, team, identification_shown=identification_shown, recording=recording
    )
    if problems or refused:
        raise VisitRefused(visit_id, "check in", problems + refused)
    away = distance_m(latitude, longitude, visit.latitude, visit.longitude)
    _set(
        conn,
        visit,
        status="checked_in",
        checked_in_at=local.astimezone(UTC),
        check_in_latitude=latitude,
        check_in_longitude=longitude,
    )
    payload = {
        "at": local,
        "latitude": latitude,
        "longitude": longitude,
        "distance_to_address_m": away,
        "away_from_address": away > deps.policy.check_in_radius_m,
        "identification_shown": identification_shown,
        "recording": recording,
        "compliance": verdict,
    }
    _audit(conn, visit, "visit.checked_in", f"checked in {away} m from the address", payload, now, actor, origin)
    return away


def check_out(
    conn: Connection,
    visit_id: str,
    at: datetime,
    latitude: float,
    longitude: float,
    now: datetime,
    actor: str = ORIGIN_SYSTEM,
    origin: str = "cli",
) -> None:
    visit = _visit(conn, visit_id)
    require_status(visit_id, "check_out", visit.status)
    at = as_utc(_aware(at, "the check-out time"))
    assert visit.checked_in_at is not None
    if not visit.checked_in_at < at <= now:
        raise VisitRefused(
            visit_id,
            "check out",
            [
                f"check-out at {at.isoformat()} must be after check-in ({visit.checked_in_at.isoformat()}) "
                "and not in the future"
            ],
        )
    _set(
        conn, visit, status="checked_out", checked_out_at=at, check_out_latitude=latitude, check_out_longitude=longitude
    )
    _audit(
        conn,
        visit,
        "visit.checked_out",
        "checked out",
        {"at": at, "latitude": latitude, "longitude": longitude},
        now,
        actor,
        origin,
    )


@dataclass(frozen=True)
class OutcomeReport:
    met_debtor: bool
    promise_amount: int | None = None  # minor units of the loan's currency
    promise_date: date | None = None
    plan_requested: bool = False
    refused: bool = False
    third_party_present: bool = False
    third_party_note: str | None = None  # who was there; never the debt (CN.THIRDPARTY.NODISCLOSE)
    disclosed_to_third_party: bool = False
    notes: str | None = None


def report_outcome(
    conn: Connection,
    deps: VisitDeps,
    visit_id: str,
    report: OutcomeReport,
    now: datetime,
    actor: str = ORIGIN_SYSTEM,
    origin: str = "cli",
) -> dict[str, Any]:
    """Record what happened at the door; it becomes a contact event (and a promise to pay when one was made)."""
    visit = _visit(conn, visit_id)
    require_status(visit_id, "outcome", visit.status)
    loan = conn.execute(select(t.loan.c.loan_id, t.loan.c.currency).where(t.loan.c.loan_key == visit.loan_key)).one()
    balance = int(visit.eligibility.get("balance") or 0)
    problems = []
    if report.disclosed_to_third_party:
        problems.append(
            "CN.THIRDPARTY.NODISCLOSE: nothing about the debt may be disclosed to a third party; a disclosure is a "
            "compliance incident to escalate, not a visit outcome"
        )
    if report.third_party_note and not report.third_party_present:
        problems.append("a third-party note needs third_party_present")
    if report.third_party_note:
        leaked = debt_details_in(
            report.third_party_note, [loan.loan_id, str(balance), str(from_minor(balance, loan.currency))]
        )
        if leaked:
            problems.append(
                "CN.THIRDPARTY.NODISCLOSE: the third-party note must not carry debt details "
                f"(found: {', '.join(leaked)})"
            )
    promised = report.promise_amount is not None or report.promise_date is not None
    if promised and (report.promise_amount is None or report.promise_date is None or report.promise_amount <= 0):
        problems.append("a promise needs a positive amount (minor units) and a date")
    if not report.met_debtor and (promised or report.plan_requested or report.refused):
        problems.append("a promise, a plan request or a refusal needs the debtor met")
    visit_day = (visit.checked_in_at or now).astimezone(visit.zone).date()
    if report.promise_date is not None and report.promise_date < visit_day:
        problems.append(f"the promised date {report.promise_date} is before the visit ({visit_day})")
    if problems:
        raise VisitRefused(visit_id, "record the outcome", problems)
    detail = (
        "promise_to_pay"
        if promised
        else "plan_requested"
        if report.plan_requested
        else "refusal"
        if report.refused
        else "met_debtor"
        if report.met_debtor
        else "debtor_not_met"
    )
    outcome = {
        "met_debtor": report.met_debtor,
        "promise": None
        if not promised
        else {"amount": report.promise_amount, "currency": loan.currency, "date": str(report.promise_date)},
        "plan_requested": report.plan_requested,
        "refused": report.refused,
        "third_party_present": report.third_party_present,
        "third_party_note": report.third_party_note,
        "disclosed_to_third_party": False,
        "notes": report.notes,
        "detail": detail,
    }
    assert visit.checked_in_at is not None
    event_id = f"visit:{visit_id}:outcome"
    record_contacts(
        conn,
        [
            ContactEvent(
                event_id,
                visit.borrower_key,
                visit.checked_in_at,
                "visit",
                "conversation" if report.met_debtor else "no_answer",
                loan_key=visit.loan_key,
                action_key=visit.action_key,
                address=f"cp:{visit.contact_key}",
                agent=actor,
                details={
                    "visit_id": visit_id,
                    **{k: v for k, v in outcome.items() if k not in ("notes", "third_party_note")},
                },
            )
        ],
        now,
    )
    if promised:
        assert report.promise_amount is not None and report.promise_date is not None
        conn.execute(
            insert(t.promise_to_pay).values(
                promise_id=f"visit:{visit_id}",
                borrower_key=visit.borrower_key,
                loan_key=visit.loan_key,
                amount=report.promise_amount,
                currency=loan.currency,
                due_date=report.promise_date,
                channel="visit",
                taken_by=actor,
                taken_at=visit.checked_in_at,
                state="open",
                event_id=event_id,
            )
        )
    _set(conn, visit, status="reported", outcome=outcome, reported_at=now)
    _audit(conn, visit, "visit.reported", detail, outcome, now, actor, origin)
    return outcome


# --- evidence ---------------------------------------------------------------------------------------------------


def evidence_path(data_dir: Path, sha256: str) -> Path:
    return data_dir / "evidence" / sha256[:2] / sha256


def add_evidence(
    conn: Connection,
    deps: VisitDeps,
    visit_id: str,
    content: bytes,
    media_type: str,
    now: datetime,
    actor: str = ORIGIN_SYSTEM,
    origin: str = "cli",
) -> tuple[str, bool]:
    """Keep an evidence file by its SHA-256 (one copy per content); returns (hash, whether the file is new)."""
    visit = _visit(conn, visit_id)
    if visit.status not in ("checked_in", "checked_out", "reported"):
        raise VisitRefused(
            visit_id, "add evidence", [f"the visit is {visit.status}; evidence comes from a visit under way or done"]
        )
    if not content:
        raise VisitRefused(visit_id, "add evidence", ["the file is empty"])
    sha = hashlib.sha256(content).hexdigest()
    path = evidence_path(deps.data_dir, sha)
    new_file = not path.exists()
    if new_file:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write then rename: a crash never leaves a partial file under a hash it does not match.
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".incoming-")
        with os.fdopen(fd, "wb") as f:
            f.write(content)
        os.replace(tmp, path)
    known = conn.execute(
        select(func.count())
        .select_from(t.visit_evidence)
        .where(t.visit_evidence.c.visit_key == visit.visit_key, t.visit_evidence.c.sha256 == sha)
    ).scalar_one()
    if not known:
        conn.execute(
            insert(t.visit_evidence).values(
                visit_key=visit.visit_key, sha256=sha, size=len(content), media_type=media_type, added_at=now
            )
        )
        _audit(
            conn,
            visit,
            "visit.evidence_added",
            media_type,
            {"sha256": sha, "size": len(content), "media_type": media_type},
            now,
            actor,
            origin,
        )
    return sha, new_file


# --- reading ----------------------------------------------------------------------------------------------------


def show(conn: Connection, cipher: FieldCipher, visit_id: str) -> dict[str, Any]:
    """The visit as stored, with its team (names decrypted) and evidence."""
    row = conn.execute(select(t.visit).where(t.visit.c.visit_id == visit_id)).mappings().first()
    if row is None:
        raise NotFoundError(f"no visit {visit_id!r}")
    out = {k: v for k, v in row.items() if k not in ("visit_key",)}
    out["team"] = [
        {"name": n, "badge": b} for n, b in visit_team_for_reference(conn, cipher, f"{REFERENCE_PREFIX}{visit_id}")
    ]
    out["evidence"] = [
        dict(r)
        for r in conn.execute(
            select(t.visit_evidence.c.sha256, t.visit_evidence.c.size, t.visit_evidence.c.media_type).where(
                t.visit_evidence.c.visit_key == row["visit_key"]
            )
        ).mappings()
    ]
    return out


@dataclass(frozen=True)
class TeamRoute:
    team: tuple[str, ...]
    office: Office
    route: Route
    starts: dict[str, datetime] = field(default_factory=dict)  # visit id -> scheduled start


def routes(conn: Connection, deps: VisitDeps, day: date, zone: ZoneInfo) -> list[TeamRoute]:
    """For each team and its office, the day's scheduled visits as a short round trip from the office."""
    v, c = t.visit, t.contact_point
    start = datetime.combine(day, datetime.min.time(), zone).astimezone(UTC)
    rows = conn.execute(
        select(v.c.visit_key, v.c.visit_id, v.c.office_id, v.c.scheduled_start, c.c.latitude, c.c.longitude)
        .select_from(v.join(c, c.c.contact_key == v.c.contact_key))
        .where(
            v.c.status.in_(("scheduled", "checked_in", "checked_out", "reported")),
            v.c.scheduled_start >= start,
            v.c.scheduled_start < start + timedelta(days=1),
        )
        .order_by(v.c.visit_id)
    ).all()
    teams: dict[int, list[str]] = {}
    for member in conn.execute(
        select(t.visit_team.c.visit_key, t.staff.c.staff_id)
        .select_from(t.visit_team.join(t.staff, t.staff.c.staff_key == t.visit_team.c.staff_key))
        .where(t.visit_team.c.visit_key.in_([r.visit_key for r in rows]))
    ):
        teams.setdefault(int(member.visit_key), []).append(member.staff_id)
    offices = {o.office_id: o for o in deps.policy.offices}
    groups: dict[tuple[tuple[str, ...], str], list[Any]] = {}
    for r in rows:
        groups.setdefault((tuple(sorted(teams.get(int(r.visit_key), []))), r.office_id), []).append(r)
    return [
        TeamRoute(
            team,
            offices[office],
            plan_route(offices[office], [Stop(r.visit_id, r.latitude, r.longitude) for r in stops]),
            {r.visit_id: as_utc(r.scheduled_start) for r in stops},
        )
        for (team, office), stops in sorted(groups.items())
    ]


def planned_groups(conn: Connection, deps: VisitDeps) -> list[tuple[Office, Route]]:
    """Visits not yet scheduled, split per office into days of nearby addresses (at most the policy's per day)."""
    v, c = t.visit, t.contact_point
    rows = conn.execute(
        select(v.c.visit_id, v.c.office_id, c.c.latitude, c.c.longitude)
        .select_from(v.join(c, c.c.contact_key == v.c.contact_key))
        .where(v.c.status.in_(("planned", "notice_issued", "notice_delivered")))
        .order_by(v.c.visit_id)
    ).all()
    offices = {o.office_id: o for o in deps.policy.offices}
    out: list[tuple[Office, Route]] = []
    for office_id in sorted({r.office_id for r in rows}):
        stops = [Stop(r.visit_id, r.latitude, r.longitude) for r in rows if r.office_id == office_id]
        out += [
            (offices[office_id], route)
            for route in day_groups(offices[office_id], stops, deps.policy.max_visits_per_day)
        ]
    return out
