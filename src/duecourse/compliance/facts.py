"""The facts a compliance check needs about one proposed contact: the wire model and its frame form.

One `Proposal` is what `duecourse compliance check` reads as JSON (documented in
docs/compliance-input.md, JSON Schema from `proposal_json_schema()`), what the live API asks about,
and what the daily cycle builds for each ladder proposal. `to_frames` flattens many proposals into two
Polars frames (one row per proposal; one row per history event keyed by `proposal_id`) for the
vectorised path. A fact that is absent is *unknown* (None), never assumed false: a rule that needs an
unknown fact blocks with "missing facts".
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Annotated, Any, Literal

import polars as pl
from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

Country = Literal["CN", "US", "UK"]
ActorKind = Literal["lender", "agency", "debt_collector"]
Channel = Literal["call", "sms", "email", "letter", "app_push", "visit", "social_media"]
Counterpart = Literal["debtor", "spouse", "family", "emergency_contact", "employer", "guarantor", "attorney", "other"]
Purpose = Literal["collect", "locate", "notify", "confirm_opt_out", "reply_to_debtor"]
Place = Literal["home", "workplace", "public", "other"]
Outcome = Literal[
    "conversation", "connected", "no_answer", "voicemail", "busy", "invalid_number", "delivered", "failed"
]
Initiator = Literal["collector", "debtor", "counterpart"]
Flag = Literal["elderly", "disabled", "seriously_ill", "mental_capacity", "deceased", "bankrupt"]
CeaseForm = Literal["written", "oral"]
BreathingSpaceKind = Literal["standard", "mental_health_crisis"]

CHANNELS: tuple[str, ...] = Channel.__args__  # type: ignore[attr-defined]
TELEPHONE_CHANNELS = ("call",)  # Reg F 1006.14(b): a "telephone call" — texts are not calls


def _check_zone(name: str) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown IANA time zone {name!r}") from exc
    return name


TimeZoneName = Annotated[str, AfterValidator(_check_zone)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)


class Jurisdiction(_Model):
    country: Country | str = Field(description="ISO country code of the debtor's jurisdiction (CN, US, UK packs)")
    region: str | None = Field(default=None, description="State or region, e.g. MA for Massachusetts")


class Actor(_Model):
    kind: ActorKind
    name: str = Field(min_length=1, description="The lender, agency or collector making the contact")


class Message(_Model):
    text: str
    language: Literal["zh", "en"]


class Staff(_Model):
    name: str
    badge: str
    certified_until: date | None = Field(default=None, description="Collection certification expiry; None = none")


class Visit(_Model):
    staff: tuple[Staff, ...]
    identification_shown: bool | None = None
    enters_premises: bool | None = None
    consent_to_enter: bool | None = None
    recording: bool | None = None
    notice_delivered_at: AwareDatetime | None = Field(default=None, description="When the written notice arrived")


class Window(_Model):
    """A daily window in the debtor's local time; `end` may be earlier than `start` (crosses midnight)."""

    start: time
    end: time


class Cease(_Model):
    at: AwareDatetime
    form: CeaseForm


class Dispute(_Model):
    open: bool
    written: bool | None = None
    at: AwareDatetime | None = None


class BreathingSpace(_Model):
    start: date
    end: date | None = None
    kind: BreathingSpaceKind = "standard"


class Debtor(_Model):
    id: str
    time_zones: tuple[TimeZoneName, ...] = Field(description="Every candidate time zone (address, phone, app)")
    birth_date: date | None = None
    age: int | None = Field(default=None, ge=0, le=150, description="Used when birth_date is unknown")
    flags: tuple[Flag, ...] = ()
    vulnerability_approved: bool | None = Field(default=None, description="A supervisor approved contact")
    attorney_represented: bool | None = None
    attorney_consents: bool | None = Field(default=None, description="The attorney consents or fails to respond")
    cease: Cease | None = None
    dispute: Dispute | None = None
    opted_out_channels: tuple[Channel, ...] = ()
    opted_out_addresses: tuple[str, ...] = ()
    agreed_windows: tuple[Window, ...] = ()
    inconvenient_windows: tuple[Window, ...] = ()
    inconvenient_places: tuple[Place, ...] = ()
    employer_prohibits_contact: bool | None = None
    reachable: bool | None = None
    unreachable_since: AwareDatetime | None = None
    breathing_space: BreathingSpace | None = None
    consent_to_call_at: AwareDatetime | None = Field(default=None, description="Direct prior consent (Reg F)")


