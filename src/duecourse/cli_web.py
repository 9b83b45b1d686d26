"""`duecourse web …`: serve the HTTP face (the public /verify page and the APIs) and read its scam alerts."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from duecourse import bootstrap

web_app = typer.Typer(no_args_is_help=True, help="Serve the HTTP API and the public verification page.")
console = Console()


@web_app.command("serve")
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on (loopback by default: put a proxy in front).")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 1,
) -> None:
    """Run the web app under uvicorn. No `server` header is sent, so the software and its version are not
    announced; X-Forwarded-For is trusted only from a proxy on 127.0.0.1 (uvicorn's default)."""
    import uvicorn

    from duecourse.web.app import create_app, warmed

    if workers == 1:
        uvicorn.run(create_app(warmed(bootstrap.build())), host=host, port=port, server_header=False, access_log=False)
    else:
        # Each worker process builds its own container (engines and pools are not shared across processes).
        uvicorn.run(
            "duecourse.web.app:from_environment",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            server_header=False,
            access_log=False,
        )


@web_app.command("alerts")
def alerts(as_json: Annotated[bool, typer.Option("--json", help="One JSON array instead of a table.")] = False) -> None:
    """Scam-campaign alerts: numbers named in a burst of failed checks on /verify (likely fake messages)."""
    from duecourse.services.verification import alerts as list_alerts

    with bootstrap.build().engine.connect() as conn:
        rows = list_alerts(conn)
    if as_json:
        sys.stdout.write(json.dumps(rows, ensure_ascii=False, indent=2, default=str) + "\n")
        return
    if not rows:
        console.print("No alerts.")
        return
    table = Table(title="Verification alerts (likely scam campaigns)")
    for col in ("alert", "kind", "number", "borrower", "failures", "first seen (UTC)", "last seen (UTC)", "hash"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            str(r["alert_key"]),
            r["kind"],
            r["masked"],
            r["borrower_id"] or "—",
            str(r["failures"]),
            r["first_seen"].strftime("%Y-%m-%d %H:%M"),
            r["last_seen"].strftime("%Y-%m-%d %H:%M"),
            r["named_hash"][:12],
        )
    console.print(table)


@web_app.command("index-identities")
def index_identities() -> None:
    """Rebuild the keyed index of borrowers' own phone and ID numbers, so scam alerts name the borrower."""
    from duecourse.services.verification import reindex_identities

    c = bootstrap.build()
    borrowers, rows = reindex_identities(c.engine, c.cipher, c.signer, c.clock())
    console.print(f"Indexed {rows:,} numbers for {borrowers:,} borrowers.")
