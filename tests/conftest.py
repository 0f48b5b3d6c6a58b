"""Shared fixtures: a private state directory and state store per test session, a fresh state
store per test that asks for one, the dbt manifest, and a small generated jeweller data set."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session", autouse=True)
def session_state_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """No test touches var/state.sqlite (or a store named in the environment): the session's
    operational state store is a SQLite file of its own, inherited by CLI subprocesses."""
    url = f"sqlite:///{tmp_path_factory.mktemp('state_store') / 'state.sqlite'}"
    os.environ["SEGMENT_CADENCE_STATE_URL"] = url
    return url


@pytest.fixture()
def state_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh, empty state store for one test (SEGMENT_CADENCE_STATE_URL points at it)."""
    url = f"sqlite:///{tmp_path / 'state.sqlite'}"
    monkeypatch.setenv("SEGMENT_CADENCE_STATE_URL", url)
    return url


@pytest.fixture(scope="session")
def state_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every test that runs the pipeline writes under a temporary state directory, never var/."""
    home = tmp_path_factory.mktemp("segment_cadence_home")
    os.environ["SEGMENT_CADENCE_HOME"] = str(home)
    os.environ["SEGMENT_CADENCE_WAREHOUSE"] = str(home / "warehouse.duckdb")
    os.environ["DAGSTER_HOME"] = str(home / "dagster_home")
    (home / "dagster_home").mkdir(parents=True, exist_ok=True)
    return home


@pytest.fixture(scope="session")
def generated_data(state_home: Path) -> Path:
    """A small jeweller: 1,500 customers, three years of history to the end of 2025."""
    from segment_cadence.example.generator import GeneratorConfig, generate

    raw = state_home / "raw"
    generate(raw, GeneratorConfig(customers=1_500, end_month="2025-12", history_months=36, seed=7),
             progress=False)  # fmt: skip
    return raw


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Spark tests run when pyspark is installed (the spark extra, `make test-spark`) and are
    skipped otherwise, unless selected with `-m spark`: then a missing extra is an error."""
    if importlib.util.find_spec("pyspark") is not None or "spark" in (config.option.markexpr or ""):
        return
    skip = pytest.mark.skip(reason="needs the spark extra: make test-spark")
    for item in items:
        if item.get_closest_marker("spark"):
            item.add_marker(skip)