class Debt(_Model):
    id: str
    days_past_due: int = Field(ge=0)
    balance: int = Field(ge=0, description="Amount owed in minor units (fen, cents, pence)")
    currency: str = Field(min_length=3, max_length=3)
    due_date: date | None = None
    time_barred: bool | None = None
    in_validation_period: bool | None = None
    fees_claimed: int = Field(default=0, ge=0, description="Fees asked for in this contact, minor units")
    fees_allowed: int | None = Field(default=None, ge=0, description="Fees the contract allows, minor units")
    payment_account: str | None = Field(default=None, description="The account the debtor is told to pay to")
    official_accounts: tuple[str, ...] = ()


class HistoryEvent(_Model):
    at: AwareDatetime
    channel: Channel
    counterpart: Counterpart
    address: str | None = Field(default=None, description="Number or address used")
    outcome: Outcome
    initiated_by: Initiator = "collector"
    debts: tuple[str, ...] = ()
    actor: Actor


class Proposal(_Model):
    id: str
    jurisdiction: Jurisdiction
    moment: AwareDatetime = Field(description="The proposed moment, with its UTC offset")
    actor: Actor
    channel: Channel
    counterpart: Counterpart
    purpose: Purpose
    address: str | None = Field(default=None, description="Number or address to be used")
    place: Place | None = Field(default=None, description="Where the contact reaches the person, if known")
    message: Message | None = None
    visit: Visit | None = None
    debtor: Debtor
    debt: Debt
    history: tuple[HistoryEvent, ...] = ()

    @property
    def moment_utc(self) -> datetime:
        return self.moment.astimezone(UTC)


def proposal_json_schema() -> dict[str, object]:
    return Proposal.model_json_schema()


# --- frame form -------------------------------------------------------------------------------------

WINDOW = pl.Struct({"start_minute": pl.Int16(), "end_minute": pl.Int16()})
UTC_TIME = pl.Datetime("us", "UTC")

