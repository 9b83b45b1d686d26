"""Debt terms: both paths agree on random accounts and limitation facts, and young debts never need a status."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import hypothesis.strategies as st
from hypothesis import given, settings

from duecourse.compliance.checks.debt_terms import (
    DAYS_PER_YEAR,
    LimitationParams,
    OfficialPaymentAccount,
    PaymentParams,
    TimeBarred,
)
from duecourse.compliance.facts import Proposal
from tests.unit.compliance.status_helpers import CTX, PURPOSES, assert_paths_agree, iso, moments, proposal, subsets

ACCOUNTS = ("6222 0000 1111 2222", "6222 0000 1111 2223", "6222000011112222", "官方App")
REGIONS = (None, "ENG", "WLS", "NIR", "SCT", "XX")
SETTINGS = settings(max_examples=60, deadline=None)


@SETTINGS
@given(
    st.lists(
        st.tuples(st.sampled_from([None, *ACCOUNTS]), st.lists(st.sampled_from(ACCOUNTS), max_size=3, unique=True)),
        min_size=1,
        max_size=8,
    )
)
def test_payment_account_paths_agree(facts: list[tuple[str | None, list[str]]]) -> None:
    batch = [
        proposal("CN", f"p{i}", {"debt.payment_account": account, "debt.official_accounts": official})
        for i, (account, official) in enumerate(facts)
    ]
    blocked = assert_paths_agree(OfficialPaymentAccount(), PaymentParams(), batch)
    assert blocked == sum(1 for account, official in facts if account is not None and account not in official)


@st.composite
def limitation_batch(draw: st.DrawFn) -> list[Proposal]:
    out = []
    for i in range(draw(st.integers(1, 8))):
        moment = draw(moments())
        cease = draw(
            st.one_of(
                st.none(),
                st.builds(
                    lambda minutes, form, moment=moment: {"at": iso(moment + timedelta(minutes=minutes)), "form": form},
                    st.integers(-5000, 5000) | st.just(0),
                    st.sampled_from(["written", "oral"]),
                ),
            )
        )
        changes: dict[str, Any] = {
            "moment": iso(moment),
            "jurisdiction": {"country": "UK", "region": draw(st.sampled_from(REGIONS))},
            "purpose": draw(st.sampled_from(PURPOSES)),
            "debt.time_barred": draw(st.sampled_from([None, True, False])),
            "debt.days_past_due": draw(st.integers(1700, 2300) | st.integers(0, 5000)),
            "debtor.cease": cease,
        }
        out.append(proposal("UK", f"p{i}", changes))
    return out


YEARS = st.one_of(
    st.just({}),
    st.just({"ENG": 6, "WLS": 6, "NIR": 6, "SCT": 5}),
    st.dictionaries(st.sampled_from(["ENG", "SCT", "NIR"]), st.integers(1, 10), min_size=1),
)


@SETTINGS
@given(batch=limitation_batch(), years=YEARS, demands=subsets(PURPOSES))
def test_limitation_paths_agree(batch: list[Proposal], years: dict[str, int], demands: tuple[str, ...]) -> None:
    assert_paths_agree(TimeBarred(), LimitationParams(limitation_years=years, demand_purposes=demands), batch)


@SETTINGS
@given(batch=limitation_batch(), years=YEARS.filter(bool))
def test_a_debt_younger_than_every_period_never_needs_its_status(batch: list[Proposal], years: dict[str, int]) -> None:
    shortest = min(years.values()) * DAYS_PER_YEAR
    params = LimitationParams(limitation_years=years, demand_purposes=("collect",))
    for p in batch:
        young = p.model_copy(
            update={"debt": p.debt.model_copy(update={"time_barred": None, "days_past_due": shortest - 1})}
        )
        assert TimeBarred().one(young, params, CTX).verdict == "pass"
        old = young.model_copy(
            update={"debt": young.debt.model_copy(update={"days_past_due": max(years.values()) * DAYS_PER_YEAR})}
        )
        assert TimeBarred().one(old, params, CTX).verdict == "missing_facts"
