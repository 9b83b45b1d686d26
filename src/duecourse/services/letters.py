"""Letters from the book: the written notices of `letter.*` ladder steps and the pre-visit notice, built, coded,
printed into a batch folder and audited in the caller's transaction.

The dispatcher hands over the outbox's letter actions (`Letters.print_written_notices`, its `letter` hand-off);
visit planning passes the visit facts and its own code (`Letters.write_pre_visit_notice`, its `NoticeWriter`).
Names and addresses are decrypted only to be printed; the manifest and the audit name the debtor by reference.
Amounts are the ledger's, by component, as of the debtor's local day. Everything is read through the caller's
connection: the bulk (ADBC) reader must not open a SQLite file this process is writing (adapters/db/bulk.py).
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Final, Protocol
from zoneinfo import ZoneInfo

import polars as pl
from sqlalchemy import Connection, event, select

from duecourse.adapters.channels.letters import (
    ComingMeasure,
    Debt,
    Debtor,
    LenderIdentity,
    Letter,
    LetterRenderer,
    PlannedVisit,
    PreVisitNotice,
    PrintBatch,
    PrintedBatch,
    Verification,
    Visitor,
    WrittenNotice,
)
from duecourse.adapters.db import tables as t
from duecourse.adapters.db.bulk import read_frame
from duecourse.audit import log as audit_log
from duecourse.audit.chain import AuditRecord
from duecourse.domain.verification import CodeSigner
from duecourse.ledger.engine import ledger_state
from duecourse.services.book_frames import load_book
from duecourse.services.messages import MessageCatalogue
from duecourse.services.verification import VALID_FOR, CodeRequest, issue_many
from duecourse.settings import Settings
from duecourse.strategy.model import Ladder, StepKind, Strategy
from duecourse.strategy.predicates import DaysPastDueAtLeast, DaysPastDueAtMost, OverdueAmountAtLeast

ORIGIN: Final = "letters"

# The ladder step kinds a written notice announces, as the measure the letter names. The pre-visit notice is not
# one: it only announces the visit, whose own step says when it may come at the earliest.
MEASURE_OF_STEP: Final = {
    StepKind.DOOR_VISIT_CANDIDATE: "door_visit",
    StepKind.LEGAL_REFERRAL: "legal_referral",
    StepKind.OUTSOURCING: "outsourcing",
}
CALL_STEPS: Final = frozenset({StepKind.CALL, StepKind.SECOND_CALL})


class Cipher(Protocol):
    def decrypt(self, token: bytes, field: str) -> str: ...


class VisitFacts(Protocol):
    """What visit planning knows about a visit that the notice prints (services.visits.NoticeFacts)."""

    @property
    def visit_id(self) -> str: ...
    @property
    def action_key(self) -> int | None: ...
    @property
    def borrower_key(self) -> int: ...
    @property
    def loan_key(self) -> int: ...
    @property
    def window_start(self) -> date: ...
    @property
    def window_end(self) -> date: ...
    @property
    def visitors(self) -> Sequence[tuple[str, str]]: ...  # (name, badge number)
    @property
    def reasons(self) -> Sequence[str]: ...  # adapters.channels.letters.VISIT_REASONS


@dataclass(frozen=True)
class PrintBatchResult:
    batch: PrintedBatch | None  # None when nothing could be printed
    printed: dict[int, str] = field(default_factory=dict)  # action key -> letter id
    skipped: dict[int, str] = field(default_factory=dict)  # action key -> why no letter was printed


@dataclass(frozen=True)
class _Recipient:
    """What the book says about one letter's debtor and loan, read through the caller's connection."""

    borrower_key: int
    borrower_id: str
    language: str
    name: str
    address: str | None
    zone: ZoneInfo | None
    loan_key: int
    loan_id: str
    currency: str


@dataclass
class Letters:
    """Everything a letter needs from outside the book; one per process (the renderer loads fonts once)."""

    cipher: Cipher
    signer: CodeSigner
    messages: MessageCatalogue
    strategy: Strategy
    public_url: str
    letters_dir: Path  # settings.data_dir / "letters": one folder per print batch
    renderer: LetterRenderer
    visit_hours: tuple[time, time]  # the visit policy's daytime (policy/visits.yaml), printed on pre-visit notices
    actor: str = "system:letters"

    @classmethod
    def configured(
        cls,
        settings: Settings,
        cipher: Cipher,
        signer: CodeSigner,
        messages: MessageCatalogue,
        strategy: Strategy,
        visit_hours: tuple[time, time],
        workers: int = 1,
    ) -> Letters:
        """Letters for this deployment: templates beside the message catalogue (templates/letters/), batches in
        data_dir/letters, the cut letter face cached in data_dir/fonts, `workers` rendering processes."""
        renderer = LetterRenderer(settings.messages_path.parent / "letters", workers, settings.data_dir / "fonts")
        return cls(
            cipher,
            signer,
            messages,
            strategy,
            settings.public_url,
            settings.data_dir / "letters",
            renderer,
            visit_hours,
        )

    # --- written notices (the dispatcher's letter hand-off) ------------------------------------------------

    def print_written_notices(self, conn: Connection, action_keys: Sequence[int], now: datetime) -> PrintBatchResult:
        """One written notice per `letter.*` action, in one print batch; each issued a code and audited."""
        actions = _actions(conn, action_keys)
        if actions.height != len(set(action_keys)):
            missing = sorted(set(action_keys) - set(actions.get_column("action_key").to_list()))
            raise ValueError(f"no proposed action with key(s) {missing}")
        recipients = self._recipients(conn, actions.get_column("loan_key").to_list())
        skipped: dict[int, str] = {}
        wanted = []
        for action in actions.iter_rows(named=True):
            who = recipients[action["loan_key"]]
            if not str(action["template"] or "").startswith("letter.") or action["channel"] != "letter":
                skipped[action["action_key"]] = f"not a letter step: {action['channel']} {action['template']}"
            elif who.address is None or who.zone is None:
                skipped[action["action_key"]] = "no valid postal address of the borrower"
            elif action["ladder"] not in self.strategy.ladders:
                skipped[action["action_key"]] = f"ladder {action['ladder']!r} is not in the strategy"
            else:
                wanted.append((action, who, _local_day(now, who.zone)))
        debts = _debts(conn, [(who.loan_key, day) for _, who, day in wanted])
        drafts = []
        for action, who, day in wanted:
            debt = debts.get((who.loan_key, day))
            if debt is None or debt.total <= 0:
                skipped[action["action_key"]] = "nothing is owed on the loan"
                continue
            measure = coming_measure(self.strategy.ladders[action["ladder"]], debt, day)
            drafts.append((action, who, day, debt, measure))
        codes = issue_many(
            conn,
            self.signer,
            [
                CodeRequest(
                    "message",
                    "letter",
                    who.borrower_key,
                    self._lender_name(who.language),
                    loan_key=who.loan_key,
                    action_key=action["action_key"],
                    valid_for=VALID_FOR["notice"],  # paper travels slowly and is kept: as long as a notice's code
                )
                for action, who, *_ in drafts
            ],
            now,
        )
        letters: list[Letter] = [
            WrittenNotice(
                letter_id=f"WN-{action['action_key']}",
                template=action["template"],
                action_key=action["action_key"],
                language=who.language,
                issued_on=day,
                lender=self._lender(who.language),
                debtor=Debtor(who.borrower_id, who.name, who.address or ""),
                debt=debt,
                measure=measure,
                verification=Verification(code, self.public_url),
            )
            for (action, who, day, debt, measure), code in zip(drafts, codes, strict=True)
        ]
        batch = self._print(conn, f"notices-{now:%Y%m%dT%H%M%S}-{min(action_keys, default=0)}", letters, now)
        audit_log.append(
            conn,
            [
                AuditRecord(self.actor, ORIGIN, "letter.not_printed", "proposed_action", str(key), reason, {})
                for key, reason in sorted(skipped.items())
            ],
            now,
        )
        printed = {letter.action_key: letter.letter_id for letter in letters if letter.action_key is not None}
        return PrintBatchResult(batch, printed, skipped)

    # --- the pre-visit notice (visit planning's NoticeWriter) ----------------------------------------------

    def write_pre_visit_notice(self, conn: Connection, facts: VisitFacts, code: str, now: datetime) -> Path:
        """Render and file the notice for `facts` under the code visit planning issued (purpose "notice",
        reference "visit:<visit_id>"), in a print batch of its own; returns the PDF written (the notice alone)."""
        letter = self.pre_visit_notice(conn, facts, code, now)
        batch = self._print(conn, f"visit-{letter.visit.visit_id}-{now:%Y%m%dT%H%M%S}", [letter], now)
        assert batch is not None
        return batch.path / batch.rows[0].file

    def pre_visit_notice(self, conn: Connection, facts: VisitFacts, code: str, now: datetime) -> PreVisitNotice:
        who = self._recipients(conn, [facts.loan_key])[facts.loan_key]
        if who.borrower_key != facts.borrower_key:
            raise ValueError(f"loan {who.loan_id} does not belong to borrower {facts.borrower_key}")
        if who.address is None or who.zone is None:
            raise ValueError(f"borrower {who.borrower_id} has no valid postal address: the notice cannot be posted")
        day = _local_day(now, who.zone)
        debt = _debts(conn, [(who.loan_key, day)]).get((who.loan_key, day))
        if debt is None or debt.total <= 0:
            raise ValueError(f"nothing is owed on loan {who.loan_id} on {day}: no visit, no notice")
        return PreVisitNotice(
            letter_id=f"PV-{facts.visit_id}",
            language=who.language,
            issued_on=day,
            lender=self._lender(who.language),
            debtor=Debtor(who.borrower_id, who.name, who.address),
            debt=debt,
            visit=PlannedVisit(
                visit_id=facts.visit_id,
                reasons=tuple(facts.reasons),
                window_start=facts.window_start,
                window_end=facts.window_end,
                daily_from=self.visit_hours[0],
                daily_until=self.visit_hours[1],
                visitors=tuple(Visitor(name, badge) for name, badge in facts.visitors),
            ),
            verification=Verification(code, self.public_url),
            action_key=facts.action_key,
        )

    # --- shared ----------------------------------------------------------------------------------------------

    def _lender_name(self, language: str) -> str:
        return self.messages.lender.name[language]

    def _lender(self, language: str) -> LenderIdentity:
        lender = self.messages.lender
        return LenderIdentity(
            lender.name[language], lender.address.get(language), lender.hotline, lender.account, self.public_url
        )

    def _recipients(self, conn: Connection, loan_keys: Sequence[int]) -> dict[int, _Recipient]:
        """Each loan's borrower with the name and first valid own postal address decrypted (never logged)."""
        ln, b, cp = t.loan, t.borrower, t.contact_point
        rows = conn.execute(
            select(
                ln.c.loan_key,
                ln.c.loan_id,
                ln.c.currency,
                b.c.borrower_key,
                b.c.borrower_id,
                b.c.language,
                b.c.name_enc,
            )
            .join(b, b.c.borrower_key == ln.c.borrower_key)
            .where(ln.c.loan_key.in_(set(loan_keys)))
        ).all()
        addresses: dict[int, tuple[bytes, str]] = {}
        for borrower_key, value, zone in conn.execute(
            select(cp.c.borrower_key, cp.c.value_enc, cp.c.time_zone)
            .where(
                cp.c.borrower_key.in_({r.borrower_key for r in rows}),
                cp.c.kind == "address",
                cp.c.owner == "borrower",
                cp.c.valid.is_(True),
            )
            .order_by(cp.c.borrower_key, cp.c.contact_key)
        ):
            addresses.setdefault(borrower_key, (value, zone))
        out = {}
        for r in rows:
            found = addresses.get(r.borrower_key)
            out[r.loan_key] = _Recipient(
                borrower_key=r.borrower_key,
                borrower_id=r.borrower_id,
                language="zh" if r.language.lower().startswith("zh") else "en",
                name=self.cipher.decrypt(r.name_enc, "borrower.name_enc"),
                address=None if found is None else self.cipher.decrypt(found[0], "contact_point.value_enc"),
                zone=None if found is None else ZoneInfo(found[1]),
                loan_key=r.loan_key,
                loan_id=r.loan_id,
                currency=r.currency,
            )
        return out

    def _print(self, conn: Connection, batch_id: str, letters: Sequence[Letter], now: datetime) -> PrintedBatch | None:
        """Write the batch folder and audit each letter with where it is printed (file, pages) and the SHA-256s of
        its HTML and of its file; the folder goes if the transaction rolls back, so a batch on disk always has its
        codes and audit entries committed."""
        if not letters:
            return None
        batch = PrintBatch(self.letters_dir, self.renderer).write(batch_id, letters)
        _remove_on_rollback(conn, batch.path)
        audit_log.append(
            conn,
            [
                AuditRecord(
                    self.actor,
                    ORIGIN,
                    "letter.printed",
                    "letter",
                    row.letter_id,
                    f"{row.kind} printed in batch {batch.batch_id}",
                    {
                        "batch": batch.batch_id,
                        "template": row.template,
                        "action_key": row.action_key,
                        "visit_id": row.visit_id,
                        "debtor_ref": row.debtor_ref,
                        "language": row.language,
                        "file": row.file,
                        "first_page": row.first_page,
                        "pages": row.pages,
                        "html_sha256": row.html_sha256,
                        "file_sha256": row.file_sha256,
                    },
                )
                for row in batch.rows
            ],
            now,
        )
        return batch


