"""Holdouts: a salted draw of the customer id, the same in Python, DuckDB and the dbt macro;
stable across months and definition versions; re-drawn only by an approved change; enforced
by the firewall apart from the red flags."""

from __future__ import annotations

import random
from datetime import datetime

import duckdb
import pandas as pd
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from segment_cadence.defs.dictionary import segment_dictionary, versions
from segment_cadence.defs.governance import firewall
from segment_cadence.defs.segments import holdouts
from segment_cadence.defs.segments.holdouts import HoldoutPlan
from segment_cadence.platform import paths, state_store, warehouse
from tests.test_governance import OCTOBER, build, campaign, copied
from tests.test_versions import edit, ledger  # noqa: F401  (the fixture)

PLAN = HoldoutPlan(salt="s-2026", global_share=0.02, segment_shares={"loyal_repeat": 0.1})
customer_ids = st.text(
    alphabet=st.characters(min_codepoint=33, max_codepoint=126, exclude_characters="'"),
    min_size=1,
    max_size=20,
)


@settings(max_examples=60, deadline=None)
@given(salt=customer_ids, ids=st.lists(customer_ids, min_size=1, max_size=20))
def test_the_draw_is_the_same_in_python_and_duckdb(salt, ids):
    con = duckdb.connect()
    con.execute("create table c (customer_id varchar)")
    con.executemany("insert into c values (?)", [[i] for i in ids])
    sql = holdouts.duckdb_draw_sql(salt, "customer_id")
    got = dict(con.execute(f"select customer_id, {sql} from c").fetchall())
    for customer_id in ids:
        assert got[customer_id] == pytest.approx(holdouts.draw(salt, customer_id), abs=1e-12)
        assert 0 <= got[customer_id] < 1


@settings(max_examples=60, deadline=None)
@given(
    customer_id=customer_ids,
    smaller=st.floats(0, 0.25),
    extra=st.floats(0, 0.2),
)
def test_raising_a_share_only_adds_customers_to_the_holdout(customer_id, smaller, extra):
    before = HoldoutPlan("salt", 0.01, {"a": smaller})
    after = HoldoutPlan("salt", 0.01, {"a": smaller + extra})
    if before.group_of(customer_id, "a"):
        assert after.group_of(customer_id, "a") == before.group_of(customer_id, "a")


def test_assignment_is_stable_over_12_months_and_two_definition_versions():
    """Customers move between segments month by month and the rules change in month 7 (a
    second definition version); whoever is in the global control stays there every month,
    and a customer's segment holdout depends on the segment only, never on the month."""
    v1 = segment_dictionary.load(paths.CONFIG_DIR / "versions" / "v3.yaml")
    document = yaml.safe_load((paths.CONFIG_DIR / "versions" / "v3.yaml").read_text())
    dormant = next(s for s in document["segments"] if s["id"] == "dormant")
    dormant["rule"] = "frequency >= 1 and recency_days > 700"
    v2 = segment_dictionary.validate(document, "v4.yaml", segment_dictionary.feature_columns())
    assert v1.governed_digest != v2.governed_digest and v1.holdouts == v2.holdouts
    rng = random.Random(5)
    ids = [f"C{i:05d}" for i in range(3_000)]
    segments = [s.id for s in v1.segments]
    by_month = []
    for month in range(12):
        plan = (v1 if month < 6 else v2).holdouts
        placed = {c: rng.choice(segments) for c in ids}
        by_month.append({c: (s, plan.group_of(c, s)) for c, s in placed.items()})
    global_control = {c for c, (_, g) in by_month[0].items() if g == holdouts.GLOBAL}
    assert 0.01 < len(global_control) / len(ids) < 0.03
    for month in by_month:
        assert {c for c, (_, g) in month.items() if g == holdouts.GLOBAL} == global_control
    held: dict[tuple[str, str], str | None] = {}
    for month in by_month:
        for c, (s, g) in month.items():
            assert held.setdefault((c, s), g) == g
    loyal = [g for month in by_month for c, (s, g) in month.items() if s == "loyal_repeat"]
    assert 0.08 < loyal.count(holdouts.SEGMENT) / len(loyal) < 0.12


