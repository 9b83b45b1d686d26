"""The composition root: the one place where settings become engines, ciphers, strategies and gates."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property

from sqlalchemy import Engine

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


def build(settings: Settings | None = None) -> Container:
    settings = settings or Settings.from_env()
    fixed = settings.fixed_now
    if fixed is not None:
        return Container(settings, clock=lambda: fixed)
    return Container(settings)
