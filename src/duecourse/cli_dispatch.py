"""Placeholder command group: filled in by its owner (issue 4)."""

from __future__ import annotations

import typer

dispatch_app = typer.Typer(
    no_args_is_help=True, help="Send allowed actions from the outbox through the channels; dead letters."
)