def test_a_re_draw_needs_an_approval_and_is_described_as_one(ledger):  # noqa: F811
    """The salt is governed: a new salt is refused until approved, in words."""
    document = yaml.safe_load((paths.CONFIG_DIR / "versions" / "v3.yaml").read_text())
    paths.segments_file().write_text(yaml.safe_dump(document, sort_keys=False))
    versions.approve(author="segmentation-owner", approved_by="operations-lead", reason="holdouts")
    document["holdouts"]["salt"] = "jeweller-2027"
    paths.segments_file().write_text(yaml.safe_dump(document, sort_keys=False))
    with pytest.raises(versions.ApprovalError) as refused:
        versions.check_approved()
    assert (
        "holdouts re-drawn: salt changed from 'jeweller-2026' to 'jeweller-2027' "
        "(every holdout is drawn again)"
    ) in str(refused.value)
    edit(paths.segments_file(), "loyal_repeat", holdout=0.2)
    with pytest.raises(versions.ApprovalError) as refused:
        versions.check_approved()
    assert "segment 'loyal_repeat': holdout changed from 10 % to 20 %" in str(refused.value)
    approved = versions.approve(
        author="segmentation-owner", approved_by="revops-lead", reason="Annual re-draw"
    )
    assert versions.check_approved().label == approved.label


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"holdouts": {"salt": ""}}, "holdouts.salt must be a non-empty text"),
        (
            {"holdouts": {"salt": "x", "global_control": 0.6}},
            "holdouts.global_control must be a share from 0 to 0.5, for example 0.02 for 2 %; "
            "got 0.6",
        ),
        (
            {"holdouts": {"salt": "x", "share": 0.1}},
            "holdouts: unknown key 'share' (known: salt, global_control)",
        ),
    ],
)
def test_holdout_settings_out_of_range_are_one_line_errors(change, says):
    document = yaml.safe_load(paths.segments_file().read_text()) | change
    with pytest.raises(segment_dictionary.DefinitionError) as error:
        segment_dictionary.validate(document, "segments.yaml", segment_dictionary.feature_columns())
    assert says in str(error.value)


def test_a_segment_holdout_without_a_salt_is_refused():
    document = yaml.safe_load(paths.segments_file().read_text())
    del document["holdouts"]
    with pytest.raises(segment_dictionary.DefinitionError) as error:
        segment_dictionary.validate(document, "segments.yaml", segment_dictionary.feature_columns())
    assert "segments declare a holdout share but the dictionary has no 'holdouts:'" in str(
        error.value
    )


@pytest.fixture()
def governed(tmp_path, state_url):
    """A small warehouse with a fresh state store, as the firewall tests build it."""
    connection = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    warehouse.ensure_schema(connection)
    yield connection
    connection.close()


def hold_out(con: duckdb.DuckDBPyConnection, plan: HoldoutPlan) -> set[str]:
    """Give the stand-in published membership its holdout column, drawn by `plan`."""
    con.execute("alter table published.segment_membership add column holdout varchar")
    rows = con.execute(
        "select customer_id, month_end, segment_id from published.segment_membership"
    ).fetchall()
    drawn = pd.DataFrame(
        [(c, m, plan.group_of(c, s)) for c, m, s in rows],
        columns=["customer_id", "month_end", "holdout"],
    )
    con.register("drawn", drawn)
    con.execute(
        "update published.segment_membership m set holdout = drawn.holdout from drawn "
        "where drawn.customer_id = m.customer_id and drawn.month_end = m.month_end"
    )
    con.unregister("drawn")
    return {c for c, m, s in rows if m == OCTOBER and plan.group_of(c, s)}


def test_the_firewall_blocks_held_out_customers_apart_from_the_red_flags(governed):
    con = governed
    truth = build(con)
    held = hold_out(con, PLAN)
    october = truth["membership"][OCTOBER]
    loyal = {c for c, s in october.items() if s == "loyal_repeat"}
    decision = firewall.check_campaign(
        con, campaign(channel="sms"), checked_at=datetime(2026, 11, 5)
    )
    held_loyal = loyal & held
    assert held_loyal and len(held_loyal) < len(loyal) / 4
    assert {b.customer_id for b in decision.held_out} == held_loyal
    assert all(b.reasons == ("holdout",) for b in decision.held_out)
    assert set(decision.allowed) == loyal - held_loyal
    # Held out only: the campaign is clear, and nothing counts toward the red flags.
    assert decision.decision == "clear" and not decision.unsafe
    assert "held out to measure lift" in decision.summary()
    row = (
        copied(con)
        .execute("select decision, blocked, held_out, reason_counts from ops.firewall_checks")
        .fetchall()
    )
    assert row == [("clear", 0, len(held_loyal), "{}")]
    with state_store.transaction() as state:
        logged = state.execute(
            state_store.firewall_blocked.select().where(
                state_store.firewall_blocked.c.reason == "holdout"
            )
        ).all()
    assert {r.customer_id for r in logged} == held_loyal


def test_a_held_out_customer_in_a_paused_segment_is_blocked_for_the_pause(governed):
    con = governed
    truth = build(con)
    plan = HoldoutPlan(salt="s", global_share=0.2)
    held = hold_out(con, plan)
    october = truth["membership"][OCTOBER]
    paused_and_held = next(c for c in held if october[c] == "evaluation")
    decision = firewall.check_campaign(
        con, campaign(target_segments=(), customer_ids=(paused_and_held,)), record=False
    )
    (blocked,) = decision.blocked
    assert blocked.reasons[0] == "paused_segment" and "holdout" in blocked.reasons
    assert decision.decision == "blocked" and decision.unsafe
