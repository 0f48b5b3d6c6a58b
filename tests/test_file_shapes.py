"""Every common file shape loads through the mapping alone: delimiters, compression, Parquet,
JSON Lines, encodings, headers, date and number formats, quoting, globs; and only the
columns the features need are required."""

from __future__ import annotations

import gzip
import json
import zipfile
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pytest
import yaml

from segment_cadence.defs.ingest import assets as ingest_assets
from segment_cadence.defs.ingest import ingest
from segment_cadence.platform import warehouse
from segment_cadence.platform.resources import ConfigFiles, WarehouseResource

# The same three purchases in every shape: (customer, ISO day, amount).
PURCHASES = [("C1", "1997-01-01", 11.77), ("C1", "1997-01-18", 17.96), ("C2", "1997-01-12", 12.0)]


def orders_only(tmp_path: Path, path: str, columns: dict[str, str], **entry: Any) -> Path:
    """A mapping with nothing but an orders source (customers come from the orders)."""
    document = {"sources": {"orders": {"path": path, "columns": columns, **entry}}}
    mapping = tmp_path / "sources.yaml"
    mapping.write_text(yaml.safe_dump(document))
    return mapping


def loaded(tmp_path: Path, mapping: Path) -> tuple[list[tuple], dict[str, ingest.LoadResult]]:
    config = ingest.load_config(mapping, base=tmp_path)
    with warehouse.connect(tmp_path / "w.duckdb") as con:
        results = ingest.load_all(con, config)
        rows = con.execute(
            "select customer_id, cast(order_date as varchar), round(amount, 2) "
            "from raw.orders order by order_date"
        ).fetchall()
    return rows, results


def expected() -> list[tuple]:
    return sorted(PURCHASES, key=lambda p: p[1])


COLUMNS = {"customer_id": "customer", "order_date": "day", "amount": "dollars"}


@pytest.mark.slow
def test_whitespace_aligned_text_without_a_header_loads_with_yyyymmdd_dates(tmp_path):
    # The CDNOW master log's shape: leading blanks, runs of blanks, no header.
    lines = [f"  {c:>6} {d.replace('-', '')}   1  {a:>6.2f}" for c, d, a in PURCHASES]
    (tmp_path / "log.txt").write_text("\n".join(lines) + "\n\n")
    mapping = orders_only(
        tmp_path,
        "log.txt",
        COLUMNS,
        file={"delimiter": "whitespace", "names": ["customer", "day", "cds", "dollars"]},
        date_format="yyyymmdd",
    )
    rows, results = loaded(tmp_path, mapping)
    assert rows == expected()
    assert results["orders"].rows_quarantined == 0


def test_a_single_space_delimiter_means_runs_of_blanks(tmp_path):
    lines = ["customer day dollars"] + [
        f"{c}   {d.replace('-', '')}    {a}" for c, d, a in PURCHASES
    ]
    (tmp_path / "log.txt").write_text("\n".join(lines) + "\n")
    mapping = orders_only(
        tmp_path, "log.txt", COLUMNS, file={"delimiter": " "}, date_format="%Y%m%d"
    )
    assert loaded(tmp_path, mapping)[0] == expected()


def test_gzipped_tsv_loads_by_its_extension(tmp_path):
    text = "customer\tday\tdollars\n" + "".join(f"{c}\t{d}\t{a}\n" for c, d, a in PURCHASES)
    (tmp_path / "orders.tsv.gz").write_bytes(gzip.compress(text.encode()))
    assert loaded(tmp_path, orders_only(tmp_path, "orders.tsv.gz", COLUMNS))[0] == expected()


def test_a_zipped_csv_in_another_encoding_loads(tmp_path):
    text = "customer;day;dollars;note\n" + "".join(
        f"{c};{d};{a};Bague à l’œil\n" for c, d, a in PURCHASES
    )
    with zipfile.ZipFile(tmp_path / "export.zip", "w") as archive:
        archive.writestr("orders.csv", text.encode("cp1252"))
    mapping = orders_only(
        tmp_path,
        "export.zip",
        COLUMNS,
        format="csv",
        file={"delimiter": ";", "encoding": "cp1252"},
    )
    rows, _ = loaded(tmp_path, mapping)
    assert rows == expected()


