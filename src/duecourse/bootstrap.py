"""The composition root: the one place where settings become engines, ciphers, strategies and gates.

What only some commands need (channels, the dispatcher, visits, letters — WeasyPrint takes seconds to
import) is imported where it is built, so `duecourse loan show` does not pay for the print room.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property, partial
from pathlib import Path
from typing import TYPE_CHECKING, Final

from sqlalchemy import Connection, Engine

from duecourse.adapters.crypto import FieldCipher, read_or_create_key
from duecourse.adapters.db import migrate
from duecourse.adapters.db.engine import make_engine
from duecourse.compliance.calendar import HolidayCalendar
from duecourse.compliance.checks.base import CheckContext
from duecourse.compliance.port import CompliancePort
from duecourse.compliance.rulebook import Rulebook, load_rulebook
from duecourse.domain.verification import CodeSigner
from duecourse.plans.policy import PlanPolicy, load_plan_policy
from duecourse.services.compliance_gate import RulebookGate
from duecourse.services.messages import MessageCatalogue, screen
from duecourse.settings import Settings
from duecourse.strategy.loader import load_strategy
from duecourse.strategy.model import Strategy

if TYPE_CHECKING:
    from duecourse.services.calls import CallDesk
    from duecourse.services.dispatch import Channel, Dispatcher, HandOff
    from duecourse.services.dispatch import Policy as DispatchPolicy
    from duecourse.services.letters import Letters
    from duecourse.services.visits import VisitDeps


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Container:
    settings: Settings
    clock: Callable[[], datetime] = field(default=utc_now)

    @cached_property
    def engine(self) -> Engine:
        if self.settings.database_url.startswith("sqlite"):
            self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        engine = make_engine(self.settings.database_url)
        migrate.upgrade(engine)
        return engine

    @cached_property
    def cipher(self) -> FieldCipher:
        return FieldCipher.from_key_file(self.settings.data_key_path)

    @cached_property
    def signer(self) -> CodeSigner:
        return CodeSigner(read_or_create_key(self.settings.verification_key_path, 32))

    @cached_property
    def messages(self) -> MessageCatalogue:
        catalogue = MessageCatalogue.load(self.settings.messages_path, f"{self.settings.public_url}/verify")
        screen(catalogue, self.rulebook, self.check_context, self.clock().date())
        return catalogue

    @cached_property
    def plan_policy(self) -> PlanPolicy:
        return load_plan_policy(self.settings.policy_path / "plans.yaml")

    @cached_property
    def call_desk(self) -> CallDesk:
        """The call queue's dependencies: the live gate, the code signer, the cipher, the lender's identity."""
        from duecourse.services.calls import CallDesk

        return CallDesk(self.engine, self.compliance, self.signer, self.cipher, self.messages)

    @cached_property
    def visit_deps(self) -> VisitDeps:
        from duecourse.services.visits import VisitDeps

        s = self.settings
        return VisitDeps.of(self, s.policy_path / "visits.yaml", s.data_dir, s.public_url)

    @cached_property
    def letters(self) -> Letters:
        """Letters and notices; the renderer prepares its fonts on first use (slow once, then cached). A print
        batch large enough is laid out in one process a core (started on first such batch, then kept)."""
        from duecourse.services.letters import Letters

        policy = self.visit_deps.policy
        hours = (policy.day_start, policy.day_end)
        s = self.settings
        return Letters.configured(s, self.cipher, self.signer, self.messages, self.strategy, hours, os.cpu_count() or 1)

    @cached_property
    def channels(self) -> dict[str, Channel]:
        """The message channels the settings configure; a channel without settings is left queued."""
        from duecourse.adapters.channels.push import PushWebhook
        from duecourse.adapters.channels.sms_gateway import WEBHOOK_PATH, InfobipSms, report_token
        from duecourse.adapters.channels.smtp import SmtpMailer

        s = self.settings
        channels: dict[str, Channel] = {}
        if s.sms_url and s.sms_api_key:
            notify = f"{s.public_url}{WEBHOOK_PATH}?token={report_token(s.sms_api_key)}"
            channels["sms"] = InfobipSms(s.sms_url, s.sms_api_key, s.sms_sender, notify_url=notify)
        if s.smtp_url:
            channels["email"] = SmtpMailer(s.smtp_url, s.mail_from)
        if s.push_url and s.push_secret:
            channels["app"] = PushWebhook(s.push_url, s.push_secret)
        return channels

    def hand_offs(self) -> dict[str, HandOff]:
        """Letters to a print batch, calls to the agents' queue, visits to visit planning; each returns the
        actions it did not take, with why."""
        import polars as pl

        from duecourse.services.calls import create_call_tasks
        from duecourse.services.visits import plan_visits_from_actions

        def letter(conn: Connection, keys: list[int], now: datetime) -> Mapping[int, str]:
            return self.letters.print_written_notices(conn, keys, now).skipped

        def call(conn: Connection, keys: list[int], now: datetime) -> Mapping[int, str]:
            create_call_tasks(conn, keys, now)
            return {}

        def visit(conn: Connection, keys: list[int], now: datetime) -> Mapping[int, str]:
            planned = plan_visits_from_actions(conn, self.visit_deps, keys, now, origin="dispatch")
            refused = planned.verdicts.filter(~pl.col("eligible")).select("action_key", "reasons")
            return {int(k): "; ".join(r) for k, r in refused.iter_rows()}

        return {"letter": letter, "call": call, "visit": visit}

    def dispatcher(
        self, policy: DispatchPolicy, channels: Mapping[str, Channel] | None = None, workers: int = 1
    ) -> Dispatcher:
        from duecourse.services.dispatch import Dispatcher

        channels = self.channels if channels is None else channels
        return Dispatcher(
            engine=self.engine,
            cipher=self.cipher,
            signer=self.signer,
            messages=self.messages,
            gate=self.compliance,
            channels=channels,
            hand_offs=self.hand_offs(),
            policy=policy,
            owner=f"dispatcher:{os.uname().nodename}:{os.getpid()}",
            workers=workers,
            recipe=self.dispatch_recipe(channels, policy),
        )

    def dispatch_recipe(self, channels: Mapping[str, Channel], policy: DispatchPolicy) -> Callable[[], Dispatcher]:
        """How a helper process builds a dispatcher equal to this container's (message channels only: the
        hand-offs stay with the starting process)."""
        return partial(
            helper_dispatcher,
            self.settings.database_url,
            self.settings.data_key_path,
            self.signer,
            self.rulebook,
            self.check_context,
            self.messages,
            dict(channels),
            policy,
        )

    @cached_property
    def strategy(self) -> Strategy:
        return load_strategy(self.settings.strategy_path)

    @cached_property
    def rulebook(self) -> Rulebook:
        return load_rulebook(self.settings.rules_path)

    @cached_property
    def check_context(self) -> CheckContext:
        return CheckContext(calendar=HolidayCalendar.load(self.settings.rules_path / "calendars"))

    @cached_property
    def compliance(self) -> CompliancePort:
        return RulebookGate(self.engine, self.rulebook, self.check_context, self.messages)


# Imported once in the process helper dispatchers are forked from (services/dispatch.py, `start_worker_server`).
DISPATCH_HELPER_MODULES: Final = ("duecourse.bootstrap", "duecourse.services.dispatch", "sqlalchemy.orm")


def helper_dispatcher(
    database_url: str,
    data_key_path: Path,
    signer: CodeSigner,
    rulebook: Rulebook,
    ctx: CheckContext,
    messages: MessageCatalogue,
    channels: Mapping[str, Channel],
    policy: DispatchPolicy,
) -> Dispatcher:
    """A dispatcher in a helper process: what the starting process loaded comes pickled (the rulebook, the
    screened messages); the database connections and the data key's cipher are made here."""
    from duecourse.services.dispatch import Dispatcher

    engine = make_engine(database_url)
    gate = RulebookGate(engine, rulebook, ctx, messages)
    cipher = FieldCipher.from_key_file(data_key_path)
    return Dispatcher(engine, cipher, signer, messages, gate, channels, policy=policy)


def build(settings: Settings | None = None) -> Container:
    settings = settings or Settings.from_env()
    fixed = settings.fixed_now
    if fixed is not None:
        return Container(settings, clock=lambda: fixed)
    return Container(settings)
