"""The strict strategy loader: the shipped default loads, and every kind of mistake names the file and the key."""

from __future__ import annotations

import textwrap
from decimal import Decimal
from pathlib import Path

import pytest

from duecourse.domain.errors import StrategyError
from duecourse.strategy.loader import load_strategy, parse_strategy
from duecourse.strategy.model import Channel, StepKind, StopCondition
from duecourse.strategy.predicates import DaysPastDueAtLeast, FlagPresent, OverdueAmountAtLeast

ROOT = Path(__file__).resolve().parents[3]

GOOD = """\
name: test
version: 3
split:
  salt: s1
  arms: {champion: 80, challenger: 20}
segments:
  - id: vulnerable
    when:
      - flag_present: elderly
    ladder: gentle
  - id: everyone
    when: []
    ladder: {champion: standard, challenger: early}
ladders:
  standard:
    steps:
      - id: call_1
        kind: call
        channel: call
        template: call.first
        priority: 40
        when:
          - days_past_due_at_least: 8
        repeat: {every_days: 3}
      - id: sms_1
        kind: sms
        channel: sms
        template: sms.first
        priority: 60
        when:
          - days_past_due_at_least: 1
          - overdue_amount_at_least: 100.00
        repeat: once
        stop_if: [paid, hold]
  early:
    steps:
      - id: call_1
        kind: call
        channel: call
        template: call.first
        priority: 40
        when:
          - days_past_due_at_least: 4
        repeat: {every_days: 3}
  gentle:
    steps:
      - id: sms_1
        kind: sms
        channel: sms
        template: sms.gentle
        priority: 60
        when:
          - days_past_due_at_least: 1
        repeat: once
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "strategy.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_shipped_default_strategy_loads_with_its_segments_ladders_and_split() -> None:
    s = load_strategy(ROOT / "strategies" / "default.yaml")
    assert [seg.id for seg in s.segments] == ["elderly", "disabled", "aged_70_plus", "small_balance", "standard"]
    assert [(a.name, a.share) for a in s.split.arms] == [("champion", Decimal(80)), ("challenger", Decimal(20))]
    assert s.segments[-1].ladder_by_arm == {"champion": "standard", "challenger": "standard_early_call"}
    # The seed's rules that the default must carry: no visit candidate for vulnerable debtors or small balances.
    for ladder_id in ("gentle", "small_balance"):
        kinds = {step.kind for step in s.ladders[ladder_id].steps}
        assert StepKind.DOOR_VISIT_CANDIDATE not in kinds and StepKind.PRE_VISIT_NOTICE not in kinds
    standard = [step.kind for step in s.ladders["standard"].steps]
    assert standard.index(StepKind.DOOR_VISIT_CANDIDATE) < standard.index(StepKind.PRE_VISIT_NOTICE)  # worst first
    assert len(s.digest) == 64


def test_a_valid_file_is_read_into_typed_values(tmp_path: Path) -> None:
    s = load_strategy(write(tmp_path, GOOD))
    assert (s.name, s.version) == ("test", "3")
    step = s.ladders["standard"].steps[1]
    assert step.when == (DaysPastDueAtLeast(1), OverdueAmountAtLeast(Decimal("100.00")))
    assert step.channel is Channel.SMS and step.repeat.every_days is None
    assert step.stop_if == frozenset({StopCondition.PAID, StopCondition.HOLD})
    # stop_if left out means every stop condition applies
    assert s.ladders["standard"].steps[0].stop_if == frozenset(StopCondition)
    assert s.ladders["standard"].steps[0].repeat.every_days == 3
    assert s.segments[0].when == (FlagPresent("elderly"),)
    assert s.segments[0].ladder_by_arm == {"champion": "gentle", "challenger": "gentle"}


def test_yaml_decimals_are_read_exactly_not_as_floats() -> None:
    s = parse_strategy(GOOD.replace("overdue_amount_at_least: 100.00", "overdue_amount_at_least: 0.1"))
    predicate = s.ladders["standard"].steps[1].when[1]
    assert isinstance(predicate, OverdueAmountAtLeast)
    assert predicate.amount == Decimal("0.1")  # float('0.1') would be 0.1000000000000000055...
    assert predicate.minor_thresholds()["CNY"] == 10


def test_the_digest_follows_meaning_not_formatting() -> None:
    base = parse_strategy(GOOD)
    reformatted = parse_strategy(
        "# a comment\n" + GOOD.replace("100.00", "100").replace("arms: {champion: 80, challenger: 20}",
                                                               "arms:\n    champion: 80\n    challenger: 20")
    )
    assert reformatted.digest == base.digest
    changed = parse_strategy(GOOD.replace("days_past_due_at_least: 8", "days_past_due_at_least: 9"))
    assert changed.digest != base.digest
    assert parse_strategy(GOOD.replace("salt: s1", "salt: s2")).digest != base.digest


# (description, text edit, expected key path, words expected in the reason)
BAD_CASES = [
    ("unknown top-level key", lambda t: t + "colour: red\n", "colour", "unknown key"),
    ("missing ladders", lambda t: t.split("ladders:")[0], "ladders", "missing"),
    (
        "unknown key in a step",
        lambda t: t.replace("        repeat: once\n        stop_if", "        repaet: once\n        stop_if"),
        "ladders.standard.steps[1].repaet",
        "unknown key",
    ),
    (
        "priority of the wrong type",
        lambda t: t.replace("priority: 40", "priority: high", 1),
        "ladders.standard.steps[0].priority",
        "whole number",
    ),
    (
        "unknown predicate",
        lambda t: t.replace("- days_past_due_at_least: 1\n          - overdue", "- dpd_over: 1\n          - overdue"),
        "ladders.standard.steps[1].when[0]",
        "unknown predicate 'dpd_over'",
    ),
    (
        "predicate value of the wrong type",
        lambda t: t.replace("overdue_amount_at_least: 100.00", "overdue_amount_at_least: [1]"),
        "ladders.standard.steps[1].when[1].overdue_amount_at_least",
        "amount",
    ),
    (
        "negative day threshold",
        lambda t: t.replace("days_past_due_at_least: 8", "days_past_due_at_least: -1"),
        "ladders.standard.steps[0].when[0].days_past_due_at_least",
        "at least 0",
    ),
    (
        "unknown step kind",
        lambda t: t.replace("kind: sms\n        channel: sms\n        template: sms.first",
                            "kind: telegram\n        channel: sms\n        template: sms.first"),
        "ladders.standard.steps[1].kind",
        "unknown value 'telegram'",
    ),
    (
        "unknown channel",
        lambda t: t.replace("channel: sms\n        template: sms.first",
                            "channel: pigeon\n        template: sms.first"),
        "ladders.standard.steps[1].channel",
        "unknown value 'pigeon'",
    ),
    (
        "a kind on a channel it cannot use",
        lambda t: t.replace("channel: sms\n        template: sms.first", "channel: call\n        template: sms.first"),
        "ladders.standard.steps[1].channel",
        "cannot use channel call",
    ),
    (
        "duplicate step ids in a ladder",
        lambda t: t.replace("      - id: sms_1\n        kind: sms\n        channel: sms\n        template: sms.first",
                            "      - id: call_1\n        kind: sms\n        channel: sms\n        template: sms.first"),
        "ladders.standard.steps[1].id",
        "duplicate step id 'call_1'",
    ),
    (
        "arm shares not adding up to 100",
        lambda t: t.replace("challenger: 20}", "challenger: 25}"),
        "split.arms",
        "add up to 100; they add up to 105",
    ),
    (
        "ladder referenced but missing",
        lambda t: t.replace("ladder: gentle", "ladder: gentel"),
        "segments[0].ladder",
        "'gentel' is not defined",
    ),
    (
        "per-arm ladder referenced but missing",
        lambda t: t.replace("challenger: early}", "challenger: earlier}"),
        "segments[1].ladder.challenger",
        "'earlier' is not defined",
    ),
    (
        "per-arm ladders not covering every arm",
        lambda t: t.replace("{champion: standard, challenger: early}", "{champion: standard}"),
        "segments[1].ladder",
        "missing challenger",
    ),
    (
        "a ladder no segment uses",
        lambda t: t.replace("ladder: gentle", "ladder: standard"),
        "ladders.gentle",
        "used by no segment",
    ),
    (
        "unknown stop condition",
        lambda t: t.replace("stop_if: [paid, hold]", "stop_if: [paid, sunday]"),
        "ladders.standard.steps[1].stop_if[1]",
        "unknown value 'sunday'",
    ),
    (
        "repeat neither once nor every_days",
        lambda t: t.replace("repeat: {every_days: 3}", "repeat: daily", 1),
        "ladders.standard.steps[0].repeat",
        "once",
    ),
    (
        "zero-day cadence",
        lambda t: t.replace("repeat: {every_days: 3}", "repeat: {every_days: 0}", 1),
        "ladders.standard.steps[0].repeat.every_days",
        "at least 1",
    ),
    (
        "duplicate segment id",
        lambda t: t.replace("id: everyone", "id: vulnerable"),
        "segments[1].id",
        "duplicate segment id",
    ),
    (
        "a condition that is not one pair",
        lambda t: t.replace("- flag_present: elderly", "- flag_present: elderly\n        flag_absent: disabled"),
        "segments[0].when[0]",
        "one `predicate: value` pair",
    ),
    (
        "an id that is not plain",
        lambda t: t.replace("id: call_1", "id: Call 1", 1),
        "ladders.standard.steps[0].id",
        "not an id",
    ),
    (
        "a date where a version belongs",
        lambda t: t.replace("version: 3", "version: 2026-01-01"),
        "version",
        "number or a non-empty string",
    ),
]


@pytest.mark.parametrize(("edit", "key", "words"), [c[1:] for c in BAD_CASES], ids=[c[0] for c in BAD_CASES])
def test_every_mistake_names_the_file_and_the_key(tmp_path: Path, edit, key: str, words: str) -> None:  # type: ignore[no-untyped-def]
    text = edit(GOOD)
    assert text != GOOD, "the edit must change the document"
    path = write(tmp_path, text)
    with pytest.raises(StrategyError) as caught:
        load_strategy(path)
    assert caught.value.path == str(path)
    assert caught.value.key == key
    assert words in caught.value.reason
    assert str(path) in str(caught.value) and key in str(caught.value)


def test_a_duplicate_yaml_key_is_refused_not_silently_overwritten(tmp_path: Path) -> None:
    text = GOOD.replace("        priority: 40\n", "        priority: 40\n        priority: 1\n", 1)
    path = write(tmp_path, text)
    with pytest.raises(StrategyError) as caught:
        load_strategy(path)
    assert caught.value.path == str(path)
    assert "duplicate key 'priority'" in caught.value.reason
    assert caught.value.key == f"line {text.splitlines().index('        priority: 1') + 1}"


def test_broken_yaml_and_a_missing_file_name_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "name: [unclosed\n")
    with pytest.raises(StrategyError) as caught:
        load_strategy(path)
    assert caught.value.path == str(path) and caught.value.key.startswith("line ")
    missing = tmp_path / "nope.yaml"
    with pytest.raises(StrategyError) as caught:
        load_strategy(missing)
    assert caught.value.path == str(missing) and caught.value.key == "<file>"


def test_a_document_that_is_not_a_mapping_is_refused_at_the_root() -> None:
    with pytest.raises(StrategyError) as caught:
        parse_strategy(textwrap.dedent("- just\n- a list\n"), "list.yaml")
    assert (caught.value.path, caught.value.key) == ("list.yaml", "<root>")


def test_shares_may_have_two_decimals_but_not_three() -> None:
    three_arms = GOOD.replace("arms: {champion: 80, challenger: 20}",
                              "arms: {champion: 80, challenger: 12.5, other: 7.5}")
    three_arms = three_arms.replace("{champion: standard, challenger: early}",
                                    "{champion: standard, challenger: early, other: early}")
    s = parse_strategy(three_arms)
    assert s.split.upper_bounds() == (("champion", 8000), ("challenger", 9250), ("other", 10000))
    with pytest.raises(StrategyError) as caught:
        parse_strategy(three_arms.replace("12.5, other: 7.5", "12.505, other: 7.495"), "t.yaml")
    assert caught.value.key == "split.arms.challenger" and "finer than 0.01" in caught.value.reason
