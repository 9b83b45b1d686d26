"""`duecourse rules …` and `duecourse compliance …`: the rulebook and the checker, for people and for other systems.

`compliance check` speaks JSON (one proposal) or JSON Lines (`--batch`) and answers with exit status
0 allow, 1 block, 2 invalid input (the field at fault is named); docs/compliance-input.md documents the
input. Every decision is audited.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any, TextIO

import typer
from rich.console import Console
from rich.table import Table

from duecourse import bootstrap
from duecourse.compliance.engine import decide
from duecourse.compliance.facts import Proposal, proposal_json_schema
from duecourse.compliance.rulebook import Rulebook, load_rulebook
from duecourse.domain.errors import RulebookError
from duecourse.services.compliance import (
    InvalidInput,
    audit_decisions,
    decide_many,
    parse_json,
    parse_json_lines,
)

rules_app = typer.Typer(no_args_is_help=True, help="The rule packs: list, show, validate.")
compliance_app = typer.Typer(no_args_is_help=True, help="Check proposed contacts against the rulebook.")

console = Console()
err = Console(stderr=True)

JsonOut = Annotated[bool, typer.Option("--json", help="Print JSON.")]
InputFile = Annotated[str, typer.Argument(help="A JSON file, or - for standard input.")]


def _dump(value: Any, out: TextIO = sys.stdout, indent: int | None = 2) -> None:
    out.write(json.dumps(value, ensure_ascii=False, indent=indent, default=str) + "\n")


def _book(path: Path | None = None) -> Rulebook:
    try:
        return load_rulebook(path) if path is not None else bootstrap.build().rulebook
    except RulebookError as exc:
        err.print(f"[red]invalid rulebook:[/red] {exc}")
        raise typer.Exit(1) from None


@rules_app.command("list")
def rules_list(
    pack: Annotated[str | None, typer.Option(help="Only this pack.")] = None, as_json: JsonOut = False
) -> None:
    """Every rule: id, pack, kind, check, title, in force since, last reviewed."""
    book = _book()
    rows: list[dict[str, Any]] = [
        {
            "id": r.id,
            "pack": r.pack,
            "kind": r.kind,
            "check": r.check.kind,
            "title": r.title.en,
            "title_zh": r.title.zh,
            "since": r.versions[0].effective_from.isoformat(),
            "repealed": r.versions[-1].params is None,
            "last_reviewed": r.last_reviewed.isoformat(),
        }
        for r in book.rules
        if pack is None or r.pack == pack
    ]
    if as_json:
        _dump({"rulebook_version": book.version, "rules": rows})
        return
    table = Table(title=f"Rulebook {book.version}: {len(rows)} rules")
    for col in ("id", "pack", "kind", "check", "title", "since", "reviewed"):
        table.add_column(col)
    for row in rows:
        title = row["title"] + (f" / {row['title_zh']}" if row["title_zh"] else "")
        table.add_row(row["id"], row["pack"], row["kind"], row["check"], title, row["since"], row["last_reviewed"])
    console.print(table)


@rules_app.command("show")
def rules_show(rule_id: str, as_json: JsonOut = False) -> None:
    """One rule with every version, its parameters and citations."""
    book = _book()
    try:
        rule = book.get(rule_id)
    except KeyError:
        err.print(f"[red]no rule {rule_id!r}[/red] (see `duecourse rules list`)")
        raise typer.Exit(2) from None
    versions: list[dict[str, Any]] = [
        {
            "effective_from": v.effective_from.isoformat(),
            "effective_to": None if v.effective_to is None else v.effective_to.isoformat(),
            "values": None if v.params is None else v.params.model_dump(mode="json"),
            "citations": [c.model_dump(exclude_none=True) for c in v.citations],
        }
        for v in rule.versions
    ]
    doc: dict[str, Any] = {
        "id": rule.id,
        "pack": rule.pack,
        "country": rule.country,
        "title": rule.title.model_dump(exclude_none=True),
        "description": rule.description,
        "check": rule.check.kind,
        "obligation": rule.obligation,
        "kind": rule.kind,
        "scope": rule.scope.model_dump(exclude_none=True),
        "last_reviewed": rule.last_reviewed.isoformat(),
        "file": rule.path,
        "versions": versions,
    }
    if as_json:
        _dump(doc)
        return
    console.print(f"[bold]{rule.id}[/bold] — {rule.title.en}" + (f" / {rule.title.zh}" if rule.title.zh else ""))
    console.print(f"{rule.description}\npack {rule.pack}, {rule.kind}, check {rule.check.kind}, file {rule.path}")
    for v in versions:
        until = v["effective_to"] or "now"
        console.print(
            f"\n[bold]{v['effective_from']} → {until}[/bold]  values: {json.dumps(v['values'], ensure_ascii=False)}"
        )
        for c in v["citations"]:
            console.print(f"  {c['source']}, {c['article']} [{c['kind']}, {c['status']}] {c['url']}")
            if "quote" in c:
                console.print(f"    “{c['quote']}”")


@rules_app.command("validate")
def rules_validate(
    path: Annotated[Path | None, typer.Argument(help="A rules directory (default: the configured one).")] = None,
) -> None:
    """Load every pack strictly; exit 1 naming the file and key of the first problem."""
    book = _book(path or bootstrap.build().settings.rules_path)
    cited = sum(1 for r in book.rules if all(v.citations for v in r.versions))
    console.print(
        f"rulebook {book.version}: {len(book.rules)} rules in {len(book.packs)} packs "
        f"({', '.join(sorted(book.packs))}); {cited} of {len(book.rules)} rules cited in every version"
    )


@compliance_app.command("check")
def compliance_check(
    source: InputFile = "-",
    batch: Annotated[bool, typer.Option("--batch", help="Read and write JSON Lines, one proposal per line.")] = False,
) -> None:
    """Decide one proposal (JSON) or many (--batch). Exit 0 allow, 1 block, 2 invalid input."""
    c = bootstrap.build()
    book = _book()
    text = sys.stdin.read() if source == "-" else _read(source)
    parsed = parse_json_lines(text.splitlines()) if batch else [parse_json(text)]
    valid = [p for p in parsed if isinstance(p, Proposal)]
    if batch:  # the vectorised path
        decided = iter(decide_many(book, valid, c.check_context)) if valid else iter(())
    else:  # the live path: one proposal, with the number of rules applied
        decided = iter([decide(book, p, c.check_context).to_json() for p in valid])
    out: list[dict[str, Any]] = []
    for item in parsed:
        out.append(item.to_json() if isinstance(item, InvalidInput) else next(decided))
    decisions = [d for d in out if "decision" in d]
    audit_decisions(c.engine, decisions, actor="cli", origin="cli", now=c.clock())
    for d in out:
        _dump(d, indent=None if batch else 2)
    if len(decisions) < len(out):
        raise typer.Exit(2)
    raise typer.Exit(1 if any(d["decision"] == "block" for d in decisions) else 0)


@compliance_app.command("explain")
def compliance_explain(source: InputFile = "-", as_json: JsonOut = False) -> None:
    """Every rule evaluated for one proposal, and why it passed, did not apply, or blocked."""
    c = bootstrap.build()
    book = _book()
    parsed = parse_json(sys.stdin.read() if source == "-" else _read(source))
    if isinstance(parsed, InvalidInput):
        _dump(parsed.to_json())
        raise typer.Exit(2)
    verdict = decide(book, parsed, c.check_context)
    doc = verdict.to_json(explain=True)
    audit_decisions(c.engine, [doc], actor="cli", origin="cli", now=c.clock())
    if as_json:
        _dump(doc)
    else:
        colour = "green" if verdict.decision == "allow" else "red"
        console.print(
            f"[bold {colour}]{verdict.decision.upper()}[/bold {colour}] {parsed.id} — rulebook {book.version}, "
            f"{verdict.applied} rules applied"
        )
        table = Table()
        for col in ("rule", "verdict", "why"):
            table.add_column(col)
        for o in verdict.outcomes:
            style = {"pass": "green", "not_applicable": "dim"}.get(o.verdict, "red")
            table.add_row(o.rule_id, f"[{style}]{o.verdict}[/{style}]", o.facts)
        console.print(table)
        if verdict.next_allowed_at is not None:
            console.print(f"next allowed moment: {verdict.next_allowed_at.isoformat()}")
    raise typer.Exit(1 if verdict.decision == "block" else 0)


@compliance_app.command("schema")
def compliance_schema() -> None:
    """Print the JSON Schema of a proposal (docs/compliance-input.schema.json)."""
    _dump(proposal_json_schema())


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        _dump(InvalidInput(1, "(file)", f"cannot read {path}: {exc.strerror}").to_json())
        raise typer.Exit(2) from None
