"""The example jeweller: reproducible, realistic enough for the features to mean something."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from segment_cadence.generator import TABLES, GeneratorConfig, generate

SMALL = GeneratorConfig(customers=3_000, end_month="2025-12", history_months=36, seed=11)
KEYS = {"customers": "customer_id", "orders": "order_line_id", "engagement_events": "event_id",
        "campaign_sends": "send_id", "team_members": "sender_id"}  # fmt: skip


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("gen")
    generate(out, SMALL, progress=False)
    return out


def content(folder: Path, table: str) -> list[tuple]:
    return duckdb.sql(f"select * from '{folder / table}.parquet' order by {KEYS[table]}").fetchall()


def q(folder: Path, sql: str):
    con = duckdb.connect()
    for table in TABLES:
        con.execute(f"create view {table} as select * from '{folder / table}.parquet'")
    return con.execute(sql).fetchall()


def test_same_seed_gives_identical_tables(small, tmp_path):
    generate(tmp_path, SMALL, progress=False)
    for table in TABLES:
        assert content(small, table) == content(tmp_path, table), table


def test_different_seed_gives_different_data(small, tmp_path):
    generate(tmp_path, GeneratorConfig(**{**SMALL.__dict__, "seed": 12}), progress=False)
    assert content(small, "orders") != content(tmp_path, "orders")


def test_schemas_match_the_contract(small):
    expected = {
        "customers": [
            "customer_id",
            "signup_date",
            "region",
            "age_band",
            "language",
            "email_consent",
        ],
        "orders": ["order_line_id", "order_id", "customer_id", "order_date", "amount", "category"],
        "engagement_events": ["event_id", "customer_id", "event_type", "channel", "event_at"],
        "campaign_sends": [
            "send_id",
            "campaign_id",
            "campaign_name",
            "customer_id",
            "sender_id",
            "channel",
            "targeted_segment",
            "sent_at",
        ],  # fmt: skip
        "team_members": ["sender_id", "name", "team", "joined_date"],
    }
    for table, columns in expected.items():
        described = duckdb.sql(f"describe select * from '{small / table}.parquet'").fetchall()
        assert [c[0] for c in described] == columns, table


def test_no_dates_after_the_end_month_or_before_signup(small):
    late = q(
        small,
        """
        select (select count(*) from orders where order_date > date '2025-12-31')
             + (select count(*) from engagement_events where event_at >= timestamp '2026-01-01')
             + (select count(*) from campaign_sends where sent_at >= timestamp '2026-01-01')
    """,
    )[0][0]
    early = q(small, "select count(*) from orders join customers using (customer_id) "
                     "where order_date < signup_date")[0][0]  # fmt: skip
    assert late == 0 and early == 0


def test_orders_reference_known_customers_and_are_high_ticket(small):
    orphans, non_positive, median = q(
        small,
        """
        select count(*) filter (where c.customer_id is null), count(*) filter (where amount <= 0),
               median(amount)
        from orders o left join customers c using (customer_id)
    """,
    )[0]
    assert orphans == 0 and non_positive == 0
    assert 250 < median < 900


def test_festive_season_outsells_summer(small):
    november, july = q(
        small,
        """
        select count(*) filter (where month(order_date) = 11),
               count(*) filter (where month(order_date) = 7) from orders
    """,
    )[0]
    assert november > 2 * july


def test_governance_problems_are_planted(small):
    paused = q(small, "select count(*) from campaign_sends "
                      "where targeted_segment in ('post_purchase_cooldown', 'evaluation')")[0][0]  # fmt: skip
    new_sender = q(
        small,
        """
        select count(*) from campaign_sends s join team_members t using (sender_id)
        where s.sent_at < t.joined_date + interval 30 day and s.sent_at >= t.joined_date
    """,
    )[0][0]
    assert paused > 0 and new_sender > 0


def test_some_customers_never_buy_and_some_buy_often(small):
    never, often = q(
        small,
        """
        select count(*) filter (where n = 0), count(*) filter (where n >= 5) from (
            select c.customer_id, count(distinct o.order_id) as n
            from customers c left join orders o using (customer_id) group by 1)
    """,
    )[0]
    assert 0.1 < never / SMALL.customers < 0.6
    assert often > 0
