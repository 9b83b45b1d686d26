"""Settings from the environment: a fixed clock for replaying a day, refused when it is not an instant."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from duecourse.bootstrap import build
from duecourse.domain.errors import SettingsError
from duecourse.settings import Settings


def test_a_fixed_now_becomes_the_containers_clock() -> None:
    settings = Settings.from_env({"DUECOURSE_NOW": "2026-12-01T10:00:00+08:00"})
    assert build(settings).clock() == datetime(2026, 12, 1, 10, tzinfo=timezone(timedelta(hours=8)))
    assert Settings.from_env({}).fixed_now is None


@pytest.mark.parametrize(("text", "why"), [("tomorrow", "not an ISO 8601"), ("2026-12-01T10:00:00", "UTC offset")])
def test_a_fixed_now_that_is_not_an_instant_is_refused(text: str, why: str) -> None:
    with pytest.raises(SettingsError, match=why):
        Settings.from_env({"DUECOURSE_NOW": text})
