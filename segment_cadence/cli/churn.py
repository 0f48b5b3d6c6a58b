"""`segment-cadence churn calibrate`: the calibration/holdout check on demand.

It reads the ingested order lines (staging.stg_orders) through a read-only connection, fits
the dictionary's churn model on the history up to the cut-off, predicts the months after it,
and prints actual against predicted repeat purchases per calibration frequency, with the
mean absolute error per customer; the standard chart is written as SVG beside it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from segment_cadence.defs.dictionary import segment_dictionary
from segment_cadence.defs.review import charts
from segment_cadence.defs.segments import calibration
from segment_cadence.platform import paths, warehouse_lock
from segment_cadence.platform.markdown import table
from segment_cadence.platform.months import add_months, month_end, parse_month

EXIT_NO_HISTORY = 3


def purchase_days(until: pd.Timestamp) -> pd.DataFrame:
    with warehouse_lock.command_connection("churn calibrate", read_only=True) as con:
        return con.execute(
            "select distinct customer_id as customer, order_date as day "
            "from staging.stg_orders where order_date <= ?",
            [until.date()],
        ).df()


def chart(result: calibration.Calibration) -> str:
    labels = [g.label for g in result.groups]
    return charts.lines(
        f"Holdout repeat purchases ({result.holdout_weeks:.0f} weeks), {result.params.model}",
        labels,
        {
            "actual": [g.actual for g in result.groups],
            "predicted": [g.predicted for g in result.groups],
        },
        "Mean repeat purchases in the holdout, actual and predicted, by repeat purchases in "
        "the calibration period",
    )


def cmd_calibrate(args: argparse.Namespace) -> int:
    cutoff = pd.Timestamp(month_end(parse_month(args.cutoff)))
    if args.months < 1:
        print(f"--months must be at least 1; got {args.months}")
        return EXIT_NO_HISTORY
    last = add_months(parse_month(args.cutoff), args.months)
    holdout_end = pd.Timestamp(month_end(last))
    model = segment_dictionary.load().churn_model
    days = purchase_days(holdout_end)
    if days.empty or (pd.to_datetime(days["day"]) <= cutoff).sum() == 0:
        print(f"No purchases on or before {cutoff:%Y-%m-%d}: run `segment-cadence refresh` first.")
        return EXIT_NO_HISTORY
    history = calibration.holdout_history(days, cutoff, holdout_end)
    try:
        result = calibration.calibrate(history, model)
    except ValueError as error:
        print(f"{model} could not be fitted on the history to {cutoff:%Y-%m-%d}: {error}")
        return EXIT_NO_HISTORY
    p = result.params
    print(
        f"{model} fitted on {len(history.x):,} customers to {cutoff:%Y-%m-%d} "
        f"(r {p.r:.4g}, alpha {p.alpha:.4g}, a {p.a:.4g}, b {p.b:.4g}); holdout to "
        f"{holdout_end:%Y-%m-%d} ({result.holdout_weeks:.1f} weeks)"
    )
    rows = result.table()
    print(table(list(rows[0]), [list(r.values()) for r in rows], right=range(1, 5)))
    print(f"mean absolute error per customer: {result.mean_absolute_error:.3f}")
    out = Path(args.chart) if args.chart else paths.state_dir() / f"calibration-{cutoff:%Y-%m}.svg"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(chart(result))
    print(f"chart: {out}")
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    churn = sub.add_parser("churn", help="the churn model: calibration against a holdout")
    actions = churn.add_subparsers(dest="action", required=True)
    calibrate = actions.add_parser(
        "calibrate", help="fit to a cut-off, predict the months after it, compare"
    )
    calibrate.add_argument("--cutoff", required=True, help="last month of the calibration, YYYY-MM")
    calibrate.add_argument("--months", type=int, default=6, help="holdout months (6)")
    calibrate.add_argument("--chart", help="where to write the SVG chart")
    calibrate.set_defaults(func=cmd_calibrate)
