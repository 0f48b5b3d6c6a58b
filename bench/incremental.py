"""Incremental refresh benchmark: one new month at 12, 24 and 48 months of history.

    python -m bench.incremental [--customers 1000000] [--repeats 3] [--histories 12 24 48]

For each history length H, with the same customers:

1. generate H + 1 months of data ending in the timed month (--month), with order lines per
   customer in proportion to the months, so every month has the same volume of orders
   whatever the history length (`segment-cadence generate --history-months
   --orders-per-customer`);
2. in a fresh state directory, refresh the month before it: ingest, and the first build of
   the monthly purchase history (H months);
3. time the refresh of the timed month, --repeats times, each in a new process: the monthly
   refresh as scheduled (the files are unchanged, so ingest is skipped; dbt builds the new
   month's slice and adds the slices up);
4. time the same month with --full-rebuild (the history rebuilt from every order line), for
   comparison.

Prints the medians, the dbt time of the two history models (the part that depends on the
history), and the ratio 48 / 12. Peak memory is that of the refresh process tree.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
from pathlib import Path

from bench.run import BIN, REPO, load_average, measure, pipeline_env
from segment_cadence.platform.months import parse_month, previous_month

# Mean order lines per customer per month (the default generator gives 3 over 36 months).
LINES_PER_CUSTOMER_MONTH = 3.0 / 36
HISTORY_MODELS = ("int_customer_orders_monthly", "int_customer_purchases")


def generate(customers: int, history: int, month: str, out: Path) -> None:
    if (out / "orders.parquet").exists():
        return
    months = history + 1
    subprocess.run(
        [
            str(BIN / "segment-cadence"),
            "generate",
            "--customers",
            str(customers),
            "--end-month",
            month,
            "--history-months",
            str(months),
            "--orders-per-customer",
            f"{LINES_PER_CUSTOMER_MONTH * months:.6f}",
            "--out",
            str(out),
            "--no-progress",
        ],
        check=True,
        capture_output=True,
    )


def model_seconds(home: Path) -> float:
    """dbt's execution time of the history models in the state directory's latest run."""
    import dagster as dg

    total = 0.0
    with dg.DagsterInstance.from_config(str(home / "dagster_home")) as instance:
        run = instance.get_runs(limit=1)[0]
        for event in instance.all_logs(run.run_id):
            dagster_event = event.dagster_event
            if not dagster_event or dagster_event.event_type_value != "ASSET_MATERIALIZATION":
                continue
            materialization = dagster_event.event_specific_data.materialization
            if materialization.asset_key.path[-1] in HISTORY_MODELS:
                duration = materialization.metadata.get("Execution Duration")
                total += float(duration.value) if duration else 0.0
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--histories", type=int, nargs="+", default=[12, 24, 48])
    parser.add_argument("--month", default="2025-12", help="the timed month, YYYY-MM")
    args = parser.parse_args()

    work = REPO / "var" / "bench"
    work.mkdir(parents=True, exist_ok=True)
    before = previous_month(parse_month(args.month)).strftime("%Y-%m")
    refresh = [str(BIN / "segment-cadence"), "refresh"]
    subprocess.run([str(BIN / "segment-cadence"), "parse"], check=True, capture_output=True)
    results: dict[int, dict[str, object]] = {}
    for history in args.histories:
        raw = work / f"raw-{args.customers}-h{history}"
        print(f"{history} months of history: generating ...", flush=True)
        generate(args.customers, history, args.month, raw)
        import duckdb

        lines = duckdb.sql(f"select count(*) from '{raw}/orders.parquet'").fetchall()[0][0]
        home = work / f"home-h{history}"
        env = pipeline_env(home, raw)
        first, first_peak, _, _ = measure([*refresh, "--month", before], env)
        print(
            f"  first refresh ({before}: ingest, {history} months built): {first:.1f} s", flush=True
        )
        runs: dict[str, list[tuple[float, float, float]]] = {"incremental": [], "full": []}
        for repeat in range(args.repeats):
            for kind, extra in (("incremental", []), ("full", ["--full-rebuild"])):
                load = load_average()
                seconds, peak, _, _ = measure([*refresh, "--month", args.month, *extra], env)
                runs[kind].append((seconds, peak, model_seconds(home)))
                print(
                    f"  {kind:<12} repeat {repeat + 1}: {seconds:6.1f} s "
                    f"(history models {runs[kind][-1][2]:.2f} s, load {load})",
                    flush=True,
                )
        results[history] = {
            "lines": lines,
            "first": first,
            **{
                f"{kind}_{name}": statistics.median(r[i] for r in rows)
                for kind, rows in runs.items()
                for i, name in enumerate(("seconds", "peak", "models"))
            },
        }

    print()
    print(
        f"Refresh of {args.month} after H months of history, {args.customers:,} customers; "
        f"medians of {args.repeats} runs"
    )
    print(
        f"{'history':>8}{'order lines':>14}{'monthly s':>11}{'history dbt s':>15}"
        f"{'full rebuild s':>16}{'its dbt s':>11}{'peak MiB':>10}"
    )
    for history, r in results.items():
        print(
            f"{history:>8}{r['lines']:>14,}{r['incremental_seconds']:>11.1f}"
            f"{r['incremental_models']:>15.2f}{r['full_seconds']:>16.1f}"
            f"{r['full_models']:>11.2f}{r['incremental_peak']:>10.0f}"
        )
    low, high = min(results), max(results)
    if low != high:
        lo, hi = results[low], results[high]
        print()
        print(
            f"ratio {high}/{low} months: monthly refresh "
            f"{hi['incremental_seconds'] / lo['incremental_seconds']:.2f}, history models "
            f"{hi['incremental_models'] / max(lo['incremental_models'], 1e-9):.2f}; with a full "
            f"rebuild {hi['full_seconds'] / lo['full_seconds']:.2f} and "
            f"{hi['full_models'] / max(lo['full_models'], 1e-9):.2f}"
        )


if __name__ == "__main__":
    main()
