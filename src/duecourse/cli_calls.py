"""Placeholder command group: filled in by its owner (issue 4)."""

from __future__ import annotations

import typer

calls_app = typer.Typer(no_args_is_help=True, help="The agent work queue: call tasks and their outcomes.")
