"""A user's own export, on the first try: the CDNOW master log through the mapping alone,
orders only, any history; user errors as one line and an exit code."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import dagster as dg
import lifetimes
import pandas as pd
import pytest
import yaml

from segment_cadence.cli import main
from segment_cadence.cli import sources as cli_sources
from segment_cadence.defs.alerting import outbox
from segment_cadence.defs.dictionary import segment_dictionary
from segment_cadence.defs.segments import missing_sources
from segment_cadence.platform import history, warehouse
from tests.marks import slow_fixture

CDNOW = Path(lifetimes.__file__).parent / "datasets" / "CDNOW_master.txt"
MONTH_ENDS = (date(1998, 4, 30), date(1998, 5, 31), date(1998, 6, 30))


def run_cli(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    """`segment-cadence ...` in its own process, with its own state directory."""
    environment = {
        **os.environ,
        "SEGMENT_CADENCE_HOME": str(home),
        "SEGMENT_CADENCE_WAREHOUSE": str(home / "warehouse.duckdb"),
        "DAGSTER_HOME": str(home / "dagster_home"),
        **env,
    }
    return subprocess.run(
        [sys.executable, "-m", "segment_cadence.cli", *args],
        env=environment,
        capture_output=True,
        text=True,
        timeout=900,
    )


def pandas_features(month_end: date) -> pd.DataFrame:
    """Recency, purchase days and spend as of a month end, computed independently."""
    log = pd.read_csv(
        CDNOW,
        sep=r"\s+",
        header=0,
        names=["customer", "day", "cds", "dollars"],
        dtype={"customer": str, "day": str},
    )
    log["day"] = pd.to_datetime(log["day"], format="%Y%m%d")
    seen = log[log["day"] <= pd.Timestamp(month_end)]
    grouped = seen.groupby("customer")
    return pd.DataFrame(
        {
            "recency_days": (pd.Timestamp(month_end) - grouped["day"].max()).dt.days,
            "frequency": grouped["day"].nunique(),
            "monetary_value": grouped["dollars"].sum().round(2),
        }
    ).sort_index()


@pytest.fixture(scope="module")
@slow_fixture
def cdnow_refreshed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """sources init on the CDNOW master log, sources check of the draft unchanged, then
    three months of 1998 refreshed with nothing else: no customers, engagement, campaigns
    or team members."""
    home = tmp_path_factory.mktemp("cdnow_home")
    mapping = home / "sources.yaml"
    init = run_cli(home, "sources", "init", str(CDNOW), "--out", str(mapping))
    assert init.returncode == 0, init.stdout + init.stderr
    check = run_cli(home, "sources", "check", "--sources", str(mapping))
    assert check.returncode == 0, check.stdout + check.stderr
    assert "read 69,659  loaded 69,659  quarantined 0" in check.stdout
    assert "Months that can be refreshed: 1997-01 to" in check.stdout
    refresh = run_cli(
        home, "refresh", "--month", "1998-06", "--months", "3", SEGMENT_CADENCE_SOURCES=str(mapping)
    )
    assert refresh.returncode == 0, refresh.stdout + refresh.stderr
    assert "Traceback" not in refresh.stderr
    return home


def test_the_cdnow_draft_maps_the_log_without_edits(tmp_path):
    mapping = tmp_path / "sources.yaml"
    assert main(["sources", "init", str(CDNOW), "--out", str(mapping)]) == 0
    orders = yaml.safe_load(mapping.read_text())["sources"]["orders"]
    assert orders["file"] == {"delimiter": "whitespace"}
    assert orders["date_format"] == "yyyymmdd"
    assert orders["columns"] == {
        "order_date": "date",
        "customer_id": "customer_id",
        "amount": "dollar_value",
    }


@pytest.mark.parametrize("month_end", MONTH_ENDS, ids=str)
def test_cdnow_features_equal_an_independent_pandas_computation_for_every_customer(
    cdnow_refreshed, month_end
):
    with warehouse.connect(cdnow_refreshed / "warehouse.duckdb", read_only=True) as con:
        ours = con.execute(
            "select customer_id, recency_days, frequency, round(monetary_value, 2) "
            "from published.customer_features where month_end = ? order by 1",
            [month_end],
        ).df()
    ours = ours.set_index("customer_id").rename(
        columns={"round(monetary_value, 2)": "monetary_value"}
    )
    expected = pandas_features(month_end)
    assert list(ours.index) == list(expected.index)
    pd.testing.assert_frame_equal(ours, expected, check_dtype=False, check_names=False)


def test_every_cdnow_customer_is_in_exactly_one_published_segment(cdnow_refreshed):
    with warehouse.connect(cdnow_refreshed / "warehouse.duckdb", read_only=True) as con:
        for month_end in MONTH_ENDS:
            customers, rows, most = con.execute(
                "select count(distinct customer_id), count(*), max(n) from ("
                "select customer_id, count(*) over (partition by customer_id) as n "
                "from published.segment_membership where month_end = ?)",
                [month_end],
            ).fetchone()
            assert customers == rows == len(pandas_features(month_end)) and most == 1


def test_a_month_outside_the_data_is_one_sentence_naming_the_range(cdnow_refreshed):
    result = run_cli(
        cdnow_refreshed,
        "refresh",
        "--month",
        "1996-06",
        SEGMENT_CADENCE_SOURCES=str(cdnow_refreshed / "sources.yaml"),
    )
    assert result.returncode == cli_sources.EXIT_MONTH
    assert (
        result.stderr.strip().splitlines() == [result.stderr.strip()]
        and "1996-06 cannot be refreshed: the months that can are 1997-01 to" in result.stderr
    )


# User errors: one line naming the file, the column, the problem; a distinct exit code.

ORDERS = "Client;Placed;Value\nK1;05/01/2025;450.00\nK2;17/03/2025;2300\n"


def user_mapping(tmp_path: Path, **orders: object) -> Path:
    (tmp_path / "orders.csv").write_text(ORDERS)
    entry = {
        "path": str(tmp_path / "orders.csv"),
        "file": {"delimiter": ";"},
        "date_format": "%d/%m/%Y",
        "columns": {"customer_id": "Client", "order_date": "Placed", "amount": "Value"},
        **orders,
    }
    path = tmp_path / "sources.yaml"
    path.write_text(yaml.safe_dump({"sources": {"orders": entry}}))
    return path


@pytest.mark.parametrize(
    ("change", "code", "words"),
    [
        (
            {"columns": {"customer_id": "Kunde", "order_date": "Placed", "amount": "Value"}},
            cli_sources.EXIT_CONFIG,
            ["Kunde", "orders.csv", "the file has: Client, Placed, Value"],
        ),
        ({"path": "nowhere/orders.csv"}, cli_sources.EXIT_UNREADABLE, ["no file at", "nowhere"]),
        (
            {"format": "parquet"},
            cli_sources.EXIT_UNREADABLE,
            ["cannot read", "orders.csv"],
        ),
        (
            {"date_format": "%Y-%m-%d"},
            cli_sources.EXIT_CONFIG,
            ["Placed", "no value", "'05/01/2025'", "%Y-%m-%d"],
        ),
    ],
    ids=["unknown column", "source file missing", "unreadable file", "date matching no format"],
    # The identity column missing: test_an_identity_the_customers_do_not_declare_...
)
def test_a_user_error_is_one_line_and_its_exit_code(
    tmp_path, monkeypatch, capsys, change, code, words
):
    monkeypatch.setenv("SEGMENT_CADENCE_SOURCES", str(user_mapping(tmp_path, **change)))
    assert main(["refresh", "--month", "2025-03"]) == code
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert all(word in err for word in words), err
    assert "Traceback" not in err


def test_a_month_that_is_not_a_month_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SEGMENT_CADENCE_SOURCES", str(user_mapping(tmp_path)))
    assert main(["refresh", "--month", "June"]) == cli_sources.EXIT_MONTH
    assert capsys.readouterr().err.strip() == "error: not a month: 'June'; write it as YYYY-MM"


def test_sources_check_exits_non_zero_when_a_source_cannot_be_read(tmp_path, capsys):
    mapping = user_mapping(tmp_path, path=str(tmp_path / "missing.csv"))
    assert main(["sources", "check", "--sources", str(mapping)]) == cli_sources.EXIT_UNREADABLE
    out = capsys.readouterr().out
    assert "cannot load: source 'orders': no file at" in out


def orders_by_email(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, column: str, crm: str, customers: dict
) -> None:
    """The user's orders naming customers by email in `column` (no customer_id), and a CRM
    file keyed by account id with the `customers` entry's extra fields, in force."""
    mapping = user_mapping(tmp_path, identity={"email": column})
    document = yaml.safe_load(mapping.read_text())
    del document["sources"]["orders"]["columns"]["customer_id"]
    (tmp_path / "crm.csv").write_text(crm)
    document["sources"]["customers"] = {
        "path": str(tmp_path / "crm.csv"),
        "columns": {"customer_id": "Account"},
        **customers,
    }
    mapping.write_text(yaml.safe_dump(document))
    monkeypatch.setenv("SEGMENT_CADENCE_SOURCES", str(mapping))


