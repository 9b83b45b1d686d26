"""Strict loading of `strategies/*.yaml`: a strategy that is wrong in any way stops start-up, naming file and key.

Unknown keys, wrong types, duplicate keys or ids, unknown predicates, kinds, channels or stop
conditions, arm shares that do not add up to 100, and ladders that are referenced but missing (or
defined but never used) all raise `StrategyError(path, key, reason)` with a key path such as
`ladders.standard.steps[3].when[0]`. YAML floats are read as exact `Decimal` from their text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Final, NoReturn

import yaml

from duecourse.domain.errors import StrategyError
from duecourse.strategy.model import (
    ALL_STOP_CONDITIONS,
    CHANNELS_FOR_KIND,
    Arm,
    Channel,
    Ladder,
    Repeat,
    Segment,
    Split,
    Step,
    StepKind,
    StopCondition,
    Strategy,
)
from duecourse.strategy.predicates import VOCABULARY, Predicate

# Ids end up in `proposed_action` (String(64); arm String(32)) and in idempotency keys: keep them plain.
_ID: Final = re.compile(r"^[a-z][a-z0-9_]*$")
_ID_MAX: Final = 64
_ARM_MAX: Final = 32
_TEMPLATE_MAX: Final = 64


def load_strategy(path: str | Path) -> Strategy:
    """Read and validate one strategy file."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise StrategyError(source, "<file>", f"cannot read: {exc.strerror or exc}") from None
    return parse_strategy(text, source)


def parse_strategy(text: str, source: str = "<string>") -> Strategy:
    """Validate a strategy given as YAML text; `source` names it in errors."""
    try:
        raw = yaml.load(text, Loader=_StrictLoader)  # a SafeLoader subclass: no arbitrary objects
    except _DuplicateKey as exc:
        raise StrategyError(source, exc.key_path, f"duplicate key {exc.key!r} (line {exc.line})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "<yaml>"
        raise StrategyError(source, where, f"not valid YAML: {getattr(exc, 'problem', None) or exc}") from None
    return _Reader(source).strategy(raw)


# ---------------------------------------------------------------------------------------------------------------
# YAML: refuse duplicate keys (PyYAML silently keeps the last one) and read floats as exact decimals.


class _DuplicateKey(yaml.YAMLError):
    def __init__(self, key: object, line: int) -> None:
        super().__init__(f"duplicate key {key!r}")
        self.key = key
        self.line = line
        self.key_path = f"line {line}"


class _StrictLoader(yaml.SafeLoader):
    pass


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)  # resolves `<<:` merge keys before the duplicate check
    out: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in out:
            raise _DuplicateKey(key, key_node.start_mark.line + 1)
        out[key] = loader.construct_object(value_node, deep=True)
    return out


_SPECIAL_FLOATS: Final = {".inf": "Infinity", "+.inf": "Infinity", "-.inf": "-Infinity", ".nan": "NaN"}


def _construct_decimal(loader: _StrictLoader, node: yaml.ScalarNode) -> Decimal | str:
    text = str(loader.construct_scalar(node)).replace("_", "")
    try:
        return Decimal(_SPECIAL_FLOATS.get(text.lower(), text))
    except InvalidOperation:
        return text  # e.g. a sexagesimal 1:30.5: left as text, refused by the field that reads it


_StrictLoader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)
_StrictLoader.add_constructor("tag:yaml.org,2002:float", _construct_decimal)


# ---------------------------------------------------------------------------------------------------------------
# Validation, field by field, with the key path in every error.


