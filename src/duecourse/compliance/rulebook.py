"""The rulebook: jurisdiction packs of dated, cited rules loaded strictly from `rules/`.

Layout: `rules/<pack>/pack.yaml` describes a pack (which country it governs, or `"*"` for a lender's
own policy that applies everywhere); every other `rules/<pack>/*.yaml` file holds one rule. Each rule
names the check that applies it and a list of versions keyed by effective date, each with parameter
values (or `null` for a repeal) and its citations. History is never edited away: a changed figure is a
new version. The format is documented in `rules/README.md`; any unknown key, bad date, overlap, missing
citation or unknown check stops loading with the file and key named.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Final, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from duecourse.compliance.checks import registry
from duecourse.compliance.checks.base import Check, Params
from duecourse.compliance.facts import ActorKind, Channel, Counterpart, Purpose
from duecourse.domain.errors import RulebookError

RuleKind = Literal["law", "regulation", "regulator_guidance", "national_standard", "self_regulation", "house_policy"]
# Precedence (lower is stronger), after regulations.md §1: law > regulation/guidance > national
# standard > self-regulation > house policy. Where two rules of the same obligation and the same rank
# disagree, the engine cannot say which is stricter and blocks as a conflict.
RANK: Final[dict[str, int]] = {
    "law": 1,
    "regulation": 2,
    "regulator_guidance": 2,
    "national_standard": 3,
    "self_regulation": 4,
    "house_policy": 5,
}
Status = Literal["V", "S", "U"]  # regulations.md: primary text read / secondary reports / unverified


M = TypeVar("M", bound=BaseModel)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Citation(_Strict):
    source: str = Field(min_length=1, description="Title of the law, regulation, standard or policy")
    article: str = Field(min_length=1, description="Article, section or clause")
    url: str = Field(pattern=r"^(https?://\S+|internal:\S+)$")
    kind: RuleKind
    status: Status = Field(description="V primary text read, S secondary reports, U unverified")
    quote: str | None = None


class Title(_Strict):
    en: str = Field(min_length=1)
    zh: str | None = None


class Scope(_Strict):
    """Which proposals a rule is about; an absent list means all."""

    channels: tuple[Channel, ...] | None = None
    actors: tuple[ActorKind, ...] | None = None
    counterparts: tuple[Counterpart, ...] | None = None
    purposes: tuple[Purpose, ...] | None = None
    regions: tuple[str, ...] | None = None  # e.g. ("MA",) for a state overlay


class VersionSpec(_Strict):
    effective_from: date
    values: dict[str, Any] | None  # None: repealed from this date
    citations: tuple[Citation, ...] = Field(min_length=1)


class RuleSpec(_Strict):
    id: str = Field(pattern=r"^[A-Z][A-Z0-9_]*(\.[A-Z0-9_]+)+$")
    title: Title
    description: str = Field(min_length=1)
    check: str
    obligation: str | None = None  # rules of one obligation are compared for conflicts; default: check
    kind: RuleKind
    scope: Scope = Scope()
    last_reviewed: date
    versions: tuple[VersionSpec, ...] = Field(min_length=1)

    @field_validator("versions")
    @classmethod
    def _ordered(cls, versions: tuple[VersionSpec, ...]) -> tuple[VersionSpec, ...]:
        starts = [v.effective_from for v in versions]
        if starts != sorted(starts) or len(set(starts)) != len(starts):
            raise ValueError("versions must have strictly increasing effective_from dates (no overlaps)")
        return versions


class PackSpec(_Strict):
    pack: str
    title: str
    country: str  # "*" for house policy that applies in every jurisdiction
    description: str


@dataclass(frozen=True)
class Version:
    effective_from: date
    effective_to: date | None  # exclusive; the next version's start
    params: Params | None  # None: repealed
    citations: tuple[Citation, ...]


@dataclass(frozen=True)
class Rule:
    id: str
    pack: str
    country: str
    title: Title
    description: str
    check: Check
    obligation: str
    kind: RuleKind
    scope: Scope
    last_reviewed: date
    versions: tuple[Version, ...]
    path: str

    @property
    def rank(self) -> int:
        return RANK[self.kind]

    def version_on(self, day: date) -> Version | None:
        """The version in force on `day`, or None before the first one."""
        found = None
        for v in self.versions:
            if v.effective_from <= day:
                found = v
        return found


@dataclass(frozen=True)
class Rulebook:
    rules: tuple[Rule, ...]
    packs: dict[str, PackSpec]
    version: str  # content hash of every pack file, e.g. "rb-1a2b3c4d5e6f"

    def for_country(self, country: str) -> tuple[Rule, ...]:
        return tuple(r for r in self.rules if r.country in (country, "*"))

    @property
    def countries(self) -> list[str]:
        """The jurisdictions a pack governs (not the `*` packs that apply everywhere)."""
        return [p.country for p in self.packs.values() if p.country != "*"]

    def has_country(self, country: str) -> bool:
        return country in self.countries

    def get(self, rule_id: str) -> Rule:
        for r in self.rules:
            if r.id == rule_id:
                return r
        raise KeyError(rule_id)


class _Loader(yaml.SafeLoader):
    """YAML without implicit timestamps: dates stay text, so a bad date is reported with its key."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _yaml(path: Path) -> Any:
    try:
        with path.open(encoding="utf-8") as f:
            return yaml.load(f, Loader=_Loader)
    except (OSError, yaml.YAMLError) as exc:
        raise RulebookError(str(path), "(file)", f"cannot read YAML: {exc}") from exc