def coming_measure(ladder: Ladder, debt: Debt, day: date) -> ComingMeasure:
    """The ladder's next serious step this loan can still reach: the earliest visit, court referral or agency
    placement whose days-past-due window has not passed and whose overdue-amount floor the debt meets, dated the
    first day it could come; otherwise more calls if a call step is still ahead, otherwise an offer of a plan.
    (Other conditions, such as flags, are judged by the cycle on that day: the letter says "may".)"""
    dpd = debt.days_past_due
    ahead = []
    for step in ladder.steps:
        lowest = max((p.value for p in step.when if isinstance(p, DaysPastDueAtLeast)), default=0)
        highest = min((p.value for p in step.when if isinstance(p, DaysPastDueAtMost)), default=None)
        floors = [p.minor_thresholds()[debt.currency] for p in step.when if isinstance(p, OverdueAmountAtLeast)]
        if (highest is not None and highest <= dpd) or any(debt.total < floor for floor in floors):
            continue
        ahead.append((max(lowest, dpd + 1), step.kind))
    serious = sorted((at, MEASURE_OF_STEP[kind]) for at, kind in ahead if kind in MEASURE_OF_STEP)
    if serious:
        at, kind = serious[0]
        return ComingMeasure(kind, day + timedelta(days=at - dpd))
    if any(kind in CALL_STEPS for _, kind in ahead):
        return ComingMeasure("calls", None)
    return ComingMeasure("repayment_plan", None)