class _Reader:
    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, key: str, reason: str) -> NoReturn:
        raise StrategyError(self.source, key or "<root>", reason)

    def fields(
        self, raw: object, key: str, required: tuple[str, ...], optional: tuple[str, ...] = ()
    ) -> dict[str, Any]:
        if not isinstance(raw, dict):
            self.fail(key, f"must be a mapping with keys {', '.join(required + optional)}; got {_kind(raw)}")
        for k in raw:
            if not isinstance(k, str):
                self.fail(key, f"keys must be strings, got {k!r}")
            if k not in required and k not in optional:
                self.fail(_join(key, k), f"unknown key; allowed here: {', '.join(required + optional)}")
        for k in required:
            if k not in raw:
                self.fail(_join(key, k), "missing required key")
        return raw

    def text(self, raw: object, key: str, max_len: int | None = None) -> str:
        if not isinstance(raw, str) or not raw.strip():
            self.fail(key, f"must be a non-empty string; got {_kind(raw)}")
        if max_len is not None and len(raw) > max_len:
            self.fail(key, f"must be at most {max_len} characters")
        return raw

    def ident(self, raw: object, key: str, max_len: int = _ID_MAX) -> str:
        value = self.text(raw, key, max_len)
        if not _ID.match(value):
            self.fail(key, f"{value!r} is not an id: use lower-case letters, digits and _ (starting with a letter)")
        return value

    def whole(self, raw: object, key: str, minimum: int) -> int:
        if isinstance(raw, bool) or not isinstance(raw, int):
            self.fail(key, f"must be a whole number; got {_kind(raw)}")
        if raw < minimum:
            self.fail(key, f"must be at least {minimum}; got {raw}")
        return raw

    def items(self, raw: object, key: str, allow_empty: bool = False) -> list[Any]:
        if not isinstance(raw, list):
            self.fail(key, f"must be a list; got {_kind(raw)}")
        if not raw and not allow_empty:
            self.fail(key, "must not be empty")
        return raw

    def choice(self, raw: object, key: str, enum: type[StepKind | Channel | StopCondition]) -> Any:
        allowed = [m.value for m in enum]
        if not isinstance(raw, str) or raw not in allowed:
            self.fail(key, f"unknown value {raw!r}; allowed: {', '.join(allowed)}")
        return enum(raw)

    # --- the document -------------------------------------------------------------------------------------------

    def strategy(self, raw: object) -> Strategy:
        doc = self.fields(raw, "", ("name", "version", "split", "segments", "ladders"), ("description",))
        name = self.text(doc["name"], "name", 128)
        version = doc["version"]
        if isinstance(version, bool) or not isinstance(version, int | str) or not str(version).strip():
            self.fail("version", f"must be a number or a non-empty string; got {_kind(version)}")
        description = self.text(doc["description"], "description") if "description" in doc else ""
        split = self.split(doc["split"], "split")
        ladders = self.ladders(doc["ladders"], "ladders")
        segments = self.segments(doc["segments"], "segments", split, ladders)
        used = {lid for s in segments for lid in s.ladder_by_arm.values()}
        for lid in ladders:
            if lid not in used:
                self.fail(_join("ladders", lid), "defined but used by no segment (a typo in a segment's ladder?)")
        return Strategy(name, str(version), split, segments, ladders, description)

    def split(self, raw: object, key: str) -> Split:
        doc = self.fields(raw, key, ("salt", "arms"))
        salt = self.text(doc["salt"], _join(key, "salt"), 128)
        arms_key = _join(key, "arms")
        arms_raw = doc["arms"]
        if not isinstance(arms_raw, dict) or not arms_raw:
            self.fail(arms_key, f"must map each arm name to its share in percent (champion: 80); got {_kind(arms_raw)}")
        arms = []
        for name, share in arms_raw.items():
            arm_key = _join(arms_key, str(name))
            self.ident(name, arm_key, _ARM_MAX)
            if isinstance(share, bool) or not isinstance(share, int | Decimal):
                self.fail(arm_key, f"share must be a percentage such as 80 or 12.5; got {_kind(share)}")
            value = Decimal(share)
            if not value.is_finite() or value <= 0 or value > 100:
                self.fail(arm_key, f"share must be more than 0 and at most 100; got {share}")
            if (value * 100) != (value * 100).to_integral_value():
                self.fail(arm_key, f"share {share} is finer than 0.01 percent")
            arms.append(Arm(name, value))
        total = sum((a.share for a in arms), Decimal(0))
        if total != 100:
            self.fail(arms_key, f"shares must add up to 100; they add up to {total}")
        return Split(salt, tuple(arms))

    def predicates(self, raw: object, key: str) -> tuple[Predicate, ...]:
        out = []
        for i, item in enumerate(self.items(raw, key, allow_empty=True)):
            item_key = f"{key}[{i}]"
            if not isinstance(item, dict) or len(item) != 1:
                self.fail(item_key, f"each condition is one `predicate: value` pair; got {_kind(item)}")
            ((name, value),) = item.items()
            cls = VOCABULARY.get(name) if isinstance(name, str) else None
            if cls is None:
                self.fail(item_key, f"unknown predicate {name!r}; known: {', '.join(sorted(VOCABULARY))}")
            try:
                out.append(cls.parse(value))
            except (TypeError, ValueError) as exc:
                self.fail(_join(item_key, name), str(exc))
        return tuple(out)

    def ladders(self, raw: object, key: str) -> dict[str, Ladder]:
        if not isinstance(raw, dict) or not raw:
            self.fail(key, f"must map each ladder id to its steps; got {_kind(raw)}")
        out = {}
        for lid, body in raw.items():
            ladder_key = _join(key, str(lid))
            self.ident(lid, ladder_key)
            doc = self.fields(body, ladder_key, ("steps",), ("description",))
            if "description" in doc:
                self.text(doc["description"], _join(ladder_key, "description"))
            steps_key = _join(ladder_key, "steps")
            steps: list[Step] = []
            for i, step_raw in enumerate(self.items(doc["steps"], steps_key)):
                step = self.step(step_raw, f"{steps_key}[{i}]")
                if any(s.id == step.id for s in steps):
                    self.fail(f"{steps_key}[{i}].id", f"duplicate step id {step.id!r} in ladder {lid!r}")
                steps.append(step)
            out[lid] = Ladder(lid, tuple(steps))
        return out

    def step(self, raw: object, key: str) -> Step:
        doc = self.fields(
            raw, key, ("id", "kind", "channel", "template", "priority", "when", "repeat"), ("stop_if", "description")
        )
        if "description" in doc:
            self.text(doc["description"], _join(key, "description"))
        kind = self.choice(doc["kind"], _join(key, "kind"), StepKind)
        channel = self.choice(doc["channel"], _join(key, "channel"), Channel)
        if channel not in CHANNELS_FOR_KIND[kind]:
            allowed = ", ".join(sorted(c.value for c in CHANNELS_FOR_KIND[kind]))
            reason = f"a {kind.value} step cannot use channel {channel.value}; allowed: {allowed}"
            self.fail(_join(key, "channel"), reason)
        stop_if = ALL_STOP_CONDITIONS
        if "stop_if" in doc:
            stop_key = _join(key, "stop_if")
            listed = [
                self.choice(c, f"{stop_key}[{i}]", StopCondition)
                for i, c in enumerate(self.items(doc["stop_if"], stop_key, allow_empty=True))
            ]
            if len(set(listed)) != len(listed):
                self.fail(stop_key, "lists a condition twice")
            stop_if = frozenset(listed)
        return Step(
            id=self.ident(doc["id"], _join(key, "id")),
            kind=kind,
            channel=channel,
            template=self.text(doc["template"], _join(key, "template"), _TEMPLATE_MAX),
            priority=self.whole(doc["priority"], _join(key, "priority"), 1),
            when=self.predicates(doc["when"], _join(key, "when")),
            repeat=self.repeat(doc["repeat"], _join(key, "repeat")),
            stop_if=stop_if,
        )

    def repeat(self, raw: object, key: str) -> Repeat:
        if raw == "once":
            return Repeat(None)
        if isinstance(raw, dict):
            doc = self.fields(raw, key, ("every_days",))
            return Repeat(self.whole(doc["every_days"], _join(key, "every_days"), 1))
        self.fail(key, f"must be `once` or `{{every_days: N}}`; got {_kind(raw)}")

    def segments(self, raw: object, key: str, split: Split, ladders: Mapping[str, Ladder]) -> tuple[Segment, ...]:
        out: list[Segment] = []
        for i, seg_raw in enumerate(self.items(raw, key)):
            seg_key = f"{key}[{i}]"
            doc = self.fields(seg_raw, seg_key, ("id", "when", "ladder"), ("description",))
            if "description" in doc:
                self.text(doc["description"], _join(seg_key, "description"))
            sid = self.ident(doc["id"], _join(seg_key, "id"))
            if any(s.id == sid for s in out):
                self.fail(_join(seg_key, "id"), f"duplicate segment id {sid!r}")
            when = self.predicates(doc["when"], _join(seg_key, "when"))
            ladder_key = _join(seg_key, "ladder")
            choice = doc["ladder"]
            if isinstance(choice, str):
                by_arm = {arm: choice for arm in split.arm_names}
                keys = {arm: ladder_key for arm in split.arm_names}
            elif isinstance(choice, dict):
                missing = [a for a in split.arm_names if a not in choice]
                extra = [str(a) for a in choice if a not in split.arm_names]
                if missing or extra:
                    self.fail(
                        ladder_key,
                        f"must name a ladder for exactly the arms {', '.join(split.arm_names)}"
                        + (f"; missing {', '.join(missing)}" if missing else "")
                        + (f"; unknown {', '.join(extra)}" if extra else ""),
                    )
                by_arm = {arm: self.text(choice[arm], _join(ladder_key, arm)) for arm in split.arm_names}
                keys = {arm: _join(ladder_key, arm) for arm in split.arm_names}
            else:
                self.fail(ladder_key, f"must be a ladder id, or a mapping of arm -> ladder id; got {_kind(choice)}")
            for arm, lid in by_arm.items():
                if lid not in ladders:
                    defined = ", ".join(ladders)
                    self.fail(keys[arm], f"ladder {lid!r} is not defined under `ladders`; defined: {defined}")
            out.append(Segment(sid, when, by_arm))
        return tuple(out)


def _join(key: str, child: str) -> str:
    return f"{key}.{child}" if key else child


def _kind(value: object) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"{type(value).__name__} {value!r}"
