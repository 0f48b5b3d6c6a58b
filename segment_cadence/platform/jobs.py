"""Jobs. Every job that writes the warehouse runs its steps in one process, one at a time
(DuckDB has one writer), and carries the tag that the run queue limits to one run."""

from __future__ import annotations

import dagster as dg

from segment_cadence.platform.partitions import monthly_partitions, quarterly_partitions

WAREHOUSE_TAG = {"segment_cadence/warehouse": "duckdb"}

monthly_refresh_job = dg.define_asset_job(
    name="monthly_refresh",
    description=(
        "Monthly tactical refresh: load the sources, validate the dictionary, compute features "
        "and membership for the month, run every check, publish, and record it in the changelog."
    ),
    selection=dg.AssetSelection.groups(
        "ingest",
        "definitions",
        "features",
        "segments",
        "published",
        "governance",
        "health",
        "review",
    ),
    partitions_def=monthly_partitions,
    executor_def=dg.in_process_executor,
    tags=WAREHOUSE_TAG,
)

quarterly_strategic_job = dg.define_asset_job(
    name="quarterly_strategic_refresh",
    description=(
        "Quarterly strategic refresh: re-fit the segmentation on the quarter's last published "
        "month and propose a candidate definition version, compared with production."
    ),
    selection=dg.AssetSelection.groups("strategic"),
    partitions_def=quarterly_partitions,
    executor_def=dg.in_process_executor,
    tags=WAREHOUSE_TAG,
)
