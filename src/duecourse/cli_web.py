"""Placeholder command group: filled in by its owner (issue 4)."""

from __future__ import annotations

import typer

web_app = typer.Typer(no_args_is_help=True, help="Serve the HTTP API and the public verification page.")
