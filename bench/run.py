"""Benchmark: the monthly refresh against two baselines on the same data, in one run.

    python -m bench.run [--customers 1000000] [--repeats 3] [--month 2025-12]

- pipeline: `segment-cadence refresh` for one month in a fresh state directory (ingest,
  dictionary, dbt features and marts with all their tests, BG/NBD fit, publish, export):
  what a scheduled run does.
- fixed overhead: the same command on a 200-customer data set, where compute is negligible:
  Python and Dagster start-up, dbt start-up and parse, run bookkeeping.
- lower bound: the same segmentation as one hand-written DuckDB query over the Parquet files
  (only the features the rules read, BG/NBD parameters taken from the pipeline's fit).
- pandas: the same segmentation as a straightforward pandas script.

Each variant runs in its own process; peak memory is that process tree's largest resident
set (getrusage of children). Figures are medians over the repeats.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def measure(command: list[str], env: dict[str, str] | None = None) -> tuple[float, float, str]:
    """Run a command in a fresh process; return (seconds, peak RSS in MiB, stdout)."""
    started = time.perf_counter()
    pid = os.fork()
    if pid == 0:  # child: run the command as a grandchild, so rusage covers only it
        completed = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        out = REPO / "var" / "bench" / f".measure-{os.getpid()}.json"
        out.write_text(json.dumps({"rc": completed.returncode, "peak": peak,
                                   "stdout": completed.stdout, "stderr": completed.stderr[-4000:]}))  # fmt: skip
        os._exit(0)
    os.waitpid(pid, 0)
    elapsed = time.perf_counter() - started
    result_file = REPO / "var" / "bench" / f".measure-{pid}.json"
    result = json.loads(result_file.read_text())
    result_file.unlink()
    if result["rc"] != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result['stderr']}")
    return elapsed, result["peak"], result["stdout"]


def generate(customers: int, month: str, out: Path) -> None:
    if (out / "orders.parquet").exists():
        return
    subprocess.run(
        [str(BIN / "segment-cadence"), "generate", "--customers", str(customers),
         "--end-month", month, "--out", str(out), "--no-progress"],
        check=True,
    )  # fmt: skip


def pipeline_env(home: Path, raw: Path) -> dict[str, str]:
    """A fresh state directory whose raw/ points at the shared generated files."""
    if home.exists():
        shutil.rmtree(home)
    home.mkdir(parents=True)
    (home / "raw").symlink_to(raw)
    env = dict(os.environ)
    env.update(SEGMENT_CADENCE_HOME=str(home), DAGSTER_HOME=str(home / "dagster_home"))
    env.pop("SEGMENT_CADENCE_WAREHOUSE", None)
    return env


def run_pipeline(home: Path, raw: Path, month: str) -> tuple[float, float]:
    env = pipeline_env(home, raw)
    seconds, peak, _ = measure([str(BIN / "segment-cadence"), "refresh", "--month", month], env)
    return seconds, peak


def fitted_params(home: Path) -> dict[str, float]:
    import duckdb

    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    r, alpha, a, b = con.execute("select r, alpha, a, b from churn.bgnbd_params").fetchone()
    con.close()
    return {"r": r, "alpha": alpha, "a": a, "b": b}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--month", default="2025-12")
    args = parser.parse_args()

    work = REPO / "var" / "bench"
    work.mkdir(parents=True, exist_ok=True)
    raw = work / f"raw-{args.customers}"
    tiny = work / "raw-200"
    print(f"Generating data ({args.customers:,} customers, to {args.month}) ...", flush=True)
    generate(args.customers, args.month, raw)
    generate(200, args.month, tiny)
    subprocess.run([str(BIN / "segment-cadence"), "parse"], check=True, capture_output=True)

    import duckdb

    counts = {t: duckdb.sql(f"select count(*) from '{raw / t}.parquet'").fetchall()[0][0]
              for t in ("customers", "orders", "engagement_events", "campaign_sends")}  # fmt: skip
    print("Data: " + ", ".join(f"{t} {n:,}" for t, n in counts.items()), flush=True)

    results: dict[str, list[tuple[float, float]]] = {
        "pipeline": [], "fixed overhead": [], "lower bound (DuckDB SQL)": [], "pandas": []
    }  # fmt: skip
    home = work / "home"
    for repeat in range(args.repeats):
        print(f"repeat {repeat + 1}/{args.repeats}", flush=True)
        # Same state directory for both, as in production: dbt's parse cache is per warehouse.
        results["fixed overhead"].append(run_pipeline(home, tiny, args.month))
        results["pipeline"].append(run_pipeline(home, raw, args.month))
        params = json.dumps(fitted_params(home))
        for name, module in (("lower bound (DuckDB SQL)", "bench.duckdb_baseline"),
                             ("pandas", "bench.pandas_baseline")):  # fmt: skip
            out = work / f"{module.split('.')[-1]}.parquet"
            seconds, peak, _ = measure([sys.executable, "-m", module, str(raw), args.month,
                                        params, str(out)])  # fmt: skip
            results[name].append((seconds, peak))

    medians = {
        name: (statistics.median(s for s, _ in runs), statistics.median(p for _, p in runs))
        for name, runs in results.items()
    }
    compute = medians["pipeline"][0] - medians["fixed overhead"][0]
    lower = medians["lower bound (DuckDB SQL)"][0]
    pandas_seconds = medians["pandas"][0]
    agreement = agreement_with_pipeline(home, work, args.month)

    print()
    print(f"Monthly refresh of {args.month}, {args.customers:,} customers, "
          f"{counts['orders']:,} order lines; medians of {args.repeats} runs")  # fmt: skip
    print(f"{'variant':<28}{'wall s':>9}{'peak MiB':>10}{'x lower bound':>15}")
    for name, (seconds, peak) in medians.items():
        print(f"{name:<28}{seconds:>9.2f}{peak:>10.0f}{seconds / lower:>15.2f}")
    print(f"{'pipeline compute':<28}{compute:>9.2f}{'':>10}{compute / lower:>15.2f}")
    print()
    print(f"pipeline compute / lower bound: {compute / lower:.2f}x (aim: within 2x)")
    print(f"fixed overhead: {medians['fixed overhead'][0]:.1f} s (aim: under 10 s)")
    print(f"pipeline / pandas: {medians['pipeline'][0] / pandas_seconds:.2f}x (aim: below 1)")
    print(f"membership agreement with the baselines: {agreement}")


def agreement_with_pipeline(home: Path, work: Path, month: str) -> str:
    import duckdb

    exports = sorted((home / "exports" / "segment_membership").glob("*/membership.parquet"))
    con = duckdb.connect()
    parts = []
    for name in ("duckdb_baseline", "pandas_baseline"):
        same, total = con.execute(
            f"select count(*) filter (where p.segment_id = b.segment_id), count(*) "
            f"from '{exports[-1]}' p join '{work / name}.parquet' b using (customer_id)"
        ).fetchone()
        parts.append(f"{name} {same / total:.4%} of {total:,}")
    return "; ".join(parts)


if __name__ == "__main__":
    main()