PROPOSALS = pl.Schema(
    {
        "proposal_id": pl.String(),
        "country": pl.String(),
        "region": pl.String(),
        "moment_utc": UTC_TIME,
        "moment_local_date": pl.Date(),  # the moment's date at its own UTC offset: picks the rule version in force
        "moment_offset_minutes": pl.Int16(),  # the moment's own UTC offset
        "actor_kind": pl.String(),
        "actor_name": pl.String(),
        "channel": pl.String(),
        "counterpart": pl.String(),
        "purpose": pl.String(),
        "address": pl.String(),
        "place": pl.String(),
        "message_text": pl.String(),
        "message_language": pl.String(),
        "visit": pl.Boolean(),  # a visit block was given
        "visit_staff_count": pl.Int16(),
        "visit_certified_count": pl.Int16(),  # staff certified on the visit's local date
        "visit_identification_shown": pl.Boolean(),
        "visit_enters_premises": pl.Boolean(),
        "visit_consent_to_enter": pl.Boolean(),
        "visit_recording": pl.Boolean(),
        "visit_notice_delivered_at": UTC_TIME,
        "debtor_id": pl.String(),
        "debtor_time_zones": pl.List(pl.String()),
        "debtor_birth_date": pl.Date(),
        "debtor_age": pl.Int16(),
        "debtor_flags": pl.List(pl.String()),
        "debtor_vulnerability_approved": pl.Boolean(),
        "debtor_attorney_represented": pl.Boolean(),
        "debtor_attorney_consents": pl.Boolean(),
        "debtor_cease_at": UTC_TIME,
        "debtor_cease_form": pl.String(),
        "debtor_dispute_open": pl.Boolean(),
        "debtor_dispute_written": pl.Boolean(),
        "debtor_dispute_at": UTC_TIME,
        "debtor_opted_out_channels": pl.List(pl.String()),
        "debtor_opted_out_addresses": pl.List(pl.String()),
        "debtor_agreed_windows": pl.List(WINDOW),
        "debtor_inconvenient_windows": pl.List(WINDOW),
        "debtor_inconvenient_places": pl.List(pl.String()),
        "debtor_employer_prohibits_contact": pl.Boolean(),
        "debtor_reachable": pl.Boolean(),
        "debtor_unreachable_since": UTC_TIME,
        "debtor_breathing_space_start": pl.Date(),
        "debtor_breathing_space_end": pl.Date(),
        "debtor_breathing_space_kind": pl.String(),
        "debtor_consent_to_call_at": UTC_TIME,
        "debt_id": pl.String(),
        "debt_days_past_due": pl.Int32(),
        "debt_balance": pl.Int64(),
        "debt_currency": pl.String(),
        "debt_due_date": pl.Date(),
        "debt_time_barred": pl.Boolean(),
        "debt_in_validation_period": pl.Boolean(),
        "debt_fees_claimed": pl.Int64(),
        "debt_fees_allowed": pl.Int64(),
        "debt_payment_account": pl.String(),
        "debt_official_accounts": pl.List(pl.String()),
    }
)

HISTORY = pl.Schema(
    {
        "proposal_id": pl.String(),
        "at": UTC_TIME,
        "channel": pl.String(),
        "counterpart": pl.String(),
        "address": pl.String(),
        "outcome": pl.String(),
        "initiated_by": pl.String(),
        "debts": pl.List(pl.String()),
        "actor_kind": pl.String(),
        "actor_name": pl.String(),
    }
)


def _utc(value: datetime | None) -> datetime | None:
    return None if value is None else value.astimezone(UTC)