def test_parquet_with_yyyymmdd_integers_loads(tmp_path):
    con = duckdb.connect()
    values = ", ".join(f"('{c}', {d.replace('-', '')}, {a})" for c, d, a in PURCHASES)
    con.execute(
        f"copy (select * from (values {values}) as t(customer, day, dollars)) "
        f"to '{tmp_path / 'orders.parquet'}' (format parquet)"
    )
    mapping = orders_only(tmp_path, "orders.parquet", COLUMNS, date_format="yyyymmdd")
    assert loaded(tmp_path, mapping)[0] == expected()


def test_json_lines_with_epoch_seconds_and_iso_offsets_load(tmp_path):
    epoch = {"1997-01-01": 852076800}  # 1997-01-01 00:00:00 UTC
    records = [
        {"customer": "C1", "day": epoch["1997-01-01"], "dollars": 11.77},
        {"customer": "C1", "day": "1997-01-18T23:30:00-00:30", "dollars": 17.96},
        {"customer": "C2", "day": "1997-01-12T10:00:00+02:00", "dollars": 12.0},
    ]
    (tmp_path / "orders.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    mapping = orders_only(tmp_path, "orders.jsonl", COLUMNS, date_format=["iso", "epoch"])
    # A date keeps the calendar day as written, whatever the offset.
    assert loaded(tmp_path, mapping)[0] == expected()


def test_a_shop_export_with_day_first_dates_a_decimal_comma_and_currency_loads(tmp_path):
    # One row per line item, the order number repeated, a currency symbol, thousands dots.
    text = (
        "Order;Customer;Date;Total\n"
        "#1001;C1;01.01.1997;€ 11,77\n"
        "#1002;C1;18.01.1997 14:05;17,96 EUR\n"
        "#1003;C2;12/01/1997;1.012,00\n"
    )
    (tmp_path / "shop.csv").write_text(text)
    mapping = orders_only(
        tmp_path,
        "shop.csv",
        {"order_id": "Order", "customer_id": "Customer", "order_date": "Date", "amount": "Total"},
        file={"delimiter": ";"},
        date_format="dayfirst",
        decimal_separator=",",
        thousands_separator=".",
    )
    rows, _ = loaded(tmp_path, mapping)
    assert rows == [
        ("C1", "1997-01-01", 11.77),
        ("C2", "1997-01-12", 1012.0),
        ("C1", "1997-01-18", 17.96),
    ]


def test_month_first_text_with_times_loads(tmp_path):
    text = "customer,day,dollars\nC1,01/01/1997 3:04 PM,11.77\nC1,1/18/1997,17.96\nC2,01/12/97,12\n"
    (tmp_path / "orders.csv").write_text(text)
    mapping = orders_only(tmp_path, "orders.csv", COLUMNS, date_format="monthfirst")
    assert loaded(tmp_path, mapping)[0] == expected()


def test_a_quoted_delimiter_far_past_any_sample_loads(tmp_path):
    # Regression: the delimiter in a quoted field after ~20,000 rows crashed the ingest,
    # since only a sample was sniffed for the quoting.
    rows = [f"C{i % 50},1997-01-{i % 28 + 1:02d},{i % 90 + 1}.50" for i in range(30_000)]
    text = "customer,day,dollars\n" + "\n".join(rows) + '\nC1,1997-01-05,"12,50"\n'
    (tmp_path / "orders.csv").write_text(text)
    mapping = orders_only(tmp_path, "orders.csv", COLUMNS, decimal_separator=",")
    _, results = loaded(tmp_path, mapping)
    assert results["orders"].rows_read == 30_001
    assert results["orders"].rows_loaded == 30_001
    with warehouse.connect(tmp_path / "w.duckdb", read_only=True) as con:
        last = con.execute("select amount from raw.orders where order_line_id = '30001'")
        assert last.fetchone() == (12.5,)


def test_a_chosen_quote_and_escape_character_read_delimiters_and_quotes_inside_fields(tmp_path):
    text = (
        "customer,day,dollars,note\n"
        "C1,1997-01-01,11.77,'ring, gold'\n"
        "C1,1997-01-18,17.96,'the \\'big\\' one'\n"
        "C2,1997-01-12,12,plain\n"
    )
    (tmp_path / "orders.csv").write_text(text)
    mapping = orders_only(
        tmp_path,
        "orders.csv",
        {**COLUMNS, "category": "note"},
        file={"quote": "'", "escape": "\\"},
    )
    rows, _ = loaded(tmp_path, mapping)
    assert rows == expected()
    with warehouse.connect(tmp_path / "w.duckdb", read_only=True) as con:
        notes = con.execute("select category from raw.orders order by order_date").fetchall()
    assert notes == [("ring, gold",), ("plain",), ("the 'big' one",)]


def test_a_glob_reads_several_files_and_a_header_less_csv_takes_its_names(tmp_path):
    (tmp_path / "exports").mkdir()
    for index, (c, d, a) in enumerate(PURCHASES):
        (tmp_path / "exports" / f"part-{index}.csv").write_text(f"{c}|{d}|{a}\n")
    mapping = orders_only(
        tmp_path,
        "exports/part-*.csv",
        COLUMNS,
        file={"delimiter": "pipe", "header": False, "names": ["customer", "day", "dollars"]},
    )
    rows, results = loaded(tmp_path, mapping)
    assert rows == expected()
    assert len(results["orders"].files) == 3


def test_without_line_and_order_ids_each_row_is_a_line_and_an_order_is_a_purchase_day(tmp_path):
    text = "customer,day,dollars\nC1,1997-01-01,5\nC1,1997-01-01,6.77\nC1,1997-01-18,17.96\n"
    (tmp_path / "orders.csv").write_text(text)
    rows, results = loaded(tmp_path, orders_only(tmp_path, "orders.csv", COLUMNS))
    with warehouse.connect(tmp_path / "w.duckdb", read_only=True) as con:
        orders = con.execute(
            "select order_line_id, order_id, category from raw.orders order by order_line_id"
        ).fetchall()
        customers = con.execute(
            "select customer_id, signup_date, region from raw.customers"
        ).fetchall()
    assert orders == [
        ("1", "C1|1997-01-01", None),
        ("2", "C1|1997-01-01", None),
        ("3", "C1|1997-01-18", None),
    ]
    # No customers file: one customer per customer_id of the orders, details unknown.
    assert customers == [("C1", None, None)]
    assert results["customers"].origin == ingest.FROM_ORDERS


def test_a_value_no_format_reads_is_quarantined_with_the_record_as_written(tmp_path):
    text = "customer,day,dollars\nC1,01/01/1997,11.77\nC1,31/02/1997,1\nC2,12/01/1997,ten\n"
    (tmp_path / "orders.csv").write_text(text)
    mapping = orders_only(tmp_path, "orders.csv", COLUMNS, date_format="%d/%m/%Y")
    rows, results = loaded(tmp_path, mapping)
    assert rows == [("C1", "1997-01-01", 11.77)]
    assert results["orders"].quarantined == {"unparseable amount": 1, "unparseable order_date": 1}
    with warehouse.connect(tmp_path / "w.duckdb", read_only=True) as con:
        records = [
            json.loads(r[0])
            for r in con.execute(
                "select record from quarantine.rejected_rows order by source_row"
            ).fetchall()
        ]
    assert records == [
        {"customer": "C1", "day": "31/02/1997", "dollars": "1"},
        {"customer": "C2", "day": "12/01/1997", "dollars": "ten"},
    ]


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"format": "xlsx"}, "format: 'xlsx' is not a format"),
        ({"file": {"delimiter": "::"}}, "delimiter: '::' is not one character"),
        ({"file": {"encoding": "klingon"}}, "unknown encoding 'klingon'"),
        ({"file": {"sep": ";"}}, "unknown option 'sep'"),
        ({"date_format": "dd/mm/yyyy"}, "neither a strptime pattern"),
        ({"decimal_separator": ";"}, "decimal_separator: ';'"),
        ({"thousands_separator": ","}, "both ','"),
    ],
)
def test_a_shape_the_reader_cannot_take_is_a_one_line_config_error(tmp_path, entry, message):
    mapping = orders_only(tmp_path, "orders.csv", COLUMNS, **entry)
    if "thousands_separator" in entry:
        mapping = orders_only(tmp_path, "orders.csv", COLUMNS, decimal_separator=",", **entry)
    with pytest.raises(ingest.IngestConfigError) as raised:
        ingest.load_config(mapping, base=tmp_path)
    assert message in str(raised.value) and "sources.orders" in str(raised.value)
    assert "\n" not in str(raised.value)


