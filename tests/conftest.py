"""Shared fixtures: a private state directory and state store per test session, a fresh state
store per test that asks for one, the dbt manifest, and a small generated jeweller data set;
and how the suite splits across pytest-xdist workers.

`make test` runs the suite on two workers (`-n 2 --dist loadgroup`). Each worker is its own
session, so each has its own state directory (the fixtures below) and its own temporary
folders, and its own dbt target directory (DBT_TARGET_PATH, set below before anything imports
the code location): the manifest and partial-parse file there are prepared for the worker's
warehouse, so two workers refreshing side by side never re-parse for each other or read each
other's half-written files. Each module is an xdist group of its own, so that its
module-scoped fixtures are built once.

Tests that take more than a few seconds (a refresh, a dbt build, a long fit) are marked
`slow`: by hand, or because they ask for a fixture marked with `slow_fixture`. `make test`
runs them all; `make test-quick` leaves them out, for the edit-test loop. The summary names
any unmarked test that took longer than SLOW_SECONDS, so the mark stays true.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from tests import commands
from tests.marks import is_slow_fixture, slow_fixture

REPO = Path(__file__).resolve().parent.parent

# A test slower than this without the `slow` mark is named in the summary.
SLOW_SECONDS = 8.0

if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ["DBT_TARGET_PATH"] = f"target-{os.environ['PYTEST_XDIST_WORKER']}"


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
    generate(
        raw,
        GeneratorConfig(customers=1_500, end_month="2025-12", history_months=36, seed=7),
        progress=False,
    )
    return raw


@pytest.fixture(scope="session")
@slow_fixture
def published_november(tmp_path_factory: pytest.TempPathFactory) -> Callable[[], Path]:
    """A small jeweller refreshed by the real command, built once per session: 300 generated
    customers over six months, November published by `segment-cadence refresh`, the Dagster
    home beside it. Each call hands out a fresh copy of that state for a module's tests.

    The warehouse records absolute paths (each publication's export, each review pack) and
    ingest remembers the files it loaded, so the copy always goes back to the one place the
    state was built in, as it was just after the refresh: the modules that use it (the
    process tests, which run one after another in the dbt worker) take turns there, each
    finding November published and nothing else done.
    """
    from segment_cadence.example.generator import GeneratorConfig, generate

    home = tmp_path_factory.getbasetemp() / "published_november"
    kept = tmp_path_factory.mktemp("published_november_as_built")
    config = GeneratorConfig(customers=300, end_month="2025-12", history_months=6, seed=3)
    generate(home / "raw", config, progress=False)
    first = commands.refresh(home, "2025-11")
    # What the command printed, for the tests of what a terminal shows.
    (home / "refresh.stdout").write_text(first.stdout)
    (home / "refresh.stderr").write_text(first.stderr)
    shutil.copytree(home, kept, dirs_exist_ok=True)

    def fresh_copy() -> Path:
        shutil.rmtree(home)
        shutil.copytree(kept, home)
        return home

    return fresh_copy


def pytest_itemcollected(item: pytest.Item) -> None:
    """As each test is collected, before pytest-xdist reads the groups (in
    pytest_collection_modifyitems, where it suffixes node ids with them): each module is a
    group of its own, so that its module-scoped fixtures are built once."""
    item.add_marker(pytest.mark.xdist_group(item.path.name))


def asks_for_a_slow_fixture(item: pytest.Item) -> bool:
    fixtures = getattr(item, "_fixtureinfo", None)
    if fixtures is None:
        return False
    return any(
        is_slow_fixture(definitions[-1].func)
        for definitions in fixtures.name2fixturedefs.values()
        if definitions
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests that ask for a slow fixture are slow themselves (`make test-quick` leaves them
    out). Spark tests run when the spark extra is installed (pyspark for the local endpoint,
    PyHive to talk to it; `make test-spark`) and are skipped otherwise, unless selected with
    `-m spark`: then a missing extra is an error."""
    for item in items:
        if asks_for_a_slow_fixture(item):
            item.add_marker(pytest.mark.slow)
    installed = all(importlib.util.find_spec(name) for name in ("pyspark", "pyhive"))
    if installed or "spark" in (config.option.markexpr or ""):
        return
    skip = pytest.mark.skip(reason="needs the spark extra: make test-spark")
    for item in items:
        if item.get_closest_marker("spark"):
            item.add_marker(skip)


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    """Name the tests that took longer than SLOW_SECONDS (set-up included) without the
    `slow` mark, so that `make test-quick` stays quick."""
    seconds: dict[str, float] = {}
    unmarked: set[str] = set()
    for reports in terminalreporter.stats.values():
        for report in reports:
            if getattr(report, "when", None) not in ("setup", "call"):
                continue
            seconds[report.nodeid] = seconds.get(report.nodeid, 0.0) + report.duration
            if "slow" not in report.keywords:
                unmarked.add(report.nodeid)
    late = sorted((s, n) for n, s in seconds.items() if n in unmarked and s > SLOW_SECONDS)
    if late:
        terminalreporter.section("slow tests without the slow mark")
        for spent, nodeid in reversed(late):
            terminalreporter.write_line(f"{spent:6.1f} s  {nodeid}")
