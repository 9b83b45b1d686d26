"""`duecourse rules …` and `duecourse compliance …` as another system would call them: JSON in, JSON out, exit codes."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

from tests.e2e.conftest import ROOT, Cli

EXAMPLE = ROOT / "examples" / "compliance" / "cn-call.json"


def _proposal(**changes: object) -> dict[str, object]:
    doc: dict[str, object] = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    doc.update(changes)
    return doc


def _write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def _audited(cli: Cli) -> list[tuple[str, str]]:
    with sqlite3.connect(cli.db) as con:
        return [(a, e) for a, e in con.execute("select action, entity_id from audit_entry order by seq")]


def test_an_allowed_proposal_exits_0_and_is_audited(cli: Cli) -> None:
    out = json.loads(cli("compliance", "check", str(EXAMPLE)).stdout)
    assert out["decision"] == "allow" and out["violations"] == [] and out["rules_applied"] > 5
    assert out["rulebook_version"].startswith("rb-")
    assert _audited(cli) == [("compliance.allow", "cn-call-1")]


def test_a_night_call_is_blocked_with_rule_citation_and_next_moment(cli: Cli, tmp_path: Path) -> None:
    path = _write(tmp_path, "night.json", json.dumps(_proposal(moment="2026-03-03T22:00:00+08:00")))
    out = json.loads(cli("compliance", "check", path, expect=1).stdout)
    assert out["decision"] == "block"
    hours = next(v for v in out["violations"] if v["rule"] == "CN.HOURS")
    assert hours["verdict"] == "violation" and hours["title"]["zh"] and hours["citations"][0]["url"].startswith("http")
    assert out["next_allowed_at"].startswith("2026-03-04T08:")
    assert _audited(cli) == [("compliance.block", "cn-call-1")]


def test_invalid_input_exits_2_naming_the_field(cli: Cli, tmp_path: Path) -> None:
    bad = _proposal()
    bad["debtor"] = {**bad["debtor"], "time_zones": ["Mars/Olympus"]}  # type: ignore[dict-item]
    out = json.loads(cli("compliance", "check", _write(tmp_path, "bad.json", json.dumps(bad)), expect=2).stdout)
    assert out["error"]["field"] == "debtor.time_zones.0" and "Mars/Olympus" in out["error"]["reason"]
    out = json.loads(cli("compliance", "check", _write(tmp_path, "x.json", "{not json"), expect=2).stdout)
    assert out["error"]["field"] == "(document)"
    assert _audited(cli) == []


def test_batch_reads_and_writes_json_lines_and_reports_bad_lines_in_place(cli: Cli, tmp_path: Path) -> None:
    lines = [
        json.dumps(_proposal(id="a")),
        json.dumps(_proposal(id="b", moment="2026-03-03T23:30:00+08:00")),
        json.dumps({**_proposal(id="c"), "channel": "pigeon"}),
        json.dumps(_proposal(id="d", jurisdiction={"country": "FR"})),
    ]
    proc = cli("compliance", "check", "--batch", _write(tmp_path, "in.jsonl", "\n".join(lines) + "\n"), expect=2)
    out = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [o.get("proposal_id") for o in out] == ["a", "b", None, "d"]
    assert [o.get("decision") for o in out] == ["allow", "block", None, "block"]
    assert out[2] == {"line": 3, "error": {"field": "channel", "reason": out[2]["error"]["reason"]}}
    assert [v["rule"] for v in out[3]["violations"]] == ["ENGINE.NO_PACK"]
    assert out[1]["next_allowed_at"] is not None
    assert sorted(_audited(cli)) == [("compliance.allow", "a"), ("compliance.block", "b"), ("compliance.block", "d")]


def test_explain_lists_every_rule_with_its_reason(cli: Cli, tmp_path: Path) -> None:
    path = _write(tmp_path, "night.json", json.dumps(_proposal(moment="2026-03-03T22:00:00+08:00")))
    doc = json.loads(cli("compliance", "explain", path, "--json", expect=1).stdout)
    verdicts = {e["rule"]: e["verdict"] for e in doc["evaluated"]}
    assert verdicts["CN.HOURS"] == "violation" and verdicts["CN.CONDUCT.FEES"] == "pass"
    assert verdicts["CN.VISIT.STAFF"] == "not_applicable"
    text = cli("compliance", "explain", path, expect=1).stdout
    assert "BLOCK" in text and "CN.HOURS" in text and "next allowed moment" in text


def test_rules_validate_list_and_show(cli: Cli) -> None:
    out = cli("rules", "validate").stdout
    assert "rules in 4 packs (cn, house, uk, us)" in out
    listed = cli.json("rules", "list")["rules"]
    assert {r["pack"] for r in listed} == {"cn", "us", "uk", "house"} and len(listed) >= 40
    shown = cli.json("rules", "show", "CN.HOURS")
    assert shown["versions"] and all(v["citations"] for v in shown["versions"])
    cli("rules", "show", "NO.SUCH.RULE", expect=2)


def test_rules_validate_names_the_file_and_key_of_a_broken_rule(cli: Cli, tmp_path: Path) -> None:
    broken = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", broken)
    target = broken / "cn" / "fees.yaml"
    target.write_text(
        target.read_text(encoding="utf-8").replace("effective_from: 2018-03-28", "effective_from: 2018-13-28")
    )
    err = cli("rules", "validate", str(broken), expect=1).stderr
    assert "cn/fees.yaml" in err and "versions.0.effective_from" in err
