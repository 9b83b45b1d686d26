"""The demo's collections desk: after each day's cycle, the outbox is dispatched, agents work the call queue,
debtors who talk are offered plans, and door visits move from notice to outcome — through the same services
a lender's staff use, with simulated people.

The people are simulated, the rules are not: every call is checked live, every plan within an agent's
limits or approved by a supervisor, every visit scheduled only after its notice lead time with a certified
team of two. Messages leave through a sandbox channel that files them under the demo directory (a lender
configures its SMTP server, SMS gateway and push webhook instead; see the README). A debtor who will pay in
the next days (the generated book knows its future payments) promises that payment on the phone and keeps
it; others sometimes promise and do not pay, so the cycle marks both.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from time import perf_counter
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl
from sqlalchemy import select

from duecourse.adapters.db import tables as t
from duecourse.audit.chain import as_utc
from duecourse.bootstrap import Container
from duecourse.demo.book import GeneratedBook
from duecourse.domain.dispatch import Outgoing, Result
from duecourse.domain.errors import DueCourseError
from duecourse.domain.money import from_minor
from duecourse.services import plans as plan_service
from duecourse.services import visits as sv
from duecourse.services.calls import CallOutcome, next_task, record_outcome
from duecourse.services.dispatch import Policy as DispatchPolicy
from duecourse.services.verification import VerificationResult, check

LENDER_TIME = ZoneInfo("Asia/Shanghai")
AGENTS = ("agent-01", "agent-02")
CALLS_PER_AGENT = 8
PLANS_PER_DAY = 1
# The whole day's outbox in one batch: each batch re-reads its loans' book for the send-time check and prints its
# letters as one document, so a day in several batches of 500 read and typeset several times over.
DISPATCH = DispatchPolicy(batch=20_000)
VISIT_HOURS = (10, 11, 14, 15, 16, 17)  # slot starts a field team offers, local time (daytime: policy/visits.yaml)


class SandboxChannel:
    """A channel adapter that accepts every message and files it (JSON Lines) under the demo directory."""

    def __init__(self, folder: Path, channel: str) -> None:
        self.provider = f"sandbox-{channel}"
        self._path = folder / f"{channel}.jsonl"
        self._seen: set[str] = set()
        folder.mkdir(parents=True, exist_ok=True)

    def send(self, messages: Sequence[Outgoing]) -> list[Result]:
        with self._path.open("a", encoding="utf-8") as fh:
            for m in messages:
                fh.write(json.dumps({"id": m.message_id, "to": m.to[-4:], "text": m.text}, ensure_ascii=False) + "\n")
        self._seen.update(m.message_id for m in messages)
        return [Result(m.message_id, "sent", f"{self.provider}:{m.message_id}") for m in messages]

    def look_up(self, message_ids: Sequence[str]) -> set[str] | None:
        return {i for i in message_ids if i in self._seen}

    def close(self) -> None:
        pass


def field_teams(staff: Path, first: date, last: date) -> tuple[dict[str, tuple[str, ...]], str | None]:
    """From a staff registry file: for each region, its first two active collectors certified for field visits on
    every day from `first` to `last` (a team of two: CN.VISIT.STAFF); and one collector whose certification
    lapsed before `first` (to show what the rules say to a team that names them)."""
    rows = pl.read_csv(staff, try_parse_dates=True).filter(pl.col("certification") == "field_visit")
    covered = rows.filter(pl.col("active"), pl.col("issued_on") <= first, pl.col("expires_on") >= last)
    teams = (
        covered.select("region", "staff_id")
        .unique()
        .sort("region", "staff_id")
        .group_by("region", maintain_order=True)
        .agg(pl.col("staff_id").head(2))
        .filter(pl.col("staff_id").list.len() == 2)
    )
    expired = rows.group_by("staff_id").agg(pl.col("expires_on").max()).filter(pl.col("expires_on") < first)
    lapsed = expired.sort("staff_id").get_column("staff_id").head(1).to_list()
    return {str(r): tuple(ids) for r, ids in teams.iter_rows()}, (lapsed[0] if lapsed else None)


@dataclass
class DeskDay:
    sent: int = 0
    handed_off: int = 0
    cancelled: int = 0
    calls: dict[str, int] = field(default_factory=dict)
    plans: dict[str, int] = field(default_factory=dict)
    visits: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)  # dispatch, calls, visits: wall time of each part


@dataclass
class Desk:
    container: Container
    book: GeneratedBook
    folder: Path
    seed: int
    silent: frozenset[str] = frozenset()  # borrower ids of the debtors who do not answer (history.silent)
    teams: dict[str, tuple[str, ...]] = field(default_factory=dict)  # region -> its certified field team
    lapsed: str | None = None  # a field collector whose certification has lapsed
    notices: dict[str, dict[str, str]] = field(default_factory=dict)  # visit id -> its notice PDF and code
    refusals: list[str] = field(default_factory=list)  # what the rules said to a visit arranged against them
    visited: list[str] = field(default_factory=list)  # visit ids, in the order they were made

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        c = self.container
        self._calls = c.call_desk
        self._channels = {ch: SandboxChannel(self.folder / "outbox", ch) for ch in ("sms", "email", "app")}
        self._loan_ids = dict(self.book.loans.select("loan_id", "borrower_id").iter_rows())  # loan id -> borrower id

    def start(self, now: datetime, staff: Path) -> None:
        """The field staff registry, imported as a lender would (`duecourse visits staff import`)."""
        with self.container.engine.begin() as conn:
            report = sv.import_staff(conn, self.container.cipher, staff, now, "demo", "demo")
        if report.errors:
            raise DueCourseError(f"demo staff file: {report.errors[0]}")

    def work(self, day: date) -> DeskDay:
        out = DeskDay()
        began = perf_counter()
        morning = datetime.combine(day, time(10, 30), LENDER_TIME).astimezone(UTC)
        summary = self.container.dispatcher(DISPATCH, channels=self._channels).run(morning)
        out.sent, out.handed_off = summary.total("sent"), summary.total("handed_off")
        out.cancelled = summary.total("cancelled")
        out.seconds["dispatch"] = perf_counter() - began
        self._work_calls(day, out)
        out.seconds["calls"] = perf_counter() - began - out.seconds["dispatch"]
        self._move_visits(day, out)
        out.seconds["visits"] = perf_counter() - began - out.seconds["dispatch"] - out.seconds["calls"]
        return out

    # --- calls, promises and plans ---------------------------------------------------------------------

    def _work_calls(self, day: date, out: DeskDay) -> None:
        talked: list[str] = []
        for n in range(CALLS_PER_AGENT):
            for agent in AGENTS:
                at = datetime.combine(day, time(10, 45), LENDER_TIME) + timedelta(minutes=12 * n)
                claim = next_task(self._calls, agent, at.astimezone(UTC), origin="demo")
                if claim.script is None:
                    continue
                outcome = self._what_happens(claim.script.loan_id, claim.script.amount, day)
                record_outcome(self._calls, claim.script.task_key, agent, outcome, at.astimezone(UTC), origin="demo")
                out.calls[outcome.result] = out.calls.get(outcome.result, 0) + 1
                if outcome.result in ("conversation", "promise_to_pay"):
                    talked.append(claim.script.loan_id)
        for loan_id in talked[:PLANS_PER_DAY]:
            state = self._offer_a_plan(loan_id, day)
            if state:
                out.plans[state] = out.plans.get(state, 0) + 1

    def _what_happens(self, loan_id: str, amount: int, day: date) -> CallOutcome:
        """A debtor who will pay soon promises that payment; the silent ones (about one in six) never pick up (the
        cases a door visit is for, once remote contact has failed); the others answer, or not, by chance."""
        coming = [
            (d, int(p.filter(pl.col("loan_id") == loan_id).get_column("amount").sum()))
            for d, p in sorted(self.book.daily_payments.items())
            if day < d <= day + timedelta(days=10)
        ]
        paid = [(d, a) for d, a in coming if a > 0]
        if paid:
            when, _ = paid[0]
            total = sum(a for _, a in paid)
            return CallOutcome("promise_to_pay", from_minor(min(total, max(amount, 1)), "CNY"), when)
        roll = self._rng.random()
        if self._loan_ids[loan_id] in self.silent:
            return CallOutcome("no_answer" if roll < 0.7 else "voicemail")
        if roll < 0.20 and amount > 0:  # a promise that will not be kept
            part = Decimal(max(amount // 3, 100)) / 100
            return CallOutcome("promise_to_pay", part, day + timedelta(days=3))
        if roll < 0.65:
            return CallOutcome("no_answer")
        if roll < 0.75:
            return CallOutcome("voicemail")
        if roll < 0.92:
            return CallOutcome("conversation")
        return CallOutcome("refusal")

    def _offer_a_plan(self, loan_id: str, day: date) -> str | None:
        """Record what the debtor says they earn and spend, offer the best affordable plan, and, when it needs
        one, get a supervisor's decision; the debtor accepts it the same day (a plan is priced on the balance of
        the day it takes effect)."""
        c, now = self.container, datetime.combine(day, time(15), LENDER_TIME).astimezone(UTC)
        policy = c.plan_policy
        income = self._rng.randrange(9_000, 22_000)
        given = plan_service.FinancesInput(
            monthly_income=(Decimal(income), "stated"),
            essential_expenses=(Decimal(self._rng.randrange(3_000, 6_000)), "stated"),
            other_debt_payments=(Decimal(self._rng.choice((0, 500, 1_500))), "stated"),
            savings=(Decimal(self._rng.randrange(0, 20_000)), "stated"),
            household_size=self._rng.choice((1, 2, 3, 4)),
            dependants=0,
            region="CN-31",
        )
        try:
            plan_service.record_finances(
                c.engine, c.cipher, policy, self._loan_ids[loan_id], given, "agent-01", now, "demo"
            )
            options = plan_service.loan_options(c.engine, c.cipher, policy, loan_id, day)["options"]
            best = next((o for o in options if o["affordable"] and o["kind"] != "settlement"), None)
            if best is None:
                return "none affordable"
            offer = plan_service.offer(
                c.engine, c.cipher, policy, loan_id, best["kind"], best["months"], "agent-01", "agent", day, now, "demo"
            )
            if offer["state"] == "pending_approval":
                plan_service.approve(c.engine, policy, offer["plan_id"], "supervisor-01", "supervisor",
                                     "affordable on the stated finances; the debtor engaged", now, "demo")  # fmt: skip
            plan_service.accept(c.engine, policy, offer["plan_id"], day, "debtor", now, "demo")
        except DueCourseError:
            return "not offered"  # e.g. nothing overdue any more, or a plan already active on the loan
        return "accepted"

    # --- door visits --------------------------------------------------------------------------------------

    def _move_visits(self, day: date, out: DeskDay) -> None:
        """Each visit one step a day, as a field office would: the notice the day it is planned, its delivery the
        next day, the slot once delivered, the visit on its day."""
        c, deps = self.container, self.container.visit_deps
        v = t.visit
        with c.engine.connect() as conn:
            visits = conn.execute(
                select(v.c.visit_id, v.c.status, v.c.window_start, v.c.window_end, v.c.office_id).order_by(v.c.visit_id)
            ).all()
        offices = {o.office_id: o.region for o in deps.policy.offices}
        now = datetime.combine(day, time(16), LENDER_TIME).astimezone(UTC)  # the field office's afternoon round
        for visit_id, status, window_start, window_end, office_id in visits:
            team = self.teams.get(offices.get(office_id, ""))
            if status in ("planned", "notice_delivered") and team is None:
                step = f"waiting: no certified field team in {offices.get(office_id, office_id)}"
            elif status == "notice_delivered":
                if not self.refusals:
                    self._try_against_the_rules(visit_id, day, now, team or ())
                step = self._schedule(visit_id, team or (), max(day, window_start), window_end, now)
            else:
                try:
                    with c.engine.begin() as conn:
                        if status == "planned":
                            pdf, code = sv.issue_notice(conn, deps, visit_id, team or (), now,
                                                        c.letters.write_pre_visit_notice, "demo", "demo")  # fmt: skip
                            self.notices[visit_id] = {"pdf": str(pdf), "code": code}
                            step = "notice issued"
                        elif status == "notice_issued":
                            sv.record_delivery(conn, visit_id, now, "registered_post", now, "demo", "demo")
                            step = "notice delivered"
                        elif status == "scheduled":
                            step = self._visit_today(conn, visit_id, day)
                        else:
                            continue
                except DueCourseError as exc:
                    step = f"waiting: {str(exc)[:60]}"
            out.visits[step] = out.visits.get(step, 0) + 1

    def _schedule(self, visit_id: str, team: Sequence[str], first: date, last: date, now: datetime) -> str:
        """The first free hour of the team from `first` on; a day the rules refuse (a weekend, a holiday, the team's
        day full) moves it to the next one, at most a working week ahead in one go."""
        c = self.container
        a, tm, s = t.visit, t.visit_team, t.staff
        with c.engine.connect() as conn:
            taken = {
                as_utc(r).astimezone(LENDER_TIME).replace(tzinfo=None)
                for r in conn.execute(
                    select(a.c.scheduled_start)
                    .select_from(a.join(tm, tm.c.visit_key == a.c.visit_key).join(s, s.c.staff_key == tm.c.staff_key))
                    .where(s.c.staff_id.in_(list(team)), a.c.scheduled_start.is_not(None))
                ).scalars()
            }
        why = "no free slot in the notice window"
        for offset in range(min(7, (last - first).days + 1)):
            day = first + timedelta(days=offset)
            free = [h for h in VISIT_HOURS if datetime.combine(day, time(h)) not in taken]
            if not free:
                continue
            start = datetime.combine(day, time(free[0]), LENDER_TIME)
            try:
                with c.engine.begin() as conn:
                    sv.schedule(conn, c.visit_deps, visit_id, team, start, now, "demo", "demo")
                return "scheduled"
            except DueCourseError as exc:
                why = str(exc)
        return f"waiting: {why[:60]}"

    def _try_against_the_rules(self, visit_id: str, day: date, now: datetime, team: Sequence[str]) -> None:
        """What a team leader hears trying to go the day after the notice arrived, alone, or with a colleague whose
        certification has lapsed (each attempt in its own transaction, rolled back by the refusal)."""
        c = self.container
        tomorrow = datetime.combine(day + timedelta(days=1), time(10), LENDER_TIME)
        with c.engine.connect() as conn:
            window_start = conn.execute(
                select(t.visit.c.window_start).where(t.visit.c.visit_id == visit_id)
            ).scalar_one()
        in_window = datetime.combine(window_start, time(10), LENDER_TIME)
        lapsed = [(team[0], self.lapsed)] if self.lapsed else []
        for staff, start, what in [
            (tuple(team), tomorrow, "before the notice lead time"),
            (tuple(team[:1]), in_window, "alone"),
            *[(tuple(pair), in_window, f"with {pair[1]}, whose certification lapsed") for pair in lapsed],
        ]:
            try:
                with c.engine.begin() as conn:
                    sv.schedule(conn, c.visit_deps, visit_id, staff, start, now, "demo", "demo")
            except DueCourseError as exc:
                self.refusals.append(f"{what} ({', '.join(staff)}, {start:%Y-%m-%d %H:%M}): {exc}")
                continue
            raise DueCourseError(f"visit {visit_id} was scheduled against the rules")  # never: the rules forbid it

    def verify(self, code: str, now: datetime) -> VerificationResult:
        """Check a notice's code as the debtor would on /verify."""
        c = self.container
        with c.engine.begin() as conn:
            return check(
                conn, c.signer, code, "demo", now, cipher=c.cipher,
                visit_team=lambda cn, ref: sv.visit_team_for_reference(cn, c.cipher, ref),
            )  # fmt: skip

    def _visit_today(self, conn: Any, visit_id: str, day: date) -> str:
        """On its day the team checks in at the debtor's door (its coordinates, a few metres off), records, checks
        out and reports: the debtor, met at last, asks for a repayment plan."""
        deps = self.container.visit_deps
        v, cp = t.visit, t.contact_point
        row = conn.execute(
            select(v.c.scheduled_start, cp.c.latitude, cp.c.longitude)
            .join(cp, cp.c.contact_key == v.c.contact_key)
            .where(v.c.visit_id == visit_id)
        ).one()
        start = as_utc(row.scheduled_start)
        if start.astimezone(LENDER_TIME).date() != day:
            return "waiting for its day"
        lat, lon = row.latitude + 0.0001, row.longitude  # about 11 m north: a GPS fix on the landing
        at = start + timedelta(minutes=5)
        sv.check_in(conn, deps, visit_id, at, lat, lon, identification_shown=True, recording=True, now=at,
                    actor="demo", origin="demo")  # fmt: skip
        sv.add_evidence(conn, deps, visit_id, f"recording of {visit_id}".encode(), "text/plain", at, "demo", "demo")
        sv.check_out(conn, visit_id, at + timedelta(minutes=40), lat, lon, at + timedelta(minutes=40), "demo", "demo")
        report = sv.OutcomeReport(met_debtor=True, plan_requested=True, notes="agreed to call the hotline for a plan")
        sv.report_outcome(conn, deps, visit_id, report, at + timedelta(minutes=45), "demo", "demo")
        self.visited.append(visit_id)
        return "visited"
