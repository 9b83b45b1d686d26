"""Placeholder command group: filled in by its owner (issue 4)."""

from __future__ import annotations

import typer

visits_app = typer.Typer(
    no_args_is_help=True,
    help="Door visits: staff, teams, eligibility, notices, scheduling, routes, check-in and outcomes.",
)
