"""Governance assets: the firewall on planned campaigns and the language lint, for each month;
and the checks on the red-flag metrics, the audit trail and the bias audit, which are dbt
models (dbt_project/models/governance)."""

from datetime import datetime, timedelta

import dagster as dg

from segment_cadence.defs.dictionary import segment_dictionary
from segment_cadence.defs.governance import audit, firewall, governance, red_flags
from segment_cadence.platform import markdown, paths, state_store
from segment_cadence.platform.months import month_end as last_day
from segment_cadence.platform.months import previous_month_end
from segment_cadence.platform.partitions import (
    ONE_MONTH_A_RUN,
    monthly_partitions,
    refresh_window,
)
from segment_cadence.platform.resources import WAREHOUSE_POOL, ConfigFiles, WarehouseResource
from segment_cadence.platform.warehouse import table_exists

PUBLISHED = dg.AssetKey(["published", "segment_membership"])
SENDS = [dg.AssetKey(["raw", "campaign_sends"]), dg.AssetKey(["raw", "team_members"])]
OWNERS = ["team:operations"]  # the firewall is owned by operations, not by senders

PAUSE = dg.AssetKey(["governance", "pause_violations"])
UNSAFE = dg.AssetKey(["governance", "segment_unsafe_attempts"])
RED_FLAGS = dg.AssetKey(["governance", "red_flags"])
# What the send-log red flags say when the mapping has no campaign sends: nothing was
# measured, which is not the same as nothing wrong.
NO_SEND_LOG = (
    "No send log: the source mapping has no campaign_sends, so pause violations and "
    "onboarding sends cannot be measured (0 here means not measured)."
)
ONBOARDING = dg.AssetKey(["governance", "onboarding_violations"])
PRESSURE = dg.AssetKey(["governance", "pressure_patterns"])
FIREWALL = dg.AssetKey(["governance", "planned_campaign_checks"])


def _md_table(header: list[str], rows: list[tuple]) -> dg.MetadataValue:
    return dg.MetadataValue.md(markdown.table(header, rows, empty="None this month."))


@dg.asset(
    pool=WAREHOUSE_POOL,
    key=FIREWALL,
    group_name="governance",
    owners=OWNERS,
    kinds={"duckdb", "yaml"},
    partitions_def=monthly_partitions,
    backfill_policy=ONE_MONTH_A_RUN,
    deps=[PUBLISHED, *SENDS],
    description=(
        "The campaign firewall applied to the campaigns planned for the month after this one "
        "(config/campaigns/*.yaml) against the membership just published: who may be sent to "
        "(exported per campaign) and who is blocked, with the reason per customer. A campaign "
        "that needs anyone blocked is recorded as a segment-unsafe attempt (in the state "
        "store; copied to ops.firewall_checks, ops.firewall_blocked and ops.exception_requests "
        "for the governance metrics)."
    ),
    check_specs=[
        dg.AssetCheckSpec(
            "planned_campaigns_are_valid",
            asset=FIREWALL,
            description="Every planned campaign file can be checked.",
        ),
    ],
)
def planned_campaign_checks(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    month_end, _ = refresh_window(context.partition_key)
    next_month = last_day(month_end + timedelta(days=1))
    rows, problems = [], []
    export_dir = paths.exports_dir() / "campaigns"
    with warehouse.connect() as con:
        for path in sorted(paths.campaigns_dir().glob("*.y*ml")):
            try:
                campaign = firewall.load_campaign(path)
                if not (month_end < campaign.planned_at.date() <= next_month):
                    continue
                # Recorded in the state store (its own transaction); the warehouse is only read.
                decision = firewall.check_campaign(con, campaign, checked_at=datetime.now())
            except firewall.CampaignError as error:
                problems.append(str(error))
                continue
            export_dir.mkdir(parents=True, exist_ok=True)
            allowed = export_dir / f"{path.stem}-{month_end:%Y-%m}-allowed.csv"
            allowed.write_text("customer_id\n" + "".join(f"{c}\n" for c in decision.allowed))
            rows.append(
                (
                    campaign.name,
                    campaign.sender_id,
                    campaign.channel,
                    f"{campaign.planned_at:%Y-%m-%d}",
                    len(decision.allowed),
                    len(decision.unsafe),
                    decision.decision,
                    firewall.reasons_in_words(
                        decision.reason_counts(), list(decision.blocked_segments())
                    ),
                )
            )
        # The red flags downstream count these checks: refresh the warehouse's copy of the
        # firewall records (the state store is where they are written).
        copied = state_store.copy_firewall_records(con)
    yield dg.MaterializeResult(
        metadata={
            "campaigns_checked": len(rows),
            "blocked_recipients": sum(r[5] for r in rows),
            "checks": _md_table(
                list(firewall.CHECK_COLUMNS),
                rows,
            ),
            "allowed_lists": dg.MetadataValue.path(str(export_dir)),
            "firewall_records_copied": dg.MetadataValue.json(copied),
        }
    )
    yield dg.AssetCheckResult(
        check_name="planned_campaigns_are_valid",
        passed=not problems,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"problems": dg.MetadataValue.md("\n".join(f"- {p}" for p in problems) or "None")},
    )


