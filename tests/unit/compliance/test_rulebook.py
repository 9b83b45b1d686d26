"""The rulebook loader is strict: every problem stops loading and names the file and the key."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from duecourse.compliance.rulebook import load_rulebook
from duecourse.domain.errors import RulebookError

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def rules(tmp_path: Path) -> Path:
    target = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", target)
    return target


def _edit(path: Path, change: object) -> None:
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(doc)  # type: ignore[operator]
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")


def test_the_shipped_rulebook_loads_with_every_version_cited() -> None:
    book = load_rulebook(ROOT / "rules")
    assert set(book.packs) == {"cn", "us", "uk", "house"}
    assert all(v.citations for r in book.rules for v in r.versions)
    assert len({r.id for r in book.rules}) == len(book.rules)


def test_the_version_changes_with_the_content(rules: Path) -> None:
    before = load_rulebook(rules).version
    _edit(rules / "cn" / "fees.yaml", lambda d: d.update(description="Changed."))
    assert load_rulebook(rules).version != before


@pytest.mark.parametrize(
    ("change", "key", "reason"),
    [
        (lambda d: d["versions"][0]["citations"].clear(), "versions.0.citations", "at least 1"),
        (lambda d: d["versions"][0].update(effective_from="2018-02-30"), "versions.0.effective_from", "date"),
        (lambda d: d.update(colour="red"), "colour", "Extra inputs"),
        (lambda d: d["versions"][0]["citations"][0].pop("url"), "versions.0.citations.0.url", "Field required"),
        (lambda d: d.update(check="no_such_check"), "check", "unknown check"),
        (lambda d: d["versions"][0].update(values={"limit": 3}), "versions.0.values.limit", "Extra inputs"),
        (lambda d: d["versions"].append(dict(d["versions"][0])), "versions", "strictly increasing"),
        (lambda d: d.update(kind="rumour"), "kind", "Input should be"),
    ],
)
def test_a_broken_rule_names_file_and_key(rules: Path, change: object, key: str, reason: str) -> None:
    path = rules / "cn" / "fees.yaml"
    _edit(path, change)
    with pytest.raises(RulebookError) as caught:
        load_rulebook(rules)
    assert caught.value.path == str(path)
    assert caught.value.key == key
    assert reason in caught.value.reason


def test_a_duplicate_rule_id_is_refused(rules: Path) -> None:
    shutil.copy(rules / "cn" / "fees.yaml", rules / "cn" / "fees_again.yaml")
    with pytest.raises(RulebookError, match="already defined"):
        load_rulebook(rules)


def test_a_pack_named_unlike_its_folder_is_refused(rules: Path) -> None:
    _edit(rules / "uk" / "pack.yaml", lambda d: d.update(pack="gb"))
    with pytest.raises(RulebookError) as caught:
        load_rulebook(rules)
    assert caught.value.key == "pack" and caught.value.path.endswith("uk/pack.yaml")
