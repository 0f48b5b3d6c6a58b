"""The monthly BG/NBD fit: four parameters in Python, every customer scored in SQL."""

import dagster as dg
import numpy as np
from dagster_dbt import get_asset_key_for_model

from assets.dbt import features_inputs
from orchestration.partitions import monthly_partitions, refresh_window
from orchestration.resources import WarehouseResource
from segment_cadence import churn

FIT_SAMPLE_SIZE = 50_000
FIT_SEED = 20_050_101  # fixed, so re-running a month reproduces its parameters exactly


@dg.asset(
    key=["churn", "bgnbd_params"],
    group_name="features",
    owners=["team:data-engineering"],
    kinds={"python", "scipy", "duckdb"},
    partitions_def=monthly_partitions,
    deps=[get_asset_key_for_model([features_inputs], "int_customer_purchases")],
    description=(
        "BG/NBD (Fader, Hardie & Lee 2005) fitted by maximum likelihood on a reproducible "
        f"sample of up to {FIT_SAMPLE_SIZE:,} buyers as of the month's end. customer_features "
        "scores every customer with the closed-form P(alive); churn likelihood = 1 - P(alive)."
    ),
)
def bgnbd_params(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    month_end, _ = refresh_window(context.partition_key)
    with warehouse.connect() as con:
        history = con.execute(
            "select bgnbd_x, bgnbd_t_x, bgnbd_T from build.int_customer_purchases "
            "where bgnbd_T > 0 order by customer_id"
        ).fetchnumpy()
        x, t_x, big_t = (
            np.asarray(history[c], dtype=float) for c in ("bgnbd_x", "bgnbd_t_x", "bgnbd_T")
        )
        sample = churn.sample_for_fit(x, t_x, big_t, max_n=FIT_SAMPLE_SIZE, seed=FIT_SEED)
        try:
            params = churn.fit_bgnbd(*sample)
            row = [month_end, params.r, params.alpha, params.a, params.b, params.log_likelihood,
                   params.n_customers, params.converged]  # fmt: skip
            note = "fitted"
        except ValueError as error:
            # Too little history (for example months before the data starts): score nobody
            # rather than invent a churn likelihood. Rules reading it then do not hold.
            context.log.warning(f"BG/NBD not fitted for {month_end}: {error}")
            row = [month_end, None, None, None, None, None, len(x), False]
            note = f"not fitted: {error}"
        con.execute("begin transaction")
        con.execute("delete from churn.bgnbd_params where month_end = ?", [month_end])
        con.execute(
            "insert into churn.bgnbd_params values (?, ?, ?, ?, ?, ?, ?, ?, current_timestamp)", row
        )
        con.execute("commit")
    return dg.MaterializeResult(
        metadata={
            "status": note,
            "buyers": len(x),
            "fit_sample": int(row[6] or 0),
            "r": row[1],
            "alpha": row[2],
            "a": row[3],
            "b": row[4],
            "log_likelihood": row[5],
            "converged": bool(row[7]),
        }
    )
