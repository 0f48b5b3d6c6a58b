"""Where things live. One place, so the CLI, Dagster, dbt and the tests agree.

Everything the pipeline writes goes under one state directory (default `var/` in the
repository, override with SEGMENT_CADENCE_HOME): the DuckDB warehouse, Dagster's local
storage, raw input files, exports, the local alert outbox and the operational state store
(`state.sqlite`, override with SEGMENT_CADENCE_STATE_URL).
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DBT_PROJECT_DIR = REPO_ROOT / "dbt_project"
CONFIG_DIR = REPO_ROOT / "config"
SEGMENTS_FILE = CONFIG_DIR / "segments.yaml"
SOURCES_FILE = CONFIG_DIR / "sources.yaml"
THRESHOLDS_FILE = CONFIG_DIR / "thresholds.yaml"


def segments_file() -> Path:
    """The segment dictionary in force (override with SEGMENT_CADENCE_SEGMENTS)."""
    return Path(os.environ.get("SEGMENT_CADENCE_SEGMENTS", SEGMENTS_FILE)).resolve()


def thresholds_file() -> Path:
    """The health thresholds in force (override with SEGMENT_CADENCE_THRESHOLDS). Every reader
    of thresholds.yaml comes here, so the review gate checks the file the run evaluates."""
    return Path(os.environ.get("SEGMENT_CADENCE_THRESHOLDS", THRESHOLDS_FILE)).resolve()


def sources_file() -> Path:
    """The source mapping (override with SEGMENT_CADENCE_SOURCES)."""
    return Path(os.environ.get("SEGMENT_CADENCE_SOURCES", SOURCES_FILE)).resolve()


def campaigns_dir() -> Path:
    """Planned campaigns the pipeline checks (override with SEGMENT_CADENCE_CAMPAIGNS)."""
    return Path(os.environ.get("SEGMENT_CADENCE_CAMPAIGNS", CONFIG_DIR / "campaigns")).resolve()


FEATURE_CATALOGUE = DBT_PROJECT_DIR / "models" / "marts" / "customer_features.yml"


def state_dir() -> Path:
    """The directory for everything the pipeline writes."""
    return Path(os.environ.get("SEGMENT_CADENCE_HOME", REPO_ROOT / "var")).resolve()


def warehouse_path() -> Path:
    """The DuckDB file (override with SEGMENT_CADENCE_WAREHOUSE)."""
    override = os.environ.get("SEGMENT_CADENCE_WAREHOUSE")
    return Path(override).resolve() if override else state_dir() / "warehouse.duckdb"


def raw_dir() -> Path:
    return state_dir() / "raw"


def exports_dir() -> Path:
    return state_dir() / "exports"


def outbox_dir() -> Path:
    return state_dir() / "outbox"


def dagster_home() -> Path:
    return Path(os.environ.get("DAGSTER_HOME", state_dir() / "dagster_home")).resolve()


def churn_dir() -> Path:
    """Per-month files of the churn and value models (the purchase outlook dbt reads)."""
    return state_dir() / "churn"


def review_packs_dir() -> Path:
    return state_dir() / "review_packs"


def state_store_url() -> str:
    """The operational state store (alerts, outbox, silences, firewall records): a SQLAlchemy
    URL. SEGMENT_CADENCE_STATE_URL when set (a PostgreSQL URL for several machines), else a
    SQLite file next to the warehouse under the state directory."""
    configured = os.environ.get("SEGMENT_CADENCE_STATE_URL")
    return configured or f"sqlite:///{state_dir() / 'state.sqlite'}"