def _checked_month(context: dg.AssetCheckExecutionContext, con, table: str):
    """The month a check looks at: the run's partition, else the latest month in the table."""
    partition = context.run.tags.get("dagster/partition")
    if partition:
        return refresh_window(partition)[0]
    if not table_exists(con, *table.split(".")):
        return None
    return con.execute(f"select max(month_end) from {table}").fetchone()[0]


@dg.multi_asset_check(
    pool=WAREHOUSE_POOL,
    name="red_flag_checks",
    description=(
        "The red flags' checks over the governance dbt models of the month (the tables are "
        "dbt_project/models/governance): pause violations, the onboarding rule, unsafe attempts "
        "against last month, and override attempts for the review agenda."
    ),
    specs=[
        dg.AssetCheckSpec(
            "pause_violation_count_is_zero",
            asset=PAUSE,
            description="Any send to a paused segment is an ERROR naming the source.",
        ),
        dg.AssetCheckSpec(
            "no_sends_in_first_30_days",
            asset=ONBOARDING,
            description="New team members cannot send campaigns for 30 days.",
        ),
        dg.AssetCheckSpec(
            "unsafe_attempts_not_surging",
            asset=UNSAFE,
            description="WARN when attempts grew sharply against last month.",
        ),
        dg.AssetCheckSpec(
            "override_attempts_reviewed",
            asset=RED_FLAGS,
            description="WARN when anyone asked to bypass the firewall this month.",
        ),
    ],
)
def red_flag_checks(
    context: dg.AssetCheckExecutionContext,
    warehouse: WarehouseResource,
    config_files: ConfigFiles,
):
    config = config_files.once("governance", governance.load)
    with warehouse.connect(read_only=True) as con:
        month_end = _checked_month(context, con, "governance.red_flags")
        previous = previous_month_end(month_end)
        flags = red_flags.read(con, month_end)
        violations = con.execute(
            "select campaign_id, any_value(campaign_name), sender_id, any_value(sender_name), "
            "string_agg(distinct segment_id, ', '), count(*) from governance.pause_violations "
            "where month_end = ? group by campaign_id, sender_id order by 6 desc",
            [month_end],
        ).fetchall()
        unsafe = con.execute(
            "select source, campaign_name, sender_id, team, channel, segment_ids, reasons, customers "
            "from governance.unsafe_attempts where month_end = ? order by attempted_at",
            [month_end],
        ).fetchall()
        previous_unsafe = red_flags.read(con, previous).values["segment_unsafe_attempts"]
        overrides = con.execute(
            "select strftime(requested_at, '%Y-%m-%d %H:%M'), requested_by, team, campaign_name, "
            "segment_ids, reason from ops.exception_requests where kind = 'override' "
            "and last_day(requested_at) = ? order by requested_at",
            [month_end],
        ).fetchall()
        onboarding = con.execute(
            "select sender_id, sender_name, team, strftime(joined_date, '%Y-%m-%d'), campaign_name, "
            "days_after_joining, sends from governance.onboarding_violations where month_end = ?",
            [month_end],
        ).fetchall()
        send_log = table_exists(con, "raw", "campaign_sends") and bool(
            con.execute("select count(*) from raw.campaign_sends").fetchone()[0]
        )
        pressure = con.execute(
            "select dimension, key, attempts, previous_attempts, change "
            "from governance.pressure_patterns where month_end = ? "
            "order by abs(change) desc, attempts desc limit 12",
            [month_end],
        ).fetchall()
    v = flags.values
    pause = v["pause_violation_count"]
    named = "; ".join(
        f"{c} ({n}) by {s} ({sn}): {cnt} sends to {seg}" for c, n, s, sn, seg, cnt in violations
    )
    yield dg.AssetCheckResult(
        check_name="pause_violation_count_is_zero",
        asset_key=PAUSE,
        passed=pause == 0,
        severity=dg.AssetCheckSeverity.ERROR if pause else dg.AssetCheckSeverity.WARN,
        description=(
            (named or flags.details.get("pause_violation_count") or "No pause violations.")
            if send_log
            else NO_SEND_LOG
        ),
        metadata={
            "send_log": send_log,
            "pause_violation_count": -1 if pause is None else pause,
            "by_campaign": _md_table(
                ["campaign", "name", "sender", "sender name", "segments", "sends"], violations
            ),
        },
    )
    yield dg.AssetCheckResult(
        check_name="no_sends_in_first_30_days",
        asset_key=ONBOARDING,
        passed=not v["onboarding_violations"],
        severity=dg.AssetCheckSeverity.ERROR,
        description=(
            "; ".join(
                f"{s} ({n}, joined {j}) sent {c} on day {d}: {k} sends"
                for s, n, _, j, c, d, k in onboarding
            )
            or "No sends in anyone's first 30 days."
        )
        if send_log
        else NO_SEND_LOG,
        metadata={
            "send_log": send_log,
            "sends": v["onboarding_violations"] or 0,
            "senders": _md_table(
                ["sender", "name", "team", "joined", "campaign", "day", "sends"], onboarding
            ),
        },
    )
    now = v["segment_unsafe_attempts"] or 0
    surging = (
        previous_unsafe is not None
        and now - previous_unsafe >= 2
        and now > previous_unsafe * (1 + config.unsafe_attempts_rise)
    )
    yield dg.AssetCheckResult(
        check_name="unsafe_attempts_not_surging",
        asset_key=UNSAFE,
        passed=not surging,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "this_month": now,
            "last_month": -1 if previous_unsafe is None else previous_unsafe,
            "attempts": _md_table(
                [
                    "source",
                    "campaign",
                    "sender",
                    "team",
                    "channel",
                    "segments",
                    "reasons",
                    "customers",
                ],
                unsafe,
            ),
            "pressure_largest_changes": _md_table(
                ["dimension", "key", "attempts", "last month", "change"], pressure
            ),
        },
    )
    yield dg.AssetCheckResult(
        check_name="override_attempts_reviewed",
        asset_key=RED_FLAGS,
        passed=not v["manual_override_attempts"],
        severity=dg.AssetCheckSeverity.WARN,
        description="On the monthly review agenda: where did pressure show up?",
        metadata={
            "attempts": v["manual_override_attempts"] or 0,
            "suppressed_campaign_volume": v["suppressed_campaign_volume"] or 0,
            "suppressed_campaigns": v["suppressed_campaigns"] or 0,
            "exception_requests": v["exception_requests"] or 0,
            "overrides": _md_table(
                ["when", "who", "team", "campaign", "segments", "why"], overrides
            ),
        },
    )


