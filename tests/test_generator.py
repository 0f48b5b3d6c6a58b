"""The example jeweller: reproducible, on contract, and carrying the patterns (seasonality,
prospects, planted governance problems) that the features and checks downstream rely on."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import pytest

from segment_cadence.example.generator import TABLES, GeneratorConfig, generate, main

SMALL = GeneratorConfig(customers=2_000, end_month="2025-12", history_months=36, seed=7)
KEYS = {
    "customers": "customer_id",
    "orders": "order_line_id",
    "engagement_events": "event_id",
    "campaign_sends": "send_id",
    "team_members": "sender_id",
}
CONTRACT = {
    "customers": [
        ("customer_id", "VARCHAR"),
        ("signup_date", "DATE"),
        ("region", "VARCHAR"),
        ("age_band", "VARCHAR"),
        ("language", "VARCHAR"),
        ("email_consent", "BOOLEAN"),
    ],
    "orders": [
        ("order_line_id", "VARCHAR"),
        ("order_id", "VARCHAR"),
        ("customer_id", "VARCHAR"),
        ("order_date", "DATE"),
        ("amount", "DOUBLE"),
        ("category", "VARCHAR"),
    ],
    "engagement_events": [
        ("event_id", "VARCHAR"),
        ("customer_id", "VARCHAR"),
        ("event_type", "VARCHAR"),
        ("channel", "VARCHAR"),
        ("event_at", "TIMESTAMP"),
    ],
    "campaign_sends": [
        ("send_id", "VARCHAR"),
        ("campaign_id", "VARCHAR"),
        ("campaign_name", "VARCHAR"),
        ("customer_id", "VARCHAR"),
        ("sender_id", "VARCHAR"),
        ("channel", "VARCHAR"),
        ("targeted_segment", "VARCHAR"),
        ("sent_at", "TIMESTAMP"),
    ],
    "team_members": [
        ("sender_id", "VARCHAR"),
        ("name", "VARCHAR"),
        ("team", "VARCHAR"),
        ("joined_date", "DATE"),
    ],
}


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("jeweller")
    generate(out, SMALL, progress=False)
    return out


def connect(folder: Path) -> duckdb.DuckDBPyConnection:
    """An in-memory database with one view per generated table."""
    con = duckdb.connect()
    for table in TABLES:
        con.execute(f"CREATE VIEW {table} AS SELECT * FROM '{folder / table}.parquet'")
    return con


def one(folder: Path, sql: str):
    with connect(folder) as con:
        return con.execute(sql).fetchone()[0]


def content(folder: Path, table: str) -> list[tuple]:
    with connect(folder) as con:
        return con.execute(f"SELECT * FROM {table} ORDER BY {KEYS[table]}").fetchall()


def test_writes_one_parquet_file_per_table_and_returns_row_counts(small: Path, tmp_path: Path):
    counts = generate(tmp_path, GeneratorConfig(customers=300, seed=3), progress=False)
    assert list(counts) == list(TABLES)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{t}.parquet" for t in TABLES)
    for table, rows in counts.items():
        assert one(tmp_path, f"SELECT count(*) FROM {table}") == rows > 0
    assert counts["customers"] == 300


def test_same_seed_gives_identical_tables(small: Path, tmp_path: Path):
    generate(tmp_path, SMALL, progress=False)
    for table in TABLES:
        assert content(small, table) == content(tmp_path, table), table


def test_different_seed_gives_different_data(small: Path, tmp_path: Path):
    other = GeneratorConfig(**{**SMALL.__dict__, "seed": 8})
    generate(tmp_path, other, progress=False)
    for table in ("customers", "orders", "engagement_events", "campaign_sends"):
        assert content(small, table) != content(tmp_path, table), table


def test_schemas_match_the_contract(small: Path):
    for table, columns in CONTRACT.items():
        with connect(small) as con:
            described = con.execute(f"DESCRIBE {table}").fetchall()
        assert [(name, kind) for name, kind, *_ in described] == columns, table


def test_ids_are_unique_and_well_formed(small: Path):
    for table, key in KEYS.items():
        assert one(small, f"SELECT count(*) - count(DISTINCT {key}) FROM {table}") == 0, table
    assert one(small, r"SELECT bool_and(regexp_full_match(customer_id, 'C\d{8}')) FROM customers")
    pattern = (
        r"regexp_full_match(order_line_id, 'L\d{10}') AND regexp_full_match(order_id, 'O\d{10}')"
    )
    assert one(small, f"SELECT bool_and({pattern}) FROM orders")
    assert (
        one(
            small, "SELECT max(lines) FROM (SELECT count(*) AS lines FROM orders GROUP BY order_id)"
        )
        <= 3
    )


def test_no_dates_after_end_month_or_before_signup(small: Path):
    end, start = date(2025, 12, 31), date(2023, 1, 1)
    assert one(small, "SELECT max(signup_date) FROM customers") <= end
    assert one(small, "SELECT min(order_date) FROM orders") >= start
    assert one(small, "SELECT max(order_date) FROM orders") <= end
    assert one(small, "SELECT min(event_at)::DATE FROM engagement_events") >= start
    assert one(small, "SELECT max(event_at)::DATE FROM engagement_events") <= end
    assert one(small, "SELECT min(sent_at)::DATE FROM campaign_sends") >= start
    assert one(small, "SELECT max(sent_at)::DATE FROM campaign_sends") <= end
    assert one(small, "SELECT max(joined_date) FROM team_members") <= end
    for table, column in [
        ("orders", "order_date"),
        ("engagement_events", "event_at::DATE"),
        ("campaign_sends", "sent_at::DATE"),
    ]:
        before_signup = one(
            small,
            f"SELECT count(*) FROM {table} JOIN customers USING (customer_id) "
            f"WHERE {column} < signup_date",
        )
        assert before_signup == 0, table


def test_every_order_references_a_known_customer_with_a_positive_amount(small: Path):
    assert one(small, "SELECT count(*) FROM orders ANTI JOIN customers USING (customer_id)") == 0
    for table in ("engagement_events", "campaign_sends"):
        orphans = one(
            small, f"SELECT count(*) FROM {table} ANTI JOIN customers USING (customer_id)"
        )
        assert orphans == 0, table
    assert (
        one(small, "SELECT count(*) FROM campaign_sends ANTI JOIN team_members USING (sender_id)")
        == 0
    )
    assert one(small, "SELECT min(amount) FROM orders") > 0
    assert one(small, "SELECT count(*) FROM orders WHERE amount <> round(amount, 2)") == 0


def test_amounts_are_high_ticket_with_a_long_tail(small: Path):
    median = one(small, "SELECT median(amount) FROM orders")
    assert 250 < median < 800
    assert one(small, "SELECT max(amount) FROM orders") > 10_000
    bridal, rest = one(
        small,
        "SELECT [median(amount) FILTER (WHERE category = 'bridal'), "
        "median(amount) FILTER (WHERE category <> 'bridal')] FROM orders",
    )
    assert bridal > 2 * rest


def test_channels_follow_event_types(small: Path):
    pairs = set(
        connect(small)
        .execute("SELECT DISTINCT event_type, channel FROM engagement_events")
        .fetchall()
    )
    allowed = {
        ("email_open", "email"),
        ("email_click", "email"),
        ("site_visit", "web"),
        ("store_visit", "store"),
        ("reply", "email"),
        ("reply", "whatsapp"),
    }
    assert pairs <= allowed
    assert {event_type for event_type, _ in pairs} == {t for t, _ in allowed}


def test_seasonal_peak(tmp_path: Path):
    generate(tmp_path, GeneratorConfig(customers=5_000, seed=5), progress=False)
    by_month = dict(
        connect(tmp_path)
        .execute("SELECT month(order_date), count(*) FROM orders GROUP BY 1")
        .fetchall()
    )
    assert by_month[11] > 1.5 * by_month[7]
    assert by_month[10] > by_month[6] and by_month[12] > by_month[8]


def test_some_campaigns_target_paused_segments(small: Path):
    paused = one(
        small,
        "SELECT count(DISTINCT campaign_id) FROM campaign_sends "
        "WHERE targeted_segment IN ('post_purchase_cooldown', 'evaluation')",
    )
    campaigns = one(small, "SELECT count(DISTINCT campaign_id) FROM campaign_sends")
    assert 1 <= paused <= 0.1 * campaigns
    assert 2 * 36 <= campaigns <= 4 * 36


def test_some_sends_by_senders_in_first_30_days(small: Path):
    early = one(
        small,
        "SELECT count(*) FROM campaign_sends JOIN team_members USING (sender_id) "
        "WHERE sent_at::DATE < joined_date + 30",
    )
    assert early > 0
    assert (
        one(small, "SELECT count(*) FROM team_members WHERE joined_date > DATE '2025-10-31'") >= 2
    )
    assert (
        one(
            small,
            "SELECT count(*) FROM campaign_sends JOIN team_members USING (sender_id) "
            "WHERE sent_at::DATE < joined_date",
        )
        == 0
    )


def test_some_customers_have_no_orders(small: Path):
    share = one(
        small,
        "SELECT avg((customer_id NOT IN (SELECT customer_id FROM orders))::INTEGER) FROM customers",
    )
    assert 0.10 < share < 0.25
    repeat = one(
        small,
        "SELECT avg((n >= 2)::INTEGER) FROM "
        "(SELECT count(DISTINCT order_id) AS n FROM orders GROUP BY customer_id)",
    )
    assert 0.2 < repeat < 0.7


def test_lines_per_customer_follow_the_configured_mean(tmp_path: Path):
    counts = generate(
        tmp_path, GeneratorConfig(customers=3_000, orders_per_customer=6.0, seed=2), progress=False
    )
    assert 5.0 < counts["orders"] / 3_000 < 7.0


def test_config_is_validated():
    with pytest.raises(ValueError, match="end_month"):
        GeneratorConfig(end_month="2026/10")
    with pytest.raises(ValueError, match="customers"):
        GeneratorConfig(customers=0)
    assert GeneratorConfig(end_month="2026-10", history_months=36).start_date == date(2023, 11, 1)


def test_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    out = tmp_path / "raw"
    argv = ["--customers", "200", "--end-month", "2024-06", "--history-months", "12"]
    assert main([*argv, "--seed", "1", "--out", str(out), "--no-progress"]) == 0
    assert "customers" in capsys.readouterr().out
    assert one(out, "SELECT max(order_date) FROM orders") <= date(2024, 6, 30)
