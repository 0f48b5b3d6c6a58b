"""The month's purchase outlook: what its churn model expects of an alive customer, per
distinct (x, T) of its buyers, written as a Parquet file the dbt model churn.purchase_outlook
reads (the way the quarter's cluster labels reach dbt).

Expected purchases and CLV need the Gaussian hypergeometric function, which neither DuckDB
nor Spark SQL has. Both factor as P(alive), which the SQL scores for every customer, times a
number that depends on x and T alone (value.alive_purchases), and a million customers have
only tens of thousands of distinct (x, T): Python computes those, SQL does the rest.
"""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from segment_cadence.defs.segments import churn, value
from segment_cadence.platform import paths
from segment_cadence.platform.warehouse import WarehouseConnection


def outlook_file(month_end: date) -> Path:
    return paths.churn_dir() / f"{month_end:%Y-%m}" / "purchase_outlook.parquet"


def write_month_outlook(
    con: WarehouseConnection, month_end: date, record: dict[str, Any] | None
) -> str | None:
    """Compute the month's outlook from its recorded fit and write it; the file's path, or
    None when the month has no churn parameters (then nobody gets expected purchases, as
    nobody gets a churn likelihood)."""
    params = churn.params_of(record) if record else None
    if params is None:
        return None
    pairs = con.execute(
        "select distinct bgnbd_x as x, cast(round(bgnbd_T * 7) as bigint) as t_days "
        "from build.int_customer_purchases"
    ).fetchnumpy()
    month = value.purchase_outlook(
        params,
        value.assumptions_of(record),
        np.asarray(pairs["x"], dtype=float),
        np.asarray(pairs["t_days"], dtype=float) / 7,  # as int_customer_purchases divides
    )
    target = outlook_file(month_end)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".parquet.partial")
    pq.write_table(pa.table(month.columns()), partial)
    os.replace(partial, target)  # a reader sees the old file or the new one, never half
    return str(target)
