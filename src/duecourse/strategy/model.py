"""The typed shape of a treatment strategy: split, segments, ladders and steps, as loaded from `strategies/*.yaml`.

Values here are immutable and already validated (see `loader`); `Strategy.digest` fingerprints the
meaning of a strategy, so every proposal can record exactly which strategy planned it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import Enum
from typing import Final

from duecourse.strategy.predicates import Predicate


class StepKind(str, Enum):
    """What a step does, in the order of the seed's escalation."""

    PRE_DUE_REMINDER = "pre_due_reminder"
    SMS = "sms"
    APP_PUSH = "app_push"
    CALL = "call"
    EMAIL = "email"
    SECOND_CALL = "second_call"
    WRITTEN_NOTICE = "written_notice"  # states the coming measure and its reason
    PRE_VISIT_NOTICE = "pre_visit_notice"  # written notice sent before any door visit
    DOOR_VISIT_CANDIDATE = "door_visit_candidate"  # a candidate only: visit planning decides (issue on visits)
    LEGAL_REFERRAL = "legal_referral"
    OUTSOURCING = "outsourcing"
    WRITE_OFF = "write_off"


class Channel(str, Enum):
    SMS = "sms"
    APP = "app"
    CALL = "call"
    EMAIL = "email"
    LETTER = "letter"
    VISIT = "visit"
    LEGAL = "legal"
    AGENCY = "agency"
    NONE = "none"  # no contact with the debtor (write-off)


# A step kind can only travel on channels that make sense for it: a typo like `kind: sms, channel: call`
# is refused at load time instead of surprising the dispatcher.
CHANNELS_FOR_KIND: Final[dict[StepKind, frozenset[Channel]]] = {
    StepKind.PRE_DUE_REMINDER: frozenset({Channel.SMS, Channel.APP, Channel.EMAIL, Channel.CALL}),
    StepKind.SMS: frozenset({Channel.SMS}),
    StepKind.APP_PUSH: frozenset({Channel.APP}),
    StepKind.CALL: frozenset({Channel.CALL}),
    StepKind.EMAIL: frozenset({Channel.EMAIL}),
    StepKind.SECOND_CALL: frozenset({Channel.CALL}),
    StepKind.WRITTEN_NOTICE: frozenset({Channel.LETTER, Channel.EMAIL, Channel.APP}),
    StepKind.PRE_VISIT_NOTICE: frozenset({Channel.LETTER, Channel.EMAIL, Channel.APP, Channel.SMS}),
    StepKind.DOOR_VISIT_CANDIDATE: frozenset({Channel.VISIT}),
    StepKind.LEGAL_REFERRAL: frozenset({Channel.LEGAL}),
    StepKind.OUTSOURCING: frozenset({Channel.AGENCY}),
    StepKind.WRITE_OFF: frozenset({Channel.NONE}),
}


class StopCondition(str, Enum):
    """A fact that, when true, means the step gives no treatment today."""

    PAID = "paid"  # post-due steps: nothing overdue; pre-due reminders: the next instalment is already paid
    ACTIVE_PROMISE = "active_promise"
    HOLD = "hold"  # an outreach-pausing hold (dispute, hardship, legal, deceased)
    ACTIVE_PLAN = "active_plan"


ALL_STOP_CONDITIONS: Final = frozenset(StopCondition)


@dataclass(frozen=True)
class Repeat:
    """Cadence within a case: `every_days=None` means once."""

    every_days: int | None = None

    def canonical(self) -> object:
        return "once" if self.every_days is None else {"every_days": self.every_days}

    def __str__(self) -> str:
        return "once" if self.every_days is None else f"every {self.every_days} days"


@dataclass(frozen=True)
class Step:
    id: str
    kind: StepKind
    channel: Channel
    template: str
    priority: int  # 1 is the most urgent; the allocator serves lower numbers first when capacity is short
    when: tuple[Predicate, ...]
    repeat: Repeat
    stop_if: frozenset[StopCondition]

    def canonical(self) -> dict[str, object]:
        return {
            "id": self.id,
            "kind": self.kind.value,
            "channel": self.channel.value,
            "template": self.template,
            "priority": self.priority,
            "when": [{p.name: p.canonical()} for p in self.when],
            "repeat": self.repeat.canonical(),
            "stop_if": sorted(c.value for c in self.stop_if),
        }


@dataclass(frozen=True)
class Ladder:
    id: str
    steps: tuple[Step, ...]  # first match wins


@dataclass(frozen=True)
class Segment:
    id: str
    when: tuple[Predicate, ...]  # AND; empty matches every loan
    ladder_by_arm: Mapping[str, str]  # arm name -> ladder id; one ladder for all arms repeats it per arm

    def ladder_for(self, arm: str) -> str:
        return self.ladder_by_arm[arm]


@dataclass(frozen=True)
class Arm:
    name: str
    share: Decimal  # percent of borrowers, at most two decimals


@dataclass(frozen=True)
class Split:
    """Champion/challenger: a borrower's arm is a pure function of SHA-256(salt + ":" + borrower_id)."""

    salt: str
    arms: tuple[Arm, ...]

    def upper_bounds(self) -> tuple[tuple[str, int], ...]:
        """Each arm with the exclusive upper end of its range of hash buckets (0..9999, basis points)."""
        out, total = [], 0
        for arm in self.arms:
            total += int(arm.share * 100)
            out.append((arm.name, total))
        return tuple(out)

    @property
    def arm_names(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.arms)


@dataclass(frozen=True)
class Strategy:
    name: str
    version: str
    split: Split
    segments: tuple[Segment, ...]  # first match wins
    ladders: Mapping[str, Ladder]
    description: str = ""

    def canonical(self) -> dict[str, object]:
        """The meaning of the strategy as plain JSON values: comments, key order and number formatting drop out."""
        return {
            "name": self.name,
            "version": self.version,
            "split": {
                "salt": self.split.salt,
                "arms": [[a.name, format(a.share.normalize(), "f")] for a in self.split.arms],
            },
            "segments": [
                {"id": s.id, "when": [{p.name: p.canonical()} for p in s.when], "ladder": dict(s.ladder_by_arm)}
                for s in self.segments
            ],
            "ladders": {
                lid: [step.canonical() for step in ladder.steps] for lid, ladder in sorted(self.ladders.items())
            },
        }

    @property
    def digest(self) -> str:
        """sha256 of the canonical content: the same strategy always has the same digest."""
        text = json.dumps(self.canonical(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(text.encode()).hexdigest()
