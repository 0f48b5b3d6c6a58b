"""A user's own files load through a column mapping; bad rows are quarantined, never lost."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from segment_cadence import ingest, warehouse

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


def test_missing_file_and_unmapped_canonical_column_are_clear_errors(tmp_path, foreign_files):
    document = yaml.safe_load(foreign_files.read_text())
    del document["sources"]["orders"]["columns"]["category"]
    foreign_files.write_text(yaml.safe_dump(document))
    with pytest.raises(ingest.IngestConfigError, match="does not map canonical column"):
        ingest.load_config(foreign_files)
    document["sources"]["orders"]["columns"]["category"] = "Type"
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
