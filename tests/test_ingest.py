"""A user's own files load through a column mapping; bad rows are quarantined, never lost."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest
import yaml

from segment_cadence.defs.ingest import ingest
from segment_cadence.platform import warehouse

CUSTOMERS_CSV = """\
Kunde;Angemeldet;Gebiet;Alter;Sprache;Einwilligung
K1;01/02/2024;North;25-34;en;true
K2;15/03/2024;South;35-44;hi;false
K3;20/04/2024;East;45-54;ta;true
"""

# An order log with its own column names and a day-first date format, and one bad row of
# each kind.
ORDERS_CSV = """\
LineRef;OrderRef;Client;Placed;Value;Type
A1;O1;K1;05/01/2025;450.00;rings
A2;O1;K1;05/01/2025;120.50;earrings
A3;O2;K2;17/03/2025;2300;bridal
;O3;K2;18/03/2025;99.00;rings
A5;O4;K3;31/02/2025;300;rings
A6;O5;K3;01/04/2025;-40;repairs
A7;O6;K3;02/04/2025;98765432;watches
A1;O1;K1;05/01/2025;450.00;rings
A9;O7;K9;03/04/2025;150;rings
A10;O8;K3;04/04/2025;lots;rings
"""


def mapping(tmp_path: Path, orders_path: Path, customers_path: Path) -> Path:
    document = {
        "max_order_amount": 1_000_000,
        "sources": {
            "customers": {
                "path": str(customers_path),
                "date_format": "%d/%m/%Y",
                "csv": {"delimiter": ";"},
                "columns": {
                    "customer_id": "Kunde",
                    "signup_date": "Angemeldet",
                    "region": "Gebiet",
                    "age_band": "Alter",
                    "language": "Sprache",
                    "email_consent": "Einwilligung",
                },
            },
            "orders": {
                "path": str(orders_path),
                "format": "csv",
                "date_format": "%d/%m/%Y",
                "csv": {"delimiter": ";"},
                "columns": {
                    "order_line_id": "LineRef",
                    "order_id": "OrderRef",
                    "customer_id": "Client",
                    "order_date": "Placed",
                    "amount": "Value",
                    "category": "Type",
                },
            },
        },
    }
    path = tmp_path / "sources.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


@pytest.fixture()
def foreign_files(tmp_path: Path) -> Path:
    (tmp_path / "kunden.csv").write_text(CUSTOMERS_CSV)
    (tmp_path / "orders.csv").write_text(ORDERS_CSV)
    return mapping(tmp_path, tmp_path / "orders.csv", tmp_path / "kunden.csv")


def test_foreign_column_names_and_date_format_load_without_code_changes(tmp_path, foreign_files):
    config = ingest.load_config(foreign_files)
    with warehouse.connect(tmp_path / "w.duckdb") as con:
        results = ingest.load_all(con, config)
        orders = con.execute(
            "select order_line_id, customer_id, order_date, amount from raw.orders order by 1"
        ).fetchall()
        customers = con.execute(
            "select customer_id, signup_date from raw.customers order by 1"
        ).fetchall()
    assert results["customers"].rows_loaded == 3
    assert str(customers[0][1]) == "2024-02-01"
    assert [o[0] for o in orders] == ["A1", "A2", "A3"]
    assert str(orders[2][2]) == "2025-03-17" and orders[2][3] == 2300.0


@pytest.mark.slow
def test_bad_rows_are_quarantined_with_their_reason_and_counted(tmp_path, foreign_files):
    config = ingest.load_config(foreign_files)
    with warehouse.connect(tmp_path / "w.duckdb") as con:
        result = ingest.load_all(con, config)["orders"]
        kept = con.execute(
            "select source_row, reason, record from quarantine.rejected_rows "
            "where source = 'orders' order by source_row"
        ).fetchall()
    assert result.rows_read == 10
    assert result.rows_loaded == 3
    assert result.quarantined == {
        "missing order_line_id": 1,
        "unparseable order_date": 1,
        "negative amount": 1,
        "absurd amount": 1,
        "duplicate order_line_id": 1,
        "unknown customer_id": 1,
        "unparseable amount": 1,
    }
    assert result.rows_loaded + result.rows_quarantined == result.rows_read
    by_row = {row: (reason, record) for row, reason, record in kept}
    assert by_row[5][0] == "unparseable order_date" and "31/02/2025" in by_row[5][1]
    assert by_row[8][0] == "duplicate order_line_id"


def test_unchanged_files_are_not_reloaded_and_reload_is_idempotent(tmp_path, foreign_files):
    config = ingest.load_config(foreign_files)
    with warehouse.connect(tmp_path / "w.duckdb") as con:
        ingest.load_all(con, config)
        again = ingest.load_all(con, config)
        forced = ingest.load_all(con, config, force=True)
        counts = con.execute(
            "select (select count(*) from raw.orders), "
            "(select count(*) from quarantine.rejected_rows where source = 'orders')"
        ).fetchone()
    assert again["orders"].skipped and not forced["orders"].skipped
    assert again["orders"].quarantined == forced["orders"].quarantined
    assert counts == (3, 7)


def test_mapping_to_a_missing_column_is_a_clear_error(tmp_path, foreign_files):
    document = yaml.safe_load(foreign_files.read_text())
    document["sources"]["orders"]["columns"]["amount"] = "Betrag"
    foreign_files.write_text(yaml.safe_dump(document))
    config = ingest.load_config(foreign_files)
    with (
        warehouse.connect(tmp_path / "w.duckdb") as con,
        pytest.raises(ingest.IngestConfigError) as raised,
    ):
        ingest.load_all(con, config)
    assert "Betrag" in str(raised.value) and "LineRef" in str(raised.value)


def test_missing_file_and_unmapped_required_column_are_clear_errors(tmp_path, foreign_files):
    document = yaml.safe_load(foreign_files.read_text())
    del document["sources"]["orders"]["columns"]["amount"]
    foreign_files.write_text(yaml.safe_dump(document))
    with pytest.raises(ingest.IngestConfigError, match="does not map canonical column"):
        ingest.load_config(foreign_files)
    document["sources"]["orders"]["columns"]["amount"] = "Value"
    document["sources"]["orders"]["path"] = str(tmp_path / "nowhere.csv")
    foreign_files.write_text(yaml.safe_dump(document))
    config = ingest.load_config(foreign_files)
    with (
        warehouse.connect(tmp_path / "w.duckdb") as con,
        pytest.raises(ingest.IngestConfigError, match="no file"),
    ):
        ingest.load_all(con, config)


def test_empty_file_loads_zero_rows(tmp_path, foreign_files):
    (tmp_path / "orders.csv").write_text(ORDERS_CSV.splitlines()[0] + "\n")
    config = ingest.load_config(foreign_files)
    with warehouse.connect(tmp_path / "w.duckdb") as con:
        result = ingest.load_all(con, config)["orders"]
        assert con.execute("select count(*) from raw.orders").fetchone()[0] == 0
    assert result.rows_read == 0 and result.rows_quarantined == 0


def with_orders(tmp_path: Path, foreign_files: Path, rows: list[str], **top_level) -> Path:
    """The foreign mapping with these order rows (same customers), and extra top-level keys."""
    header = ORDERS_CSV.splitlines()[0]
    (tmp_path / "orders.csv").write_text("\n".join([header, *rows]) + "\n")
    document = yaml.safe_load(foreign_files.read_text())
    document.update(top_level)
    foreign_files.write_text(yaml.safe_dump(document))
    return foreign_files


def day_first(day: date) -> str:
    return day.strftime("%d/%m/%Y")


def test_implausible_dates_are_quarantined_with_their_reason_and_counted(tmp_path, foreign_files):
    with_orders(
        tmp_path,
        foreign_files,
        [
            "A1;O1;K1;01/01/1800;100;rings",
            "A2;O2;K1;01/01/2099;100;rings",
            "A3;O3;K2;05/01/2025;100;rings",
        ],
    )
    (tmp_path / "kunden.csv").write_text(CUSTOMERS_CSV + "K4;01/01/1850;West;25-34;en;true\n")
    config = ingest.load_config(foreign_files)
    with warehouse.connect(tmp_path / "w.duckdb") as con:
        results = ingest.load_all(con, config)
        kept = dict(
            con.execute(
                "select record, reason from quarantine.rejected_rows where source = 'orders'"
            ).fetchall()
        )
    assert results["orders"].quarantined == {"implausible order_date": 2}
    assert results["orders"].rows_loaded == 1
    assert results["customers"].quarantined == {"implausible signup_date": 1}
    assert sorted(r for r, reason in kept.items() if "1800" in r or "2099" in r) == sorted(kept)


def test_the_plausible_range_is_inclusive_of_its_earliest_day_and_of_tomorrow(
    tmp_path, foreign_files
):
    today = date.today()
    with_orders(
        tmp_path,
        foreign_files,
        [
            "A1;O1;K1;01/01/1900;100;rings",
            "A2;O2;K1;31/12/1899;100;rings",
            f"A3;O3;K1;{day_first(today + timedelta(days=1))};100;rings",
            f"A4;O4;K1;{day_first(today + timedelta(days=2))};100;rings",
        ],
    )
    config = ingest.load_config(foreign_files)
    with warehouse.connect(tmp_path / "w.duckdb") as con:
        ingest.load_all(con, config)
        loaded = con.execute("select order_line_id from raw.orders order by 1").fetchall()
    assert loaded == [("A1",), ("A3",)]


def test_implausible_timestamps_are_quarantined_by_their_day(tmp_path, foreign_files):
    tomorrow = date.today() + timedelta(days=1)
    (tmp_path / "events.csv").write_text(
        "event_id,customer_id,event_type,channel,event_at\n"
        f"E1,K1,open,email,{tomorrow} 23:59:59\n"
        f"E2,K1,open,email,{tomorrow + timedelta(days=1)} 00:00:00\n"
        "E3,K1,open,email,1899-12-31 23:59:59\n"
        "E4,K1,open,email,1900-01-01 00:00:00\n"
    )
    document = yaml.safe_load(foreign_files.read_text())
    document["sources"]["engagement_events"] = {"path": str(tmp_path / "events.csv")}
    foreign_files.write_text(yaml.safe_dump(document))
    config = ingest.load_config(foreign_files)
    with warehouse.connect(tmp_path / "w.duckdb") as con:
        result = ingest.load_all(con, config)["engagement_events"]
        loaded = con.execute("select event_id from raw.engagement_events order by 1").fetchall()
    assert loaded == [("E1",), ("E4",)]
    assert result.quarantined == {"implausible event_at": 2}


def test_the_plausible_range_comes_from_the_mapping_and_a_change_reloads(tmp_path, foreign_files):
    with_orders(tmp_path, foreign_files, ["A1;O1;K1;05/01/2025;100;rings"])
    with warehouse.connect(tmp_path / "w.duckdb") as con:
        first = ingest.load_all(con, ingest.load_config(foreign_files))["orders"]
        with_orders(
            tmp_path,
            foreign_files,
            ["A1;O1;K1;05/01/2025;100;rings"],
            plausible_dates={"earliest": date(2025, 2, 1), "latest_days_ahead": 0},
        )
        second = ingest.load_all(con, ingest.load_config(foreign_files))["orders"]
    assert first.rows_loaded == 1 and first.quarantined == {}
    assert not second.skipped
    assert second.rows_loaded == 0 and second.quarantined == {"implausible order_date": 1}


@pytest.mark.parametrize(
    ("plausible_dates", "expected"),
    [
        ("soon", "plausible_dates: expected a mapping"),
        ({"earliest": "soon"}, "plausible_dates.earliest: must be a date such as 1900-01-01"),
        ({"earliest": "1900-01-01 12:00"}, "plausible_dates.earliest: must be a date"),
        ({"earliest": date(2999, 1, 1)}, "plausible_dates.earliest: 2999-01-01 is not in the past"),
        ({"latest_days_ahead": -1}, "plausible_dates.latest_days_ahead: must be a whole number"),
        ({"latest_days_ahead": "one"}, "plausible_dates.latest_days_ahead: must be a whole number"),
        ({"latest_days_ahead": True}, "plausible_dates.latest_days_ahead: must be a whole number"),
        ({"latest": "tomorrow"}, "plausible_dates: unknown field 'latest'"),
    ],
)
def test_an_invalid_plausible_range_is_a_clear_config_error(
    tmp_path, foreign_files, plausible_dates, expected
):
    document = yaml.safe_load(foreign_files.read_text())
    document["plausible_dates"] = plausible_dates
    foreign_files.write_text(yaml.safe_dump(document))
    with pytest.raises(ingest.IngestConfigError) as raised:
        ingest.load_config(foreign_files)
    assert str(raised.value).startswith(f"{foreign_files}: {expected}")


def test_the_plausible_range_defaults_to_1900_and_tomorrow(foreign_files):
    assert ingest.load_config(foreign_files).plausible_dates == ingest.PlausibleDates(
        earliest=date(1900, 1, 1), latest_days_ahead=1
    )


def test_reloading_one_source_replaces_only_its_own_quarantined_rows(tmp_path, foreign_files):
    (tmp_path / "kunden.csv").write_text(CUSTOMERS_CSV + "K4;01/01/1850;West;25-34;en;true\n")
    config = ingest.load_config(foreign_files)
    with warehouse.connect(tmp_path / "w.duckdb") as con:
        ingest.load_all(con, config)
        with_orders(tmp_path, foreign_files, ["A1;O1;K1;05/01/2025;100;rings"])
        again = ingest.load_all(con, ingest.load_config(foreign_files))
        kept = dict(
            con.execute(
                "select source, count(*) from quarantine.rejected_rows group by 1"
            ).fetchall()
        )
    assert again["customers"].skipped and not again["orders"].skipped
    assert kept == {"customers": 1}
    assert again["orders"].rows_loaded == 1 and again["orders"].quarantined == {}


def test_a_single_parquet_file_lands_as_a_view_and_refused_rows_keep_their_file_position(
    tmp_path, foreign_files
):
    orders = tmp_path / "orders.parquet"
    with warehouse.connect(tmp_path / "w.duckdb") as con:
        con.execute(
            "copy (select * from (values ('A1', 'O1', 'K1', date '2025-01-05', 10.0, 'rings'), "
            "('A2', 'O2', 'K1', date '2025-01-06', 20.0, 'rings'), "
            "('A3', 'O3', 'K2', date '2025-01-07', -5.0, 'rings')) "
            "as t(LineRef, OrderRef, Client, Placed, Value, Type)) "
            f"to '{orders}' (format parquet)"
        )
        document = yaml.safe_load(foreign_files.read_text())
        document["sources"]["orders"].update(path=str(orders), format="parquet", date_format=None)
        foreign_files.write_text(yaml.safe_dump(document))
        result = ingest.load_all(con, ingest.load_config(foreign_files))["orders"]
        landed = con.execute(
            "select table_type from information_schema.tables "
            "where table_schema = 'landing' and table_name = 'orders'"
        ).fetchone()
        refused = con.execute(
            "select source_row, reason, record from quarantine.rejected_rows where source = 'orders'"
        ).fetchall()
    assert landed == ("VIEW",)
    assert result.rows_loaded == 2 and result.quarantined == {"negative amount": 1}
    assert [(row, reason) for row, reason, _ in refused] == [(3, "negative amount")]
    assert '"LineRef":"A3"' in refused[0][2] and "_source_row" not in refused[0][2]


def test_each_load_is_recorded_with_its_counts_and_an_unchanged_file_adds_no_record(
    tmp_path, foreign_files
):
    config = ingest.load_config(foreign_files)
    with warehouse.connect(tmp_path / "w.duckdb") as con:
        ingest.load_all(con, config)
        ingest.load_all(con, config)
        loads = con.execute(
            "select source, rows_loaded, rows_quarantined, fingerprint <> '' from raw._loads "
            "order by source"
        ).fetchall()
    assert loads == [("customers", 3, 0, True), ("orders", 3, 7, True)]
    # Written by the dbt ingest models: Python declares no table (tests/test_layout.py checks
    # every product module).
    assert not hasattr(warehouse, "DDL")