def _key(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "(top)"


def _parse(model: type[M], data: Any, path: Path, prefix: str = "") -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = _key(tuple(err["loc"]))
        raise RulebookError(str(path), f"{prefix}{key}", err["msg"]) from exc


def load_rulebook(root: Path) -> Rulebook:
    """Load every pack under `root` (e.g. `rules/`); raise `RulebookError` naming file and key."""
    if not root.is_dir():
        raise RulebookError(str(root), "(directory)", "rules directory not found")
    checks = registry.checks()
    digest = hashlib.sha256()
    packs: dict[str, PackSpec] = {}
    rules: list[Rule] = []
    seen: dict[str, str] = {}
    for pack_dir in sorted(p for p in root.iterdir() if p.is_dir() and (p / "pack.yaml").exists()):
        pack_path = pack_dir / "pack.yaml"
        pack = _parse(PackSpec, _yaml(pack_path), pack_path)
        if pack.pack != pack_dir.name:
            raise RulebookError(str(pack_path), "pack", f"must equal the folder name {pack_dir.name!r}")
        packs[pack.pack] = pack
        digest.update(pack_path.read_bytes())
        for path in sorted(pack_dir.rglob("*.yaml")):
            if path == pack_path:
                continue
            digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
            rules.append(_rule(path, pack, checks, seen))
    if not rules:
        raise RulebookError(str(root), "(directory)", "no rules found")
    return Rulebook(tuple(rules), packs, "rb-" + digest.hexdigest()[:12])


def _rule(path: Path, pack: PackSpec, checks: dict[str, Check], seen: dict[str, str]) -> Rule:
    spec = _parse(RuleSpec, _yaml(path), path)
    if spec.id in seen:
        raise RulebookError(str(path), "id", f"{spec.id} is already defined in {seen[spec.id]}")
    seen[spec.id] = str(path)
    check = checks.get(spec.check)
    if check is None:
        raise RulebookError(str(path), "check", f"unknown check {spec.check!r}; known: {', '.join(sorted(checks))}")
    if spec.last_reviewed > date.today():
        raise RulebookError(str(path), "last_reviewed", "is in the future")
    versions: list[Version] = []
    for i, v in enumerate(spec.versions):
        params = None if v.values is None else _parse(check.params, v.values, path, f"versions.{i}.values.")
        end = spec.versions[i + 1].effective_from if i + 1 < len(spec.versions) else None
        versions.append(Version(v.effective_from, end, params, v.citations))
    return Rule(
        id=spec.id,
        pack=pack.pack,
        country=pack.country,
        title=spec.title,
        description=spec.description,
        check=check,
        obligation=spec.obligation or spec.check,
        kind=spec.kind,
        scope=spec.scope,
        last_reviewed=spec.last_reviewed,
        versions=tuple(versions),
        path=str(path),
    )