def test_an_identity_the_customers_do_not_declare_is_one_line_and_exit_3(
    tmp_path, monkeypatch, capsys
):
    orders_by_email(tmp_path, monkeypatch, "Client", "Account\nA-1\n", {})
    assert main(["refresh", "--month", "2025-03"]) == cli_sources.EXIT_CONFIG
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "sources.orders.identity names customers by email" in err
    assert "sources.customers declares no email column" in err


def test_an_identity_column_missing_from_the_file_is_one_line_and_exit_3(
    tmp_path, monkeypatch, capsys
):
    crm = "Account,Email\nA-1,a@example.org\n"
    orders_by_email(tmp_path, monkeypatch, "Email", crm, {"identity": {"email": "Email"}})
    assert main(["refresh", "--month", "2025-03"]) == cli_sources.EXIT_CONFIG
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "column(s) Email named in the mapping are not in" in err and "orders.csv" in err


def test_without_engagement_or_sends_their_features_are_unknown_not_zero(cdnow_refreshed):
    with warehouse.connect(cdnow_refreshed / "warehouse.duckdb", read_only=True) as con:
        known = con.execute(
            "select count(engagement_events_90d), count(campaign_sends_365d), count(*) "
            "from published.customer_features"
        ).fetchone()
        evaluation = con.execute(
            "select count(*) from published.segment_membership where segment_id = 'evaluation'"
        ).fetchone()[0]
    assert known[:2] == (0, 0) and known[2] > 0
    assert evaluation == 0


