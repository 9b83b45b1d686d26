"""Rich renderings shared by the command line and the demo, so both show the same numbers the same way."""

from __future__ import annotations

from rich.table import Table

from duecourse.services.reports import RollRates


def roll_rate_table(rr: RollRates) -> Table:
    """The roll-rate matrix: rows are buckets on the first day, cells the share of the row (and count)."""
    table = Table(title=f"Roll rates {rr.start} → {rr.end} (row: bucket on {rr.start}; % of row, count)")
    table.add_column("from \\ to")
    for b in rr.buckets:
        table.add_column(b, justify="right")
    table.add_column("loans", justify="right")
    for b, row in zip(rr.buckets, rr.counts, strict=True):
        total = sum(row)
        table.add_row(b, *(f"{100 * n / total:.1f}% ({n:,})" if n else "·" for n in row), f"{total:,}")
    return table
