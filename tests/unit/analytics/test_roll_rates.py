"""The shipped roll-rate matrix is exactly what the documented estimate gives on the real UCI data."""

import json
import os
from pathlib import Path

import polars as pl

from duecourse.analytics.roll_rates import MONTHLY_STATES, estimate_from_uci, uci_state

ROOT = Path(__file__).resolve().parents[3]
# The project's shared data sits beside the checkout (../shared/data); DUECOURSE_SHARED_DATA overrides it.
SHARED_DATA = Path(os.environ.get("DUECOURSE_SHARED_DATA", ROOT.parent / "shared" / "data"))
UCI = SHARED_DATA / "uci_credit_default" / "default_of_credit_card_clients.csv"
SHIPPED = ROOT / "src" / "duecourse" / "demo" / "roll_rates_uci.json"


def test_shipped_matrix_matches_a_fresh_estimate_from_the_uci_file() -> None:
    shipped = json.loads(SHIPPED.read_text())
    fresh = estimate_from_uci(pl.read_csv(UCI))
    assert shipped["states"] == list(MONTHLY_STATES)
    assert shipped["counts"] == [list(r) for r in fresh.counts]
    # five month pairs per account, 30,000 accounts
    assert sum(map(sum, fresh.counts)) == 150_000


def test_uci_codes_map_to_monthly_buckets() -> None:
    codes = pl.DataFrame({"c": [-2, -1, 0, 1, 2, 3, 4, 7, 8]})
    assert codes.select(uci_state(pl.col("c"))).to_series().to_list() == [0, 0, 0, 1, 1, 2, 3, 6, 6]


def test_no_account_moves_more_than_one_bucket_forward_in_a_month() -> None:
    m = estimate_from_uci(pl.read_csv(UCI))
    for i, row in enumerate(m.counts):
        assert all(n == 0 for j, n in enumerate(row) if j > i + 1), f"row {MONTHLY_STATES[i]} jumps ahead"
    rates = m.rates()
    assert abs(sum(rates[0]) - 1.0) < 1e-9
    assert 0.93 < rates[0][0] < 0.95  # current accounts mostly stay current
