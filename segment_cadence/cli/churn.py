"""`segment-cadence churn calibrate`: the calibration/holdout check on demand.

It reads the purchase history (the monthly slices, history.int_customer_orders_monthly)
through a read-only connection, fits the dictionary's churn model on the history up to the
cut-off, predicts the months after it, and prints actual against predicted repeat purchases
per calibration frequency, with the mean absolute error per customer; the standard chart is
written as SVG beside it. The refresh of each quarter's last month makes the same check
(segment_cadence/defs/segments/assets.py, churn_calibration).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from segment_cadence.defs.dictionary import segment_dictionary
from segment_cadence.defs.review import charts
from segment_cadence.defs.segments import calibration
from segment_cadence.platform import paths, warehouse_lock
from segment_cadence.platform.markdown import table
from segment_cadence.platform.warehouse import table_exists

EXIT_NO_HISTORY = 3


def chart(result: calibration.Calibration) -> str:
    groups = [
        {"label": g.label, "actual": g.actual, "predicted": g.predicted} for g in result.groups
    ]
    labels, series = calibration.chart_series(groups)
    return charts.lines(
        f"Holdout repeat purchases ({result.holdout_weeks:.0f} weeks), {result.params.model}",
        labels,
        series,
        calibration.CHART_ALT,
    )


def cmd_calibrate(args: argparse.Namespace) -> int:
    try:
        cutoff, holdout_end = calibration.holdout_window(args.cutoff, args.months)
    except ValueError as error:
        print(f"--cutoff YYYY-MM --months N: {error}")
        return EXIT_NO_HISTORY
    model = segment_dictionary.load().churn_model
    with warehouse_lock.command_connection("churn calibrate", read_only=True) as con:
        if not table_exists(con, "history", "int_customer_orders_monthly"):
            print("No purchase history in the warehouse: run `segment-cadence refresh` first.")
            return EXIT_NO_HISTORY
        latest = con.execute(
            "select max(activity_month) from history.int_customer_orders_monthly"
        ).fetchone()[0]
        history = calibration.warehouse_holdout_history(con, cutoff, holdout_end)
    if not len(history.x):
        print(f"No purchases on or before {cutoff:%Y-%m-%d}: run `segment-cadence refresh` first.")
        return EXIT_NO_HISTORY
    if latest < holdout_end.replace(day=1):
        print(
            f"The holdout runs to {holdout_end:%Y-%m} but the warehouse's history ends at "
            f"{latest:%Y-%m}: refresh the later months first, or ask for fewer --months."
        )
        return EXIT_NO_HISTORY
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
