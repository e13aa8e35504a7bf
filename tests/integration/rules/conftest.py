"""Fixtures for the rules wiring tests."""

from __future__ import annotations

import pytest
from rules_wiring_data import history

from radar.engine import Engine


@pytest.fixture
def loaded(engine: Engine) -> Engine:
    """The engine with :func:`history` appended and projected."""
    results = engine.append(history())
    assert all(r.status == "accepted" for r in results), [r for r in results if r.reason]
    engine.project()
    return engine