AUDIT = dg.AssetKey(["governance", "segment_audit_trail"])


@dg.asset_check(
    pool=WAREHOUSE_POOL,
    asset=AUDIT,
    name="every_change_is_recorded",
    description=(
        "The trail (the dbt model governance.segment_audit_log) holds exactly the month's "
        "published changes."
    ),
)
def every_change_is_recorded(
    context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
) -> dg.AssetCheckResult:
    with warehouse.connect(read_only=True) as con:
        month_end = _checked_month(context, con, "published.segment_membership")
        published, recorded, total = con.execute(
            """
            select
              (select count(*) from published.segment_membership m where m.month_end = ?
                 and m.previous_segment_id is distinct from m.segment_id),
              (select count(*) from governance.segment_audit_log a where a.month_end = ?
                 and a.definition_version in (select distinct definition_version
                     from published.segment_membership where month_end = ?)),
              (select count(*) from governance.segment_audit_log)
            """,
            [month_end, month_end, month_end],
        ).fetchone()
    return dg.AssetCheckResult(
        passed=published == recorded,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "published_changes": published,
            "recorded": recorded,
            "changes_this_month": recorded,
            "trail_rows": total,
        },
    )


BIAS = dg.AssetKey(["governance", "bias_audit"])


@dg.asset_check(
    pool=WAREHOUSE_POOL,
    asset=BIAS,
    name="no_flagged_disparity",
    description="WARN when a group is over- or under-represented in a segment beyond the bound.",
)
def no_flagged_disparity(
    context: dg.AssetCheckExecutionContext,
    warehouse: WarehouseResource,
    config_files: ConfigFiles,
) -> dg.AssetCheckResult:
    config = config_files.once("governance", governance.load)
    with warehouse.connect(read_only=True) as con:
        month_end = _checked_month(context, con, "governance.bias_audit")
        flagged = audit.count_flagged(con, month_end)
        rows = audit.flagged_bias(con, month_end)
    table = _md_table(
        ["attribute", "group", "segment", "members", "group share", "overall", "ratio"], rows
    )
    return dg.AssetCheckResult(
        passed=flagged == 0,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"flagged": flagged, "flagged_cells": table, "bound": config.max_disparity_ratio},
    )


