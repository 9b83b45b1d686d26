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
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl
from sqlalchemy import select

from duecourse.adapters.db import tables as t
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
TEAM = ("S001", "S002")  # certified field staff of examples/staff.csv


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


@dataclass
class DeskDay:
    sent: int = 0
    handed_off: int = 0
    cancelled: int = 0
    calls: dict[str, int] = field(default_factory=dict)
    plans: dict[str, int] = field(default_factory=dict)
    visits: dict[str, int] = field(default_factory=dict)


@dataclass
class Desk:
    container: Container
    book: GeneratedBook
    folder: Path
    seed: int
    notices: list[dict[str, Any]] = field(default_factory=list)  # visit id, notice PDF, its code
    refusals: list[str] = field(default_factory=list)  # what the rules said to a visit arranged too early or alone

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        c = self.container
        self._calls = c.call_desk
        self._channels = {ch: SandboxChannel(self.folder / "outbox", ch) for ch in ("sms", "email", "app")}
        self._loan_ids = dict(self.book.loans.select("loan_id", "borrower_id").iter_rows())  # loan id -> borrower id

    def start(self, now: datetime, staff: Path) -> None:
        with self.container.engine.begin() as conn:
            report = sv.import_staff(conn, self.container.cipher, staff, now, "demo", "demo")
        if report.errors:
            raise DueCourseError(f"demo staff file: {report.errors[0]}")

    def work(self, day: date) -> DeskDay:
        out = DeskDay()
        morning = datetime.combine(day, time(10, 30), LENDER_TIME).astimezone(UTC)
        summary = self.container.dispatcher(DispatchPolicy(), channels=self._channels).run(morning)
        out.sent, out.handed_off = summary.total("sent"), summary.total("handed_off")
        out.cancelled = summary.total("cancelled")
        self._work_calls(day, out)
        self._move_visits(day, out)
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
        """A debtor who will pay soon promises that payment; about one in six never picks up (the cases a door
        visit is for, once remote contact has failed); the others answer, or not, by chance."""
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
        if zlib.crc32(loan_id.encode()) % 6 == 0:
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
        c, deps = self.container, self.container.visit_deps
        v = t.visit
        with c.engine.connect() as conn:
            visits = conn.execute(select(v.c.visit_id, v.c.status, v.c.window_start)).all()
        for visit_id, status, window_start in visits:
            now = datetime.combine(day, time(9), LENDER_TIME).astimezone(UTC)
            if status == "notice_delivered" and not self.refusals:
                self._try_too_soon_and_alone(visit_id, day, now)  # each in its own transaction, rolled back
            try:
                with c.engine.begin() as conn:
                    if status == "planned":
                        pdf, code = sv.issue_notice(conn, deps, visit_id, TEAM, now, c.letters.write_pre_visit_notice,
                                                    "demo", "demo")  # fmt: skip
                        self.notices.append({"visit_id": visit_id, "pdf": str(pdf), "code": code})
                        step = "notice issued"
                    elif status == "notice_issued":
                        sv.record_delivery(conn, visit_id, now, "registered_post", now, "demo", "demo")
                        step = "notice delivered"
                    elif status == "notice_delivered":
                        start = datetime.combine(max(day, window_start), time(10), LENDER_TIME)
                        sv.schedule(conn, deps, visit_id, TEAM, start, now, "demo", "demo")
                        step = "scheduled"
                    elif status == "scheduled":
                        step = self._visit_today(conn, visit_id, day)
                    else:
                        continue
            except DueCourseError as exc:
                step = f"waiting: {str(exc)[:60]}"
            out.visits[step] = out.visits.get(step, 0) + 1

    def _try_too_soon_and_alone(self, visit_id: str, day: date, now: datetime) -> None:
        """What a team leader would hear trying to go the day after the notice arrived, or alone."""
        c = self.container
        tomorrow = datetime.combine(day + timedelta(days=1), time(10), LENDER_TIME)
        for staff in (TEAM, TEAM[:1]):
            try:
                with c.engine.begin() as conn:
                    sv.schedule(conn, c.visit_deps, visit_id, staff, tomorrow, now, "demo", "demo")
            except DueCourseError as exc:
                self.refusals.append(f"{len(staff)} staff, {tomorrow:%Y-%m-%d %H:%M}: {exc}")
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
        deps = self.container.visit_deps
        row = conn.execute(select(t.visit.c.scheduled_start).where(t.visit.c.visit_id == visit_id)).one()
        start = row.scheduled_start.replace(tzinfo=UTC) if row.scheduled_start.tzinfo is None else row.scheduled_start
        if start.astimezone(LENDER_TIME).date() != day:
            return "scheduled"
        office = deps.policy.offices[0]
        at = start + timedelta(minutes=5)
        sv.check_in(conn, deps, visit_id, at, office.latitude, office.longitude, identification_shown=True,
                    recording=True, now=at, actor="demo", origin="demo")  # fmt: skip
        sv.add_evidence(conn, deps, visit_id, f"recording of {visit_id}".encode(), "text/plain", at, "demo", "demo")
        sv.check_out(conn, visit_id, at + timedelta(minutes=40), office.latitude, office.longitude,
                     at + timedelta(minutes=40), "demo", "demo")  # fmt: skip
        report = sv.OutcomeReport(met_debtor=True, plan_requested=True, notes="agreed to call the hotline for a plan")
        sv.report_outcome(conn, deps, visit_id, report, at + timedelta(minutes=45), "demo", "demo")
        return "visited"
