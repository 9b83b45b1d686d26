"""The documented exception tree of DueCourse.

    DueCourseError
    ├── SettingsError          an environment setting is unusable (names the variable)
    ├── ConventionError        a product convention is invalid (names the key)
    ├── BookFormatError        an input file cannot be used at all (names the file)
    ├── StrategyError          a strategy file is invalid (names file and key)
    ├── RulebookError          a rule pack or calendar file is invalid (names file and key)
    ├── PolicyError            a house policy file (policy/*.yaml) is invalid (names file and key)
    ├── ProposalError          a compliance proposal is invalid (names the field)
    ├── CycleError             the daily cycle refuses to run (e.g. an earlier day without --replay)
    ├── PlanError              a repayment plan cannot be offered, approved or accepted as asked (says why)
    ├── NotFoundError          an entity asked for by id does not exist
    └── AuditIntegrityError    the audit chain does not verify (names the first bad entry)

Row-level problems in batch input are *not* exceptions: they are `RowError` values collected and
reported together (errors as data).
"""

from __future__ import annotations

from dataclasses import dataclass


class DueCourseError(Exception):
    """Base of every error DueCourse raises on purpose."""


class SettingsError(DueCourseError):
    pass


class ConventionError(DueCourseError):
    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"product convention {key!r}: {reason}")
        self.key = key
        self.reason = reason


class BookFormatError(DueCourseError):
    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class StrategyError(DueCourseError):
    def __init__(self, path: str, key: str, reason: str) -> None:
        super().__init__(f"{path}: {key}: {reason}")
        self.path = path
        self.key = key
        self.reason = reason


class RulebookError(DueCourseError):
    def __init__(self, path: str, key: str, reason: str) -> None:
        super().__init__(f"{path}: {key}: {reason}")
        self.path = path
        self.key = key
        self.reason = reason


class PolicyError(DueCourseError):
    def __init__(self, path: str, key: str, reason: str) -> None:
        super().__init__(f"{path}: {key}: {reason}")
        self.path = path
        self.key = key
        self.reason = reason


class ProposalError(DueCourseError):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class CycleError(DueCourseError):
    pass


class PlanError(DueCourseError):
    pass


class NotFoundError(DueCourseError):
    pass


class AuditIntegrityError(DueCourseError):
    def __init__(self, seq: int, reason: str) -> None:
        super().__init__(f"audit entry {seq}: {reason}")
        self.seq = seq
        self.reason = reason


@dataclass(frozen=True)
class RowError:
    """One rejected input row: which file, which row (1-based, header excluded), which field, and why."""

    file: str
    row: int
    field: str
    reason: str