def _offset_minutes(moment: datetime) -> int:
    offset = moment.utcoffset()
    assert offset is not None  # AwareDatetime
    return int(offset.total_seconds() // 60)


def _minute(value: time) -> int:
    return value.hour * 60 + value.minute


def _windows(windows: Sequence[Window]) -> list[dict[str, int]]:
    return [{"start_minute": _minute(w.start), "end_minute": _minute(w.end)} for w in windows]


def proposal_row(p: Proposal) -> dict[str, object]:
    """One proposal flattened to a `PROPOSALS` row (used to build frames from wire input)."""
    d, v, debt = p.debtor, p.visit, p.debt
    day = p.moment.date()  # the visit's local day
    return {
        "proposal_id": p.id,
        "country": p.jurisdiction.country,
        "region": p.jurisdiction.region,
        "moment_utc": p.moment_utc,
        "moment_local_date": p.moment.date(),
        "moment_offset_minutes": _offset_minutes(p.moment),
        "actor_kind": p.actor.kind,
        "actor_name": p.actor.name,
        "channel": p.channel,
        "counterpart": p.counterpart,
        "purpose": p.purpose,
        "address": p.address,
        "place": p.place,
        "message_text": None if p.message is None else p.message.text,
        "message_language": None if p.message is None else p.message.language,
        "visit": v is not None,
        "visit_staff_count": None if v is None else len(v.staff),
        "visit_certified_count": None
        if v is None
        else sum(1 for s in v.staff if s.certified_until is not None and s.certified_until >= day),
        "visit_identification_shown": None if v is None else v.identification_shown,
        "visit_enters_premises": None if v is None else v.enters_premises,
        "visit_consent_to_enter": None if v is None else v.consent_to_enter,
        "visit_recording": None if v is None else v.recording,
        "visit_notice_delivered_at": None if v is None else _utc(v.notice_delivered_at),
        "debtor_id": d.id,
        "debtor_time_zones": list(d.time_zones),
        "debtor_birth_date": d.birth_date,
        "debtor_age": d.age,
        "debtor_flags": list(d.flags),
        "debtor_vulnerability_approved": d.vulnerability_approved,
        "debtor_attorney_represented": d.attorney_represented,
        "debtor_attorney_consents": d.attorney_consents,
        "debtor_cease_at": None if d.cease is None else _utc(d.cease.at),
        "debtor_cease_form": None if d.cease is None else d.cease.form,
        "debtor_dispute_open": None if d.dispute is None else d.dispute.open,
        "debtor_dispute_written": None if d.dispute is None else d.dispute.written,
        "debtor_dispute_at": None if d.dispute is None else _utc(d.dispute.at),
        "debtor_opted_out_channels": list(d.opted_out_channels),
        "debtor_opted_out_addresses": list(d.opted_out_addresses),
        "debtor_agreed_windows": _windows(d.agreed_windows),
        "debtor_inconvenient_windows": _windows(d.inconvenient_windows),
        "debtor_inconvenient_places": list(d.inconvenient_places),
        "debtor_employer_prohibits_contact": d.employer_prohibits_contact,
        "debtor_reachable": d.reachable,
        "debtor_unreachable_since": _utc(d.unreachable_since),
        "debtor_breathing_space_start": None if d.breathing_space is None else d.breathing_space.start,
        "debtor_breathing_space_end": None if d.breathing_space is None else d.breathing_space.end,
        "debtor_breathing_space_kind": None if d.breathing_space is None else d.breathing_space.kind,
        "debtor_consent_to_call_at": _utc(d.consent_to_call_at),
        "debt_id": debt.id,
        "debt_days_past_due": debt.days_past_due,
        "debt_balance": debt.balance,
        "debt_currency": debt.currency,
        "debt_due_date": debt.due_date,
        "debt_time_barred": debt.time_barred,
        "debt_in_validation_period": debt.in_validation_period,
        "debt_fees_claimed": debt.fees_claimed,
        "debt_fees_allowed": debt.fees_allowed,
        "debt_payment_account": debt.payment_account,
        "debt_official_accounts": list(debt.official_accounts),
    }


def history_rows(p: Proposal) -> list[dict[str, object]]:
    return [
        {
            "proposal_id": p.id,
            "at": e.at.astimezone(UTC),
            "channel": e.channel,
            "counterpart": e.counterpart,
            "address": e.address,
            "outcome": e.outcome,
            "initiated_by": e.initiated_by,
            "debts": list(e.debts),
            "actor_kind": e.actor.kind,
            "actor_name": e.actor.name,
        }
        for e in p.history
    ]


def to_frames(proposals: Sequence[Proposal]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Many proposals as (proposals frame, history frame) in the `PROPOSALS` / `HISTORY` schemas."""
    rows = [proposal_row(p) for p in proposals]
    events = [row for p in proposals for row in history_rows(p)]
    return pl.DataFrame(rows, schema=PROPOSALS), pl.DataFrame(events, schema=HISTORY)


def from_frames(proposals: pl.DataFrame, history: pl.DataFrame) -> list[Proposal]:
    """The proposals of a `PROPOSALS` frame with their `HISTORY` events: the inverse of `to_frames`.

    Rows with visit facts cannot be turned back (the frame keeps the team's counts, not its members): a
    ValueError says so, as pydantic's ValidationError (a ValueError) does for a row the wire model refuses.
    """
    events: dict[str, list[dict[str, object]]] = {}
    for e in history.iter_rows(named=True):
        events.setdefault(e["proposal_id"], []).append(
            {
                "at": e["at"],
                "channel": e["channel"],
                "counterpart": e["counterpart"],
                "address": e["address"],
                "outcome": e["outcome"],
                "initiated_by": e["initiated_by"],
                "debts": e["debts"] or [],
                "actor": {"kind": e["actor_kind"], "name": e["actor_name"]},
            }
        )
    return [_proposal(r, events.get(r["proposal_id"], [])) for r in proposals.iter_rows(named=True)]


def _proposal(r: dict[str, Any], history: list[dict[str, object]]) -> Proposal:
    if r["visit"]:
        raise ValueError(f"proposal {r['proposal_id']}: a visit's staff cannot be rebuilt from its frame row")

    def windows(name: str) -> list[dict[str, time]]:
        return [{"start": _clock(w["start_minute"]), "end": _clock(w["end_minute"])} for w in r[name] or []]

    moment: datetime = r["moment_utc"]
    offset = timedelta(minutes=r["moment_offset_minutes"])
    message = None if r["message_text"] is None else {"text": r["message_text"], "language": r["message_language"]}
    return Proposal.model_validate(
        {
            "id": r["proposal_id"],
            "jurisdiction": {"country": r["country"], "region": r["region"]},
            "moment": moment.astimezone(timezone(offset)),
            "actor": {"kind": r["actor_kind"], "name": r["actor_name"]},
            "channel": r["channel"],
            "counterpart": r["counterpart"],
            "purpose": r["purpose"],
            "address": r["address"],
            "place": r["place"],
            "message": message,
            "debtor": {
                "id": r["debtor_id"],
                "time_zones": r["debtor_time_zones"] or [],
                "birth_date": r["debtor_birth_date"],
                "age": r["debtor_age"],
                "flags": r["debtor_flags"] or [],
                "vulnerability_approved": r["debtor_vulnerability_approved"],
                "attorney_represented": r["debtor_attorney_represented"],
                "attorney_consents": r["debtor_attorney_consents"],
                "cease": None
                if r["debtor_cease_at"] is None
                else {"at": r["debtor_cease_at"], "form": r["debtor_cease_form"]},
                "dispute": None
                if r["debtor_dispute_open"] is None
                else {
                    "open": r["debtor_dispute_open"],
                    "written": r["debtor_dispute_written"],
                    "at": r["debtor_dispute_at"],
                },
                "opted_out_channels": r["debtor_opted_out_channels"] or [],
                "opted_out_addresses": r["debtor_opted_out_addresses"] or [],
                "agreed_windows": windows("debtor_agreed_windows"),
                "inconvenient_windows": windows("debtor_inconvenient_windows"),
                "inconvenient_places": r["debtor_inconvenient_places"] or [],
                "employer_prohibits_contact": r["debtor_employer_prohibits_contact"],
                "reachable": r["debtor_reachable"],
                "unreachable_since": r["debtor_unreachable_since"],
                "breathing_space": None
                if r["debtor_breathing_space_start"] is None
                else {
                    "start": r["debtor_breathing_space_start"],
                    "end": r["debtor_breathing_space_end"],
                    "kind": r["debtor_breathing_space_kind"],
                },
                "consent_to_call_at": r["debtor_consent_to_call_at"],
            },
            "debt": {
                "id": r["debt_id"],
                "days_past_due": r["debt_days_past_due"],
                "balance": r["debt_balance"],
                "currency": r["debt_currency"],
                "due_date": r["debt_due_date"],
                "time_barred": r["debt_time_barred"],
                "in_validation_period": r["debt_in_validation_period"],
                "fees_claimed": r["debt_fees_claimed"],
                "fees_allowed": r["debt_fees_allowed"],
                "payment_account": r["debt_payment_account"],
                "official_accounts": r["debt_official_accounts"] or [],
            },
            "history": history,
        }
    )


def _clock(minute: int) -> time:
    return time(minute // 60, minute % 60)


def age_on(p: Proposal, day: date) -> int | None:
    """The debtor's age in whole years on `day` (birth date preferred, else the stated age)."""
    b = p.debtor.birth_date
    if b is None:
        return p.debtor.age
    return day.year - b.year - ((day.month, day.day) < (b.month, b.day))
