"""Marks the tests share: `slow_fixture`, for a fixture whose set-up takes more than a few
seconds (a refresh, a dbt build, a long fit). tests/conftest.py marks every test that asks
for one, directly or through another fixture, `slow`; `make test-quick` leaves those out."""

from __future__ import annotations

from collections.abc import Callable

SLOW = "slow_fixture"


def slow_fixture(function: Callable) -> Callable:
    """Put it under @pytest.fixture: the tests that ask for this fixture are slow."""
    setattr(function, SLOW, True)
    return function


def is_slow_fixture(function: Callable) -> bool:
    return getattr(function, SLOW, False)