LANGUAGE = dg.AssetKey(["governance", "language_lint"])


@dg.asset(
    pool=WAREHOUSE_POOL,
    key=LANGUAGE,
    group_name="governance",
    owners=OWNERS,
    kinds={"python"},
    partitions_def=monthly_partitions,
    backfill_policy=ONE_MONTH_A_RUN,
    deps=[*SENDS],
    description=(
        "The charter's language governance over segment names and descriptions, the names of "
        "campaigns sent this month and planned campaigns' copy: retired phrases flagged with "
        "the promoted language to use instead."
    ),
    check_specs=[
        dg.AssetCheckSpec(
            "no_retired_language",
            asset=LANGUAGE,
            description=("WARN when a retired phrase is in use."),
        )
    ],
)
def language_lint(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, config_files: ConfigFiles
):
    month_end, _ = refresh_window(context.partition_key)
    config = config_files.once("governance", governance.load)
    findings = governance.lint_segments(
        list(config_files.once("segments", segment_dictionary.load).segments), config
    )
    for path in sorted(paths.campaigns_dir().glob("*.y*ml")):
        try:
            campaign = firewall.load_campaign(path)
        except firewall.CampaignError:
            continue  # reported by planned_campaign_checks
        for field_name, text in (("name", campaign.name), ("copy", campaign.copy)):
            findings += governance.lint_text(
                text, source="campaign", object_id=path.stem, field=field_name, config=config
            )
    with warehouse.connect() as con:
        names = (
            con.execute(
                "select distinct campaign_id, campaign_name from raw.campaign_sends "
                "where last_day(cast(sent_at as date)) = ?",
                [month_end],
            ).fetchall()
            if table_exists(con, "raw", "campaign_sends")
            else []
        )
        for campaign_id, name in names:
            findings += governance.lint_text(
                name or "", source="campaign", object_id=campaign_id, field="name", config=config
            )
    with state_store.transaction() as state:
        governance.store_findings(state, month_end, findings)
    rows = [(f.source, f.object_id, f.field, f.found, f.suggest) for f in findings]
    yield dg.MaterializeResult(
        metadata={
            "findings": len(findings),
            "table": _md_table(["source", "object", "field", "found", "say instead"], rows),
        }
    )
    yield dg.AssetCheckResult(
        check_name="no_retired_language",
        passed=not findings,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"findings": len(findings)},
    )


governance_assets = [planned_campaign_checks, language_lint]
# The red flags, the audit trail and the bias audit are dbt models
# (segment_cadence/defs/segments/dbt_assets.py, governance_and_health_models); their checks:
governance_checks = [red_flag_checks, every_change_is_recorded, no_flagged_disparity]