def test_a_shop_export_keyed_by_email_joins_customers_by_account_id_through_the_identity_map(
    tmp_path, monkeypatch
):
    # The CRM knows accounts and their emails; the shop's line items name the buyer by email
    # (in other letter cases, with blanks), repeat the order number, give a quantity and a
    # unit price, and write day-first dates and decimal commas. One buyer is nobody the CRM
    # knows.
    (tmp_path / "crm.csv").write_text(
        "Account,E-mail\nA-1,ann@example.org\nA-2,Bob@Example.org\nA-3,bob@example.org\n"
    )
    (tmp_path / "shop.csv").write_text(
        "Order;Buyer;Date;Qty;Unit price\n"
        "#1;  ANN@example.org ;05/01/2025;1;450,00\n"
        "#1;ann@example.org;05/01/2025;2;60,25\n"
        "#2;bob@example.org;17/03/2025;1;2300\n"
        "#3;eve@example.org;18/03/2025;1;99,00\n"
    )
    document = {
        "sources": {
            "customers": {
                "path": "crm.csv",
                "columns": {"customer_id": "Account"},
                "identity": {"email": "E-mail"},
            },
            "orders": {
                "path": "shop.csv",
                "file": {"delimiter": ";"},
                "columns": {
                    "order_id": "Order",
                    "order_date": "Date",
                    "unit_price": "Unit price",
                    "quantity": "Qty",
                },
                "identity": {"email": "Buyer"},
                "date_format": "dayfirst",
                "decimal_separator": ",",
            },
        }
    }
    mapping = tmp_path / "sources.yaml"
    mapping.write_text(yaml.safe_dump(document))
    config = ingest.load_config(mapping, base=tmp_path)
    with warehouse.connect(tmp_path / "w.duckdb") as con:
        results = ingest.load_all(con, config)
        orders = con.execute(
            "select order_id, customer_id, cast(order_date as varchar), amount "
            "from raw.orders order by order_line_id"
        ).fetchall()
        refused = con.execute("select reason, record from quarantine.rejected_rows").fetchall()
        summary = {
            name: ingest.identity_summary(con, spec) for name, spec in config.sources.items()
        }
    assert orders == [
        ("#1", "A-1", "2025-01-05", 450.0),
        ("#1", "A-1", "2025-01-05", 120.5),
        # bob@example.org is two accounts' email: the smaller id, deterministically.
        ("#2", "A-2", "2025-03-17", 2300.0),
    ]
    assert [r[0] for r in refused] == ["no customer with this email"]
    assert json.loads(refused[0][1])["Buyer"] == "eve@example.org"
    assert results["orders"].quarantined == {"no customer with this email": 1}
    assert summary["customers"] == {"identity": "email", "keys": 2, "ambiguous_keys": 1}
    assert summary["orders"]["rows_matched"] == 3 and summary["orders"]["match_rate"] == 0.75

    # The map is an asset whose materialisation shows it.
    monkeypatch.setenv("SEGMENT_CADENCE_SOURCES", str(mapping))
    monkeypatch.setenv("SEGMENT_CADENCE_HOME", str(tmp_path))
    result = dg.materialize(
        [ingest_assets.identity_map],
        resources={
            "warehouse": WarehouseResource(path=str(tmp_path / "w.duckdb")),
            "config_files": ConfigFiles(),
        },
    )
    [materialization] = result.asset_materializations_for_node("raw__identity_map")
    shown = {k: v.value for k, v in materialization.metadata.items()}
    assert shown["matched_on"] == "email" and shown["ambiguous_keys"] == 1
    assert shown["match_rates"] == {"orders": 0.75}
