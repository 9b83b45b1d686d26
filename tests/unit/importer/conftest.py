"""Fixtures for the importer rule tests (helpers live in importer_helpers.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from importer_helpers import Checker, store_with_base

from duecourse.services.importer_validation import StoreView


@pytest.fixture
def check(tmp_path: Path) -> Checker:
    return Checker(tmp_path)


@pytest.fixture
def base_store() -> Callable[..., StoreView]:
    return store_with_base
