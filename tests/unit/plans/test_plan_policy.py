"""The plan policy loader refuses what it cannot trust, naming the file and the key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from duecourse.domain.errors import PolicyError
from duecourse.plans.policy import load_plan_policy

SHIPPED = Path(__file__).resolve().parents[3] / "policy" / "plans.yaml"


def test_the_shipped_policy_loads_with_five_years_for_credit_cards() -> None:
    policy = load_plan_policy(SHIPPED)
    assert policy.max_term_for("credit_card") == 60 and policy.max_term_for("anything") == 36
    assert policy.standard_for("CN-11", 3) == 380_000 + 2 * 170_000
    assert policy.standard_for("CN-65", 1) == 250_000  # not listed: the '*' standard


def _broken(tmp_path: Path, change: str) -> Path:
    doc = yaml.safe_load(SHIPPED.read_text(encoding="utf-8"))
    exec(change, {"doc": doc})
    path = tmp_path / "plans.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("change", "key", "why"),
    [
        ("doc['options']['restructure']['term'] = [6]", "options.restructure.term", "unknown key"),
        ("doc['affordability']['max_share_of_disposable'] = 0.8", "affordability.max_share_of_disposable", "string"),
        ("doc['affordability']['max_share_of_disposable'] = '1.5'", "affordability.max_share_of_disposable", "between"),
        ("del doc['products']['*']", "products", "'*'"),
        ("doc['options']['suspension']['waive'] = ['principal']", "options.suspension.waive", "never waived"),
        ("doc['completion'][-1]['up_to'] = '2.00'", "completion[4].up_to", "between"),
        ("del doc['authority']['agent']", "authority.agent", "missing"),
        ("doc['options']['restructure']['terms'] = [12, 0]", "options.restructure.terms[1]", "at least 1"),
    ],
)
def test_a_broken_policy_is_refused_naming_the_key(tmp_path: Path, change: str, key: str, why: str) -> None:
    path = _broken(tmp_path, change)
    with pytest.raises(PolicyError) as caught:
        load_plan_policy(path)
    assert caught.value.path == str(path) and caught.value.key == key and why in caught.value.reason