def test_a_segment_that_reads_a_missing_source_says_why_it_is_empty():
    dictionary = segment_dictionary.load()
    sizes = {s.id: 10 for s in dictionary.segments if s.id != "evaluation"}
    reasons = missing_sources.why_empty(dictionary, sizes, ["engagement_events"])
    assert list(reasons) == ["evaluation"]
    assert "engagement_events_90d, engagement_channels_90d" in reasons["evaluation"]
    assert "engagement_events has no rows" in reasons["evaluation"]
    # With the source present an empty segment is just empty.
    assert missing_sources.why_empty(dictionary, sizes, []) == {}


def test_a_step_that_fails_on_a_users_mistake_gives_its_one_line_to_the_notice(tmp_path):
    @dg.asset(name="orders")
    def orders() -> None:
        raise dg.Failure(description="source 'orders': no file at exports/orders.csv")

    result = dg.materialize([orders], raise_on_error=False)
    text = outbox.step_failure_text(result.get_step_failure_events())
    assert text == "orders: source 'orders': no file at exports/orders.csv"


def test_sources_init_tells_customers_from_orders_and_check_accepts_the_draft(tmp_path, capsys):
    (tmp_path / "crm.csv").write_text(
        "Kunde;Angemeldet;Gebiet\nK1;01/02/2024;North\nK2;15/03/2024;South\nK3;20/04/2024;East\n"
    )
    (tmp_path / "shop.csv").write_text(
        "Client;Placed;Value\nK1;05/01/2025;450.00\nK1;17/03/2025;23.50\nK2;18/03/2025;99.00\n"
    )
    mapping = tmp_path / "draft.yaml"
    files = [str(tmp_path / "crm.csv"), str(tmp_path / "shop.csv")]
    assert main(["sources", "init", *files, "--out", str(mapping)]) == 0
    sources = yaml.safe_load(mapping.read_text())["sources"]
    assert sources["customers"]["columns"] == {
        "customer_id": "Kunde",
        "signup_date": "Angemeldet",
        "region": "Gebiet",
    }
    assert sources["orders"]["columns"] == {
        "order_date": "Placed",
        "customer_id": "Client",
        "amount": "Value",
    }
    # 05/01/2025 and 17/03/2025: day-first is the one format that reads them all.
    assert sources["orders"]["date_format"] == "%d/%m/%Y"
    capsys.readouterr()
    assert main(["sources", "check", "--sources", str(mapping)]) == 0
    out = capsys.readouterr().out
    assert "read 3  loaded 3  quarantined 0" in out and "2025-01-05 to 2025-03-18" in out


def test_first_month_sets_where_the_refreshable_months_start_and_a_bad_one_is_one_line(
    tmp_path, monkeypatch, capsys
):
    mapping = user_mapping(tmp_path)
    document = yaml.safe_load(mapping.read_text())
    mapping.write_text(yaml.safe_dump({**document, "first_month": "2019-04"}))
    assert history.configured_first_month(mapping) == date(2019, 4, 1)
    monkeypatch.setenv("SEGMENT_CADENCE_SOURCES", str(mapping))
    assert history.refresh_range(date(2026, 12, 2)).first == date(2019, 4, 1)
    mapping.write_text(yaml.safe_dump({**document, "first_month": "April"}))
    assert main(["refresh", "--month", "2025-03"]) == cli_sources.EXIT_MONTH
    err = capsys.readouterr().err.strip()
    assert err.endswith("first_month: 'April' is not a month; write it as YYYY-MM")
    assert len(err.splitlines()) == 1
