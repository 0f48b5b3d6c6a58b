"""Benchmark: the monthly refresh against two baselines on the same data, in one run.

    python -m bench.run [--customers 1000000] [--repeats 3] [--month 2025-12]
                        [--orders-per-customer 3] [--no-pandas] [--against COMMIT]

- first refresh: `segment-cadence refresh` of the month before --month in a fresh state
  directory: ingest of every file, the first build of the monthly purchase history, then
  everything a month does.
- monthly refresh: then `segment-cadence refresh` of --month in that state directory, what
  the schedule runs each month (dictionary, dbt features and marts with all their tests,
  the new month's slice of the history, BG/NBD fit, publish, export, changelog, health).
  The files have not changed, so ingest is skipped.
- fixed overhead: the monthly refresh on a 200-customer data set, where compute is
  negligible: Python and Dagster start-up, two dbt processes, run bookkeeping.
- lower bound: the same segmentation as one hand-written DuckDB query over the Parquet files
  (only the features the rules read, BG/NBD parameters taken from the pipeline's fit).
- pandas: the same segmentation as a straightforward pandas script (--no-pandas skips it;
  at 10 million customers it needs more memory than the pipeline is allowed).

- against COMMIT: the same refreshes with the code of an earlier commit (extracted from git
  under var/bench/code-<commit>, run with the same virtual environment), taken in turn with
  this checkout's in every repeat, so both meet the same load. It prints each figure for
  both and the ratio, which is how a change shows it is no slower than before.

Each variant runs in its own process; peak memory is that process tree's largest resident
set (getrusage of children). Figures are medians over the repeats; the load average at the
start of each measurement is printed, since the machine may be shared.
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

from bench.steps import BEFORE_RUN, RUN, import_seconds, step_seconds
from segment_cadence.platform.months import month_end, parse_month, previous_month

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def measure(
    command: list[str], env: dict[str, str] | None = None
) -> tuple[float, float, float, str]:
    """Run a command in a fresh process; return (wall seconds, peak RSS in MiB, CPU seconds
    (user + system, its child processes included: dbt's), stdout). On a shared machine the
    CPU time is the steadier figure: waiting for a core adds to the wall time only."""
    started = time.perf_counter()
    pid = os.fork()
    if pid == 0:  # child: run the command as a grandchild, so rusage covers only it
        completed = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        peak = usage.ru_maxrss / 1024
        out = REPO / "var" / "bench" / f".measure-{os.getpid()}.json"
        out.write_text(
            json.dumps(
                {
                    "rc": completed.returncode,
                    "peak": peak,
                    "cpu": usage.ru_utime + usage.ru_stime,
                    "stdout": completed.stdout,
                    "stderr": completed.stderr[-4000:],
                }
            )
        )
        os._exit(0)
    os.waitpid(pid, 0)
    elapsed = time.perf_counter() - started
    result_file = REPO / "var" / "bench" / f".measure-{pid}.json"
    result = json.loads(result_file.read_text())
    result_file.unlink()
    if result["rc"] != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result['stderr']}")
    return elapsed, result["peak"], result["cpu"], result["stdout"]


def load_average() -> str:
    return f"{os.getloadavg()[0]:.1f}"


def generate(customers: int, month: str, out: Path, orders_per_customer: float = 3.0) -> None:
    if (out / "orders.parquet").exists():
        return
    subprocess.run(
        [
            str(BIN / "segment-cadence"),
            "generate",
            "--customers",
            str(customers),
            "--end-month",
            month,
            "--orders-per-customer",
            str(orders_per_customer),
            "--out",
            str(out),
            "--no-progress",
        ],
        check=True,
    )


def pipeline_env(home: Path, raw: Path, code: Path | None = None) -> dict[str, str]:
    """A fresh state directory whose raw/ points at the shared generated files; with `code`,
    the refresh imports the package from that tree instead of this checkout."""
    if home.exists():
        shutil.rmtree(home)
    home.mkdir(parents=True)
    (home / "raw").symlink_to(raw)
    env = dict(os.environ)
    env.update(SEGMENT_CADENCE_HOME=str(home), DAGSTER_HOME=str(home / "dagster_home"))
    for name in ("SEGMENT_CADENCE_WAREHOUSE", "SEGMENT_CADENCE_STATE_URL", "DBT_TARGET_PATH"):
        env.pop(name, None)
    if code is not None:
        env["PYTHONPATH"] = str(code)
    return env


def code_at(commit: str, work: Path) -> Path:
    """The repository's tree at `commit`, extracted once under var/bench (not a git worktree:
    nothing to clean up in the repository), with its dbt manifest prepared."""
    sha = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--verify", f"{commit}^{{commit}}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    tree = work / f"code-{sha[:12]}"
    if not (tree / "pyproject.toml").exists():
        tree.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(
            ["git", "-C", str(REPO), "archive", sha], capture_output=True, check=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    env = dict(os.environ, PYTHONPATH=str(tree))
    env.pop("DBT_TARGET_PATH", None)
    subprocess.run(
        [str(BIN / "segment-cadence"), "parse"], check=True, capture_output=True, env=env, cwd=tree
    )
    return tree


def run_pipeline(
    home: Path, raw: Path, month: str, code: Path | None = None
) -> tuple[dict[str, tuple[float, float, float]], dict[str, dict[str, float]]]:
    """The first refresh (the month before) in a fresh state directory, then the month:
    (wall, peak, CPU) of each, and the seconds of each step from the run's own events."""
    env = pipeline_env(home, raw, code)
    label = f"{raw.name} ({code.name})" if code else raw.name
    before = previous_month(parse_month(month)).strftime("%Y-%m")
    refresh = [str(BIN / "segment-cadence"), "refresh", "--month"]
    times: dict[str, tuple[float, float, float]] = {}
    steps: dict[str, dict[str, float]] = {}
    for name, which in (("first", before), ("monthly", month)):
        load = load_average()
        seconds, peak, cpu, _ = measure([*refresh, which], env)
        print(
            f"  {label} {name} refresh ({which}): {seconds:.1f} s, CPU {cpu:.1f} s, "
            f"{peak:.0f} MiB, load {load}",
            flush=True,
        )
        times[name] = (seconds, peak, cpu)
        steps[name] = step_seconds(home / "dagster_home")
        if RUN in steps[name]:
            steps[name][BEFORE_RUN] = seconds - steps[name][RUN]
    return times, steps


def fitted_params(home: Path, month: str) -> dict[str, float]:
    import duckdb

    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    r, alpha, a, b = con.execute(
        "select r, alpha, a, b from churn.bgnbd_params where month_end = ?",
        [month_end(parse_month(month))],
    ).fetchone()
    con.close()
    return {"r": r, "alpha": alpha, "a": a, "b": b}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--month", default="2025-12")
    parser.add_argument(
        "--orders-per-customer",
        type=float,
        default=3.0,
        help="order lines per customer (10 at 10M)",
    )
    parser.add_argument("--no-pandas", action="store_true", help="skip the pandas baseline")
    parser.add_argument(
        "--against",
        metavar="COMMIT",
        help="also time the refreshes with the code of this commit, in turn with this checkout's",
    )
    args = parser.parse_args()

    work = REPO / "var" / "bench"
    work.mkdir(parents=True, exist_ok=True)
    suffix = "" if args.orders_per_customer == 3.0 else f"-opc{args.orders_per_customer:g}"
    raw = work / f"raw-{args.customers}{suffix}"
    tiny = work / "raw-200"
    print(f"Generating data ({args.customers:,} customers, to {args.month}) ...", flush=True)
    generate(args.customers, args.month, raw, args.orders_per_customer)
    generate(200, args.month, tiny)
    subprocess.run([str(BIN / "segment-cadence"), "parse"], check=True, capture_output=True)
    earlier = code_at(args.against, work) if args.against else None

    import duckdb

    counts = {
        t: duckdb.sql(f"select count(*) from '{raw / t}.parquet'").fetchall()[0][0]
        for t in ("customers", "orders", "engagement_events", "campaign_sends")
    }
    print("Data: " + ", ".join(f"{t} {n:,}" for t, n in counts.items()), flush=True)

    baselines = [("lower bound (DuckDB SQL)", "bench.duckdb_baseline")]
    if not args.no_pandas:
        baselines.append(("pandas", "bench.pandas_baseline"))
    results: dict[str, list[tuple[float, float, float]]] = {
        "monthly refresh": [],
        "first refresh (ingest, full history)": [],
        "fixed overhead": [],
        **{name: [] for name, _ in baselines},
    }
    against: dict[str, list[tuple[float, float, float]]] = {name: [] for name in REFRESHES}
    loads: list[str] = []
    imports: list[float] = []
    home = work / "home"
    for repeat in range(args.repeats):
        print(f"repeat {repeat + 1}/{args.repeats}", flush=True)
        loads.append(load_average())
        # Taking turns (which code goes first alternates), so both meet the same load.
        codes = [None, earlier] if earlier else [None]
        for code in codes if repeat % 2 == 0 else codes[::-1]:
            times = refreshes(
                home if code is None else work / "home-against", raw, tiny, args.month, code
            )
            for name, measured in times.items():
                (results if code is None else against)[name].append(measured)
        imports.append(import_seconds())
        params = json.dumps(fitted_params(home, args.month))
        for name, module in baselines:
            out = work / f"{module.split('.')[-1]}.parquet"
            load = load_average()
            seconds, peak, cpu, _ = measure(
                [sys.executable, "-m", module, str(raw), args.month, params, str(out)]
            )
            print(f"  {name}: {seconds:.1f} s, {peak:.0f} MiB, load {load}", flush=True)
            results[name].append((seconds, peak, cpu))

    medians = {
        name: tuple(statistics.median(run[i] for run in runs) for i in range(3))
        for name, runs in results.items()
    }
    overhead = medians["fixed overhead"][0]
    compute = medians["monthly refresh"][0] - overhead
    lower = medians["lower bound (DuckDB SQL)"][0]
    agreement = agreement_with_pipeline(home, work, args.month, [m for _, m in baselines])

    print()
    print(
        f"Monthly refresh of {args.month}, {args.customers:,} customers, "
        f"{counts['orders']:,} order lines; medians of {args.repeats} runs; "
        f"load average at the start of each repeat: {', '.join(loads)}"
    )
    print(f"{'variant':<38}{'wall s':>9}{'peak MiB':>10}{'x lower bound':>15}")
    for name, (seconds, peak, _) in medians.items():
        print(f"{name:<38}{seconds:>9.2f}{peak:>10.0f}{seconds / lower:>15.2f}")
    print(
        f"{'monthly compute (monthly - overhead)':<38}{compute:>9.2f}{'':>10}{compute / lower:>15.2f}"
    )
    print()
    print(
        f"monthly refresh / lower bound: {medians['monthly refresh'][0] / lower:.2f}x "
        f"(compute alone {compute / lower:.2f}x)"
    )
    print(f"fixed overhead: {overhead:.1f} s")
    print(
        f"peak memory of the monthly refresh: {medians['monthly refresh'][1]:,.0f} MiB, "
        f"of the first refresh: {medians['first refresh (ingest, full history)'][1]:,.0f} MiB"
    )
    if "pandas" in medians:
        print(
            f"monthly refresh / pandas: {medians['monthly refresh'][0] / medians['pandas'][0]:.2f}x"
        )
    print(f"membership agreement with the baselines: {agreement}")
    print()
    print(
        f"importing the code location (segment_cadence.definitions) in a fresh interpreter: "
        f"{statistics.median(imports):.2f} s"
    )
    for name in ("fixed overhead", "monthly refresh", "first refresh (ingest, full history)"):
        print()
        print_steps(name, STEPS[name])
    if earlier is not None:
        print()
        print(
            f"This checkout against {args.against} ({earlier.name}), medians of {args.repeats} "
            "runs taken in turn:"
        )
        print(
            f"{'refresh':<38}{'wall before':>12}{'after':>8}{'ratio':>7}"
            f"{'CPU before':>12}{'after':>8}{'ratio':>7}"
        )
        for name in REFRESHES:
            wall, _, cpu = (statistics.median(run[i] for run in against[name]) for i in range(3))
            wall_now, _, cpu_now = medians[name]
            print(
                f"{name:<38}{wall:>12.2f}{wall_now:>8.2f}{wall_now / wall:>7.2f}"
                f"{cpu:>12.2f}{cpu_now:>8.2f}{cpu_now / cpu:>7.2f}"
            )


REFRESHES = ("fixed overhead", "monthly refresh", "first refresh (ingest, full history)")


def refreshes(
    home: Path, raw: Path, tiny: Path, month: str, code: Path | None
) -> dict[str, tuple[float, float, float]]:
    """The three timed refreshes of one repeat with one code tree. The same state directory
    for the tiny and the full data, as in production: dbt's parse cache is per warehouse."""
    overhead, overhead_steps = run_pipeline(home, tiny, month, code)
    pipeline, pipeline_steps = run_pipeline(home, raw, month, code)
    if code is None:
        STEPS["fixed overhead"].append(overhead_steps["monthly"])
        STEPS["monthly refresh"].append(pipeline_steps["monthly"])
        STEPS["first refresh (ingest, full history)"].append(pipeline_steps["first"])
    return {
        "fixed overhead": overhead["monthly"],
        "monthly refresh": pipeline["monthly"],
        "first refresh (ingest, full history)": pipeline["first"],
    }


# Seconds per step of this checkout's refreshes, one dict per repeat (from the runs' events).
STEPS: dict[str, list[dict[str, float]]] = {name: [] for name in REFRESHES}


def print_steps(name: str, runs: list[dict[str, float]], top: int = 12) -> None:
    """The median seconds of each step of one refresh, largest first."""
    keys = {k for run in runs for k in run}
    medians = {k: statistics.median(run.get(k, 0.0) for run in runs) for k in keys}
    run_total = medians.pop(RUN, None)
    print(f"{name}: where the time goes (medians; the run took {run_total or 0:.1f} s)")
    for key, seconds in sorted(medians.items(), key=lambda kv: -kv[1])[:top]:
        print(f"  {seconds:>7.2f} s  {key}")
    rest = sorted(medians.values(), reverse=True)[top:]
    if rest:
        print(f"  {sum(rest):>7.2f} s  the other {len(rest)} steps")


def agreement_with_pipeline(home: Path, work: Path, month: str, modules: list[str]) -> str:
    import duckdb

    exports = sorted((home / "exports" / "segment_membership").glob("*/membership-*.parquet"))
    con = duckdb.connect()
    parts = []
    for name in (m.split(".")[-1] for m in modules):
        same, total = con.execute(
            f"select count(*) filter (where p.segment_id = b.segment_id), count(*) "
            f"from '{exports[-1]}' p join '{work / name}.parquet' b using (customer_id)"
        ).fetchone()
        parts.append(f"{name} {same / total:.4%} of {total:,}")
    return "; ".join(parts)


if __name__ == "__main__":
    main()
