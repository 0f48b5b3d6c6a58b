"""The calibration/holdout check: the holdout is counted as the calibration period is (purchase
days), predictions are the model's conditional expectation, and on CDNOW's 39 + 39 weeks the
fitted BG/NBD predicts each frequency group's holdout purchases about right
(segment_cadence/defs/segments/calibration.py, issue 16)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from segment_cadence.defs.segments import calibration, churn, value


@pytest.fixture(scope="module")
def cdnow_log() -> pd.DataFrame:
    log = pd.read_csv(
        churn._lifetimes_dataset("CDNOW_sample.txt"),
        sep=r"\s+",
        header=None,
        names=["master_id", "customer", "day", "quantity", "amount"],
        dtype={"day": str},
    )
    return log.assign(day=pd.to_datetime(log["day"], format="%Y%m%d"))[["customer", "day"]]


def test_the_holdout_counts_purchase_days_after_the_cutoff_for_calibration_customers():
    log = pd.DataFrame(
        {
            "customer": ["a", "a", "a", "a", "a", "b", "b", "c"],
            "day": pd.to_datetime(
                [
                    "2025-01-01",
                    "2025-01-15",
                    "2025-02-03",  # holdout
                    "2025-02-03",  # the same day again: one purchase day
                    "2025-04-01",  # after the holdout
                    "2025-01-20",
                    "2025-01-31",  # the cut-off day itself is calibration
                    "2025-02-10",  # first purchase after the cut-off: not a calibration customer
                ]
            ),
        }
    )
    history = calibration.holdout_history(log, "2025-01-31", "2025-02-28")
    assert history.x.tolist() == [1.0, 1.0]  # a and b, c left out
    assert history.holdout_purchases.tolist() == [1.0, 0.0]
    assert history.holdout_weeks == pytest.approx(4.0)
    with pytest.raises(ValueError, match="the holdout must end after the cut-off"):
        calibration.holdout_history(log, "2025-01-31", "2025-01-31")


def test_on_cdnow_the_fit_predicts_each_groups_holdout_purchases_about_right(cdnow_log):
    history = calibration.holdout_history(cdnow_log, churn.CDNOW_CALIBRATION_END, "1998-06-30")
    assert len(history.x) == 2357 and history.holdout_weeks == 39
    result = calibration.calibrate(history, "bgnbd")
    assert result.params.r == pytest.approx(0.243, rel=0.01)  # the published calibration fit
    groups = {g.label: g for g in result.groups}
    assert list(groups) == ["0", "1", "2", "3", "4", "5", "6", "7+"]
    assert sum(g.customers for g in result.groups) == 2357
    for group in result.groups:  # means within a third, and the order of the groups kept
        assert group.predicted == pytest.approx(group.actual, rel=0.35), group.label
    predicted = [g.predicted for g in result.groups]
    assert predicted == sorted(predicted)
    expected = value.expected_purchases(result.params, 39, history.x, history.t_x, history.T)
    everyone = np.abs(history.holdout_purchases - expected).mean()
    assert result.mean_absolute_error == pytest.approx(everyone)
    # In total it under-predicts by 12 % (1,653 expected against 1,882 purchase days).
    assert sum(expected) == pytest.approx(history.holdout_purchases.sum(), rel=0.15)
    assert result.table()[0] == {
        "calibration repeat purchases": "0",
        "customers": groups["0"].customers,
        "actual": round(groups["0"].actual, 3),
        "predicted": round(groups["0"].predicted, 3),
        "MAE per customer": round(groups["0"].mean_absolute_error, 3),
    }


def test_the_command_prints_the_groups_and_writes_the_chart(tmp_path, monkeypatch, capsys):
    """`segment-cadence churn calibrate` on a warehouse's ingested order lines."""
    import xml.etree.ElementTree as ET
    from datetime import date, timedelta

    from segment_cadence.cli.main import main

    rng = np.random.default_rng(5)
    orders = []
    for customer in range(600):
        first = date(2024, 1, 1) + timedelta(days=int(rng.integers(0, 365)))
        rate = rng.gamma(0.8, 1 / 40)  # purchases a day while alive
        alive_until = first + timedelta(days=int(rng.exponential(400)))
        day = first
        while day <= min(alive_until, date(2025, 12, 31)):
            orders.append((f"C{customer:04d}", day))
            day += timedelta(days=max(1, int(rng.exponential(1 / rate))))
    db = tmp_path / "warehouse.duckdb"
    write_monthly_slices(db, orders)
    monkeypatch.setenv("SEGMENT_CADENCE_HOME", str(tmp_path))
    monkeypatch.setenv("SEGMENT_CADENCE_WAREHOUSE", str(db))

    assert main(["churn", "calibrate", "--cutoff", "2025-06", "--months", "6"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("mbgnbd fitted on ")  # the shipped dictionary's model
    assert "holdout to 2025-12-31 (26.3 weeks)" in out
    assert (
        "| calibration repeat purchases | customers | actual | predicted | MAE per customer |"
        in out
    )
    assert "mean absolute error per customer: " in out
    svg = ET.fromstring((tmp_path / "calibration-2025-06.svg").read_text())
    names = [t.text for t in svg.iter("{http://www.w3.org/2000/svg}text")]
    assert "actual" in names and "predicted" in names

    assert main(["churn", "calibrate", "--cutoff", "2023-06"]) == 3
    assert "No purchases on or before 2023-06-30" in capsys.readouterr().out
    assert main(["churn", "calibrate", "--cutoff", "2025-09", "--months", "6"]) == 3
    assert capsys.readouterr().out.strip() == (
        "The holdout runs to 2026-03 but the warehouse's history ends at 2025-12: refresh "
        "the later months first, or ask for fewer --months."
    )


def write_monthly_slices(db, orders: list[tuple[str, object]]) -> None:
    """The purchase history as the refresh keeps it (history.int_customer_orders_monthly,
    the columns the check reads), from (customer, day) purchases."""
    import duckdb

    con = duckdb.connect(str(db))
    con.execute("create table purchases (customer_id varchar, order_date date)")
    con.executemany("insert into purchases values (?, ?)", orders)
    con.execute("create schema history")
    con.execute(
        "create table history.int_customer_orders_monthly as select customer_id, "
        "cast(date_trunc('month', order_date) as date) as activity_month, "
        "min(order_date) as first_order_date, max(order_date) as last_order_date, "
        "count(distinct order_date) as purchase_days from purchases group by all"
    )
    con.close()


def test_the_warehouse_history_is_the_one_a_transaction_log_gives(cdnow_log, tmp_path):
    """Added up from the monthly slices or counted from the log of purchases, the same
    calibration summary and holdout for every customer."""
    from datetime import date

    from segment_cadence.platform import warehouse

    db = tmp_path / "w.duckdb"
    log = cdnow_log.assign(customer=cdnow_log["customer"].map("{:05d}".format))  # one order
    write_monthly_slices(db, list(log.itertuples(index=False, name=None)))
    from_log = calibration.holdout_history(log, churn.CDNOW_CALIBRATION_END, "1998-06-30")
    with warehouse.connect(db, read_only=True) as con:
        from_slices = calibration.warehouse_holdout_history(
            con, date(1997, 9, 30), date(1998, 6, 30)
        )
    for name in ("x", "t_x", "T", "holdout_purchases"):
        np.testing.assert_allclose(getattr(from_slices, name), getattr(from_log, name), rtol=0)
    assert from_slices.holdout_weeks == from_log.holdout_weeks


def test_each_quarter_holds_out_its_last_six_months():
    from datetime import date

    assert calibration.quarterly_window(date(2025, 12, 31)) == (
        date(2025, 6, 30),
        date(2025, 12, 31),
    )
    assert calibration.quarterly_window(date(2026, 3, 31)) == (date(2025, 9, 30), date(2026, 3, 31))
    assert [m for m in range(1, 13) if calibration.is_quarter_end(date(2025, m, 28))] == [
        3,
        6,
        9,
        12,
    ]
    assert calibration.holdout_window("2025-06", 6) == (date(2025, 6, 30), date(2025, 12, 31))
    with pytest.raises(ValueError, match="at least one month"):
        calibration.holdout_window("2025-06", 0)