def _local_day(now: datetime, zone: ZoneInfo) -> date:
    """The letter's date and the day its amounts are computed for: the debtor's own calendar day."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(zone).date()


def _actions(conn: Connection, action_keys: Sequence[int]) -> pl.DataFrame:
    keys = ",".join(str(int(k)) for k in sorted(set(action_keys))) or "NULL"  # integers: no SQL can ride in
    return read_frame(
        conn,
        "SELECT action_key, loan_key, ladder, step, channel, template FROM proposed_action"
        f" WHERE action_key IN ({keys}) ORDER BY action_key",
        pl.Schema(
            {
                "action_key": pl.Int64,
                "loan_key": pl.Int64,
                "ladder": pl.String,
                "step": pl.String,
                "channel": pl.String,
                "template": pl.String,
            }
        ),
    )


def _debts(conn: Connection, wanted: Sequence[tuple[int, date]]) -> dict[tuple[int, date], Debt]:
    """The amounts due by component on each (loan, day): the ledger run once per distinct day over those loans
    (the same engine and inputs as `duecourse loan show`)."""
    out: dict[tuple[int, date], Debt] = {}
    by_day: dict[date, set[int]] = {}
    for loan_key, day in wanted:
        by_day.setdefault(day, set()).add(loan_key)
    for day, keys in sorted(by_day.items()):
        book = load_book(conn, day, keys)  # in the caller's transaction: the dispatcher writes meanwhile
        state = ledger_state(book.loans, book.instalments, book.payments, book.holds, book.conventions, day).join(
            book.loans.select("loan_key", "loan_id", "currency"), on="loan_key"
        )
        for s in state.iter_rows(named=True):
            out[s["loan_key"], day] = Debt(
                loan_id=s["loan_id"],
                currency=s["currency"],
                principal=s["due_principal"],
                interest=s["due_interest"],
                penalty=s["due_penalty"],
                fees=s["due_fee"],
                oldest_due_date=s["oldest_unpaid_due_date"] or day,
                days_past_due=s["days_past_due"],
            )
    return out


def _remove_on_rollback(conn: Connection, folder: Path) -> None:
    """Tie a batch folder to the transaction that issued its codes: a rollback removes it, a commit keeps it."""

    def rolled_back(_conn: Connection) -> None:
        event.remove(conn, "commit", committed)
        shutil.rmtree(folder, ignore_errors=True)

    def committed(_conn: Connection) -> None:
        event.remove(conn, "rollback", rolled_back)

    event.listen(conn, "rollback", rolled_back, once=True)
    event.listen(conn, "commit", committed, once=True)
