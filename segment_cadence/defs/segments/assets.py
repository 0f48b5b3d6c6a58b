"""The segments room's assets around the dbt models: the monthly BG/NBD fit (four
parameters in Python, every customer scored in SQL), the publish gate, and publishing the
month (the published dbt models, with the checks and the export in Python around them:
visible to consumers only after every blocking check passed).
"""

from datetime import date, datetime

import dagster as dg
import numpy as np
from dagster_dbt import DbtCliResource, get_asset_key_for_model

from segment_cadence.defs.dictionary import segment_dictionary, versions
from segment_cadence.defs.ingest import ingest
from segment_cadence.defs.segments import (
    calibration,
    churn,
    gate,
    missing_sources,
    publish,
    value,
)
from segment_cadence.defs.segments.dbt_assets import (
    GATE,
    PUBLISHED,
    features_inputs,
    monthly_dbt_assets,
    published_translator,
    run_dbt,
    segment_marts,
)
from segment_cadence.platform import paths, state_store
from segment_cadence.platform.crash_points import crash_point
from segment_cadence.platform.partitions import (
    ONE_MONTH_A_RUN,
    monthly_partitions,
    refresh_window,
)
from segment_cadence.platform.resources import (
    WAREHOUSE_POOL,
    ConfigFiles,
    WarehouseResource,
)
from segment_cadence.platform.warehouse import table_exists

MARTS = [
    get_asset_key_for_model([segment_marts], model)
    for model in ("segment_membership", "segment_transitions", "segment_kpis")
]


@dg.asset(
    pool=WAREHOUSE_POOL,
    key=GATE,
    group_name="published",
    owners=["team:segmentation-owner"],
    kinds={"duckdb"},
    partitions_def=monthly_partitions,
    backfill_policy=ONE_MONTH_A_RUN,
    deps=MARTS,
    check_specs=[
        dg.AssetCheckSpec(
            "inputs_and_result_fit_to_publish",
            asset=GATE,
            blocking=True,
            description=(
                "Holds the month in build when its inputs or its result are unusable: no or "
                "too few order lines, a volume far from recent months, a source quarantined "
                "beyond its bound, stale inputs, too many customers moved into the fallback, "
                "or a paused segment emptied. Bounds: publish_gate in config/thresholds.yaml."
            ),
        )
    ],
    description=(
        "The publish gate: measures the month's inputs and its build against governed bounds "
        "before anything is published. A held month stays in build and the last published "
        "month stays in force; `segment-cadence release` lets an approver publish it."
    ),
)
def publish_gate(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, config_files: ConfigFiles
):
    month_end, _ = refresh_window(context.partition_key)
    dictionary = config_files.once("segments", segment_dictionary.load)
    version = segment_dictionary.definition_version(dictionary)
    try:
        bounds = gate.load_bounds(paths.thresholds_file())
    except gate.GateConfigError as error:
        raise dg.Failure(description=str(error)) from None
    sources = config_files.once("sources", lambda: ingest.load_config(paths.sources_file()))
    unmapped = frozenset(ingest.LOAD_ORDER) - set(sources.sources)
    with warehouse.connect() as con:
        measured = gate.measure(
            con, month_end, version, dictionary.fallback.id, bounds, unmapped=unmapped
        )
    # The release looked up and the hold recorded in one state-store transaction.
    with state_store.transaction() as state:
        decision = gate.with_release(state, measured)
        if decision.held:
            gate.record_hold(state, decision, context.run_id)
    findings = [
        {"check": f.check, "subject": f.subject, "value": f.value, "bound": f.bound}
        for f in decision.findings
    ]
    if decision.held:
        context.log.error(decision.summary())
    elif decision.findings:
        context.log.warning(decision.summary())
    metadata = {
        "month_end": month_end.isoformat(),
        "held": decision.held,
        "inputs_fingerprint": decision.inputs_fingerprint,
        "findings": dg.MetadataValue.json(findings),
        **{k: v for k, v in decision.measured.items() if v is not None},
    }
    if decision.release is not None:
        metadata["released_by"] = decision.release.released_by
        metadata["release_reason"] = decision.release.reason
    yield dg.MaterializeResult(metadata=metadata)
    yield dg.AssetCheckResult(
        check_name="inputs_and_result_fit_to_publish",
        passed=not decision.held,
        severity=dg.AssetCheckSeverity.ERROR,
        description=decision.summary()
        + (
            ""
            if not decision.held
            else "\nTo publish it anyway, an approver runs: segment-cadence release --month "
            f"{month_end:%Y-%m} --by APPROVER --reason TEXT"
        ),
        metadata={"findings": dg.MetadataValue.json(findings)},
    )


@monthly_dbt_assets("published_models", publish.PUBLISHED_MODELS, published_translator)
def published_models(
    context: dg.AssetExecutionContext,
    dbt: DbtCliResource,
    warehouse: WarehouseResource,
    config_files: ConfigFiles,
):
    """Publishing the month: the build checked and exported (Python), then the published dbt
    models (the store, the ledger that commits the publication, the views consumers read).
    A failed refresh never reaches this step, so the last published month stays in place.
    published/segment_membership's materialization carries the segment sizes, the row count
    and the export path, once the ledger has committed."""
    month_end, _ = refresh_window(context.partition_key)
    version = segment_dictionary.definition_version(
        config_files.once("segments", segment_dictionary.load)
    )
    label = versions.check_approved().label
    export_dir = paths.exports_dir()
    with warehouse.connect() as con:
        try:
            request = publish.prepare_publication(
                con, month_end, version, context.run_id, export_dir, label
            )
        except publish.PublishError as error:
            raise dg.Failure(description=str(error)) from None
    membership_outputs = []
    try:
        for event in run_dbt(context, dbt, warehouse, config_files, request.dbt_vars()):
            if is_output_of(context, event, PUBLISHED):
                membership_outputs.append(event)  # its metadata needs dbt to have finished
            else:
                yield event
    except BaseException:
        crash_point("publish_transaction")
        with warehouse.connect() as con:
            publish.abandon_publication(con, request)
        raise
    with warehouse.connect() as con:
        try:
            publication = publish.complete_publication(con, request, export_dir)
        except publish.PublishError as error:
            raise dg.Failure(description=str(error)) from None
        kpis = con.execute(
            "select segment_id, customers, share, paused, retention_rate, avg_churn_likelihood, "
            "avg_expected_purchases_12m, avg_clv "
            "from published.segment_kpis where month_end = ? order by customers desc",
            [month_end],
        ).fetchall()
    metadata = {
        "dagster/row_count": publication.customers,
        "month_end": month_end.isoformat(),
        "definition_version": version,
        "approved_version": label,
        "export_path": dg.MetadataValue.path(publication.export_path or ""),
        "segment_sizes": segment_sizes_table(kpis),
    }
    for output in membership_outputs:
        yield output.with_metadata({**output.metadata, **metadata})


def is_output_of(context: dg.AssetExecutionContext, event: object, key: dg.AssetKey) -> bool:
    return isinstance(event, dg.Output) and context.asset_key_for_output(event.output_name) == key


SEGMENT_SIZES_SCHEMA = dg.TableSchema(
    columns=[
        dg.TableColumn("segment_id", "string", description="segment in the dictionary"),
        dg.TableColumn("customers", "int", description="published members this month"),
        dg.TableColumn("share", "float", description="members as a share of all customers"),
        dg.TableColumn("paused", "bool", description="no campaign may target the segment"),
        dg.TableColumn("retention_rate", "float", description="last month's members who stayed"),
        dg.TableColumn("avg_churn_likelihood", "float", description="mean 1 - P(alive)"),
        dg.TableColumn(
            "avg_expected_purchases_12m", "float", description="mean purchases expected in a year"
        ),
        dg.TableColumn("avg_clv", "float", description="mean customer lifetime value"),
    ]
)


def segment_sizes_table(kpis: list[tuple]) -> dg.TableMetadataValue:
    """The month's segments as a table the UI can sort and plot (not hand-built markdown)."""
    names = [column.name for column in SEGMENT_SIZES_SCHEMA.columns]
    return dg.MetadataValue.table(
        records=[dg.TableRecord(dict(zip(names, row, strict=True))) for row in kpis],
        schema=SEGMENT_SIZES_SCHEMA,
    )


@dg.asset_check(
    pool=WAREHOUSE_POOL,
    asset=PUBLISHED,
    name="segments_above_minimum_size",
    description="Warns when an active segment has fewer members than its dictionary minimum.",
)
def segments_above_minimum_size(
    context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource, config_files: ConfigFiles
) -> dg.AssetCheckResult:
    dictionary = config_files.once("segments", segment_dictionary.load)
    partition = context.run.tags.get("dagster/partition")
    with warehouse.connect(read_only=True) as con:
        if partition:
            latest = refresh_window(partition)[0]
        else:
            latest = con.execute("select max(month_end) from published.publications").fetchone()[0]
        sizes = publish.segment_sizes(con, latest) if latest else {}
        without_rows = [
            source
            for source in missing_sources.FEATURE_SOURCES.values()
            if table_exists(con, "raw", source)
            and not con.execute(f"select count(*) from raw.{source}").fetchone()[0]
        ]
    empty_because = missing_sources.why_empty(dictionary, sizes, without_rows)
    small = {
        s.id: sizes.get(s.id, 0) for s in dictionary.segments if sizes.get(s.id, 0) < s.min_size
    }
    return dg.AssetCheckResult(
        passed=not small,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "month_end": str(latest),
            "below_minimum": dg.MetadataValue.json(small),
            **({"empty_because": dg.MetadataValue.json(empty_because)} if empty_because else {}),
        },
        description="; ".join(f"{s}: {r}" for s, r in empty_because.items()) or None,
    )


FIT_SAMPLE_SIZE = 50_000
FIT_SEED = 20_050_101  # fixed, so re-running a month reproduces its parameters exactly


FIT_KEY = dg.AssetKey(["churn", "bgnbd_fit"])


@dg.asset(
    pool=WAREHOUSE_POOL,
    key=FIT_KEY,
    group_name="features",
    owners=["team:data-engineering"],
    kinds={"python", "scipy", "duckdb"},
    partitions_def=monthly_partitions,
    backfill_policy=ONE_MONTH_A_RUN,
    deps=[get_asset_key_for_model([features_inputs], "int_customer_purchases")],
    check_specs=[
        dg.AssetCheckSpec(
            "fit_is_sound",
            asset=FIT_KEY,
            description=(
                "Warns when the month's fit did not converge or a parameter sits at the "
                "search's bound; the month is then scored with the last sound fit."
            ),
        ),
        dg.AssetCheckSpec(
            "spend_fit_is_sound",
            asset=FIT_KEY,
            description=(
                "Warns when the month's Gamma-Gamma spend model did not converge, sits at a "
                "bound or has no finite mean (it then gives way to the last sound one), or "
                "when frequency and mean spend correlate enough to doubt its independence "
                "assumption."
            ),
        ),
    ],
    description=(
        "The churn model the dictionary chooses (churn_model: BG/NBD, Fader, Hardie & Lee "
        "2005, or the modified BG/NBD, Batislam et al. 2007) fitted by maximum likelihood on "
        f"a reproducible sample of up to {FIT_SAMPLE_SIZE:,} buyers as of the month's end, "
        "read back from build.int_customer_purchases. The fit is kept in the state store "
        "(churn_fits) and reaches dbt as vars: the model churn.bgnbd_params keeps it per "
        "month and customer_features scores every customer with the closed-form P(alive); "
        "churn likelihood = 1 - P(alive). Beside it, the Gamma-Gamma spend model (Fader, "
        "Hardie & Lee 2005) on the repeat buyers' mean spend, with the frequency-spend "
        "correlation it assumes is near 0, and the dictionary's CLV horizon and discount "
        "rate (churn.value_params). A fit that is not sound gives way to the last sound "
        "one, and its check says so."
    ),
)
def bgnbd_fit(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, config_files: ConfigFiles
) -> dg.MaterializeResult:
    month_end, _ = refresh_window(context.partition_key)
    dictionary = config_files.once("segments", segment_dictionary.load)
    model = dictionary.churn_model
    with warehouse.connect(read_only=True) as con:
        history = con.execute(
            "select bgnbd_x, bgnbd_t_x, bgnbd_T, mean_repeat_spend "
            "from build.int_customer_purchases where bgnbd_T > 0 order by customer_id"
        ).fetchnumpy()
    x, t_x, big_t = (
        np.asarray(history[c], dtype=float) for c in ("bgnbd_x", "bgnbd_t_x", "bgnbd_T")
    )
    sample = churn.sample_for_fit(x, t_x, big_t, max_n=FIT_SAMPLE_SIZE, seed=FIT_SEED)
    try:
        fitted = churn.fit(*sample, model=model)
        note = "fitted"
    except ValueError as error:
        # Too little history (for example months before the data starts): score nobody
        # rather than invent a churn likelihood. Rules reading it then do not hold.
        context.log.warning(f"{model} not fitted for {month_end}: {error}")
        fitted = None
        note = f"not fitted: {error}"
    month_fit, problem = churn.month_fit_to_keep(
        month_end,
        fitted,
        state_store.earlier_churn_fits(month_end, model) if fitted else [],
        buyers=len(x),
        fitted_at=datetime.now(),
        model=model,
    )
    if problem:
        context.log.warning(f"{model} fit for {month_end:%Y-%m} not used as it is: {problem}")
        note = problem
    spend_fit, spend_problem, spend_note = fit_spend(
        month_end, x, history["mean_repeat_spend"], dictionary.clv
    )
    if spend_problem:
        context.log.warning(f"spend model for {month_end:%Y-%m}: {spend_problem}")
    fit = {**month_fit.record(), **spend_fit.record()}
    state_store.record_churn_fit(fit)
    own = (
        {f"fitted_{k}": getattr(fitted, k) for k in ("r", "alpha", "a", "b")}
        if fitted and month_fit.kept_from
        else {}
    )
    spend = spend_fit.params
    return dg.MaterializeResult(
        metadata={
            "model": model,
            "status": note,
            "buyers": len(x),
            "fit_sample": int(fit["n_customers"] or 0),
            "r": fit["r"],
            "alpha": fit["alpha"],
            "a": fit["a"],
            "b": fit["b"],
            "log_likelihood": fit["log_likelihood"],
            "converged": bool(fit["converged"]),
            "kept_from": str(month_fit.kept_from) if month_fit.kept_from else None,
            **own,
            "spend_model": spend_note,
            "spend_p": fit["spend_p"],
            "spend_q": fit["spend_q"],
            "spend_gamma": fit["spend_gamma"],
            "spend_fit_sample": fit["spend_n_customers"],
            "mean_spend_per_purchase": spend.population_mean if spend else None,
            "spend_frequency_correlation": fit["spend_frequency_correlation"],
            "spend_kept_from": str(spend_fit.kept_from) if spend_fit.kept_from else None,
            "clv_horizon_months": spend_fit.assumptions.horizon_months,
            "clv_monthly_discount_rate": spend_fit.assumptions.monthly_discount_rate,
        },
        check_results=[
            dg.AssetCheckResult(
                check_name="fit_is_sound",
                passed=problem is None,
                severity=dg.AssetCheckSeverity.WARN,
                description=problem,
                metadata={"model": model, "month_end": str(month_end)},
            ),
            dg.AssetCheckResult(
                check_name="spend_fit_is_sound",
                passed=spend_problem is None,
                severity=dg.AssetCheckSeverity.WARN,
                description=spend_problem,
                metadata={
                    "month_end": str(month_end),
                    "spend_frequency_correlation": fit["spend_frequency_correlation"],
                },
            ),
        ],
    )


#: Above this, frequency and mean spend are too related for the Gamma-Gamma model's
#: independence assumption (Fader, Hardie & Lee report 0.11 on CDNOW and call it weak).
SPEND_CORRELATION_BOUND = 0.3


def fit_spend(
    month_end: date, x: np.ndarray, mean_repeat_spend: np.ndarray, assumptions: value.ClvAssumptions
) -> tuple[value.MonthSpendFit, str | None, str]:
    """The month's Gamma-Gamma fit on a reproducible sample of its repeat buyers, the one
    kept in its place when it is not sound, the problem (None when there is none, which
    the WARN check reports) and a status line for the metadata."""
    # Fitted on the mean spend to 1/10,000 of the currency: sums of amounts added in another
    # order (an incremental month, another engine) differ in their last bits, and the
    # optimum must not move with them.
    spend = np.round(np.asarray(mean_repeat_spend, dtype=float), 4)
    repeat = (x > 0) & np.isfinite(spend) & (spend > 0)
    sample_x, sample_spend = churn.sample_rows(FIT_SAMPLE_SIZE, FIT_SEED, x[repeat], spend[repeat])
    correlation = value.spend_frequency_correlation(sample_x, sample_spend)
    try:
        fitted = value.fit_gamma_gamma(sample_x, sample_spend)
    except ValueError as error:
        fitted, status = None, f"not fitted: {error}"
    month, problem = value.month_spend_fit_to_keep(
        fitted,
        correlation,
        state_store.earlier_churn_fits(month_end) if fitted else [],
        assumptions,
    )
    if fitted is not None:
        status = problem or "fitted"
    if (
        fitted is not None
        and np.isfinite(correlation)
        and abs(correlation) > SPEND_CORRELATION_BOUND
    ):
        independence = (
            f"frequency and mean spend correlate at {correlation:.2f} (above "
            f"{SPEND_CORRELATION_BOUND}): the independence Gamma-Gamma assumes is doubtful"
        )
        problem = f"{problem}; {independence}" if problem else independence
    return month, problem, status


CALIBRATION_KEY = dg.AssetKey(["churn", "calibration"])


@dg.asset(
    pool=WAREHOUSE_POOL,
    key=CALIBRATION_KEY,
    group_name="features",
    owners=["team:data-engineering"],
    kinds={"python", "scipy"},
    partitions_def=monthly_partitions,
    backfill_policy=ONE_MONTH_A_RUN,
    deps=[get_asset_key_for_model([features_inputs], "int_customer_orders_monthly")],
    description=(
        "Each quarter, with the refresh of its last month: the calibration/holdout check of "
        "the dictionary's churn model. Fitted on the history to "
        f"{calibration.QUARTERLY_HOLDOUT_MONTHS} months before the quarter's end, it predicts "
        "each customer's purchases since, and the mean actual and predicted are compared per "
        "number of repeat purchases in the calibration period, with the mean absolute error "
        "per customer. Kept in the state store (calibrations); the month's review pack and "
        "the quarter's candidate report show the chart. Other months record nothing."
    ),
)
def churn_calibration(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, config_files: ConfigFiles
) -> dg.MaterializeResult:
    month_end, _ = refresh_window(context.partition_key)
    if not calibration.is_quarter_end(month_end):
        latest = state_store.latest_calibration(month_end)
        return dg.MaterializeResult(
            metadata={
                "status": "not a quarter's last month: nothing checked",
                "latest_check": f"{latest['month_end']:%Y-%m}" if latest else "none yet",
            }
        )
    model = config_files.once("segments", segment_dictionary.load).churn_model
    cutoff, holdout_end = calibration.quarterly_window(month_end)
    with warehouse.connect(read_only=True) as con:
        history = calibration.warehouse_holdout_history(con, cutoff, holdout_end)
    try:
        result = calibration.calibrate(history, model)  # as `segment-cadence churn calibrate`
    except ValueError as error:
        note = f"not checked: {model} could not be fitted on the history to {cutoff}: {error}"
        context.log.warning(note)
        return dg.MaterializeResult(metadata={"status": note, "model": model})
    state_store.record_calibration(
        calibration.record(result, month_end, cutoff, holdout_end, datetime.now())
    )
    return dg.MaterializeResult(
        metadata={
            "status": "checked",
            "model": model,
            "cutoff": cutoff.isoformat(),
            "holdout_end": holdout_end.isoformat(),
            "holdout_weeks": round(result.holdout_weeks, 1),
            "customers": len(history.x),
            "mean_absolute_error": result.mean_absolute_error,
            "groups": calibration_table(result),
        }
    )


CALIBRATION_SCHEMA = dg.TableSchema(
    columns=[
        dg.TableColumn("calibration_repeat_purchases", "string", description="0 ... 7+"),
        dg.TableColumn("customers", "int"),
        dg.TableColumn("actual", "float", description="mean holdout purchases"),
        dg.TableColumn("predicted", "float", description="mean expected holdout purchases"),
        dg.TableColumn("mean_absolute_error", "float", description="per customer"),
    ]
)


def calibration_table(result: calibration.Calibration) -> dg.TableMetadataValue:
    return dg.MetadataValue.table(
        records=[
            dg.TableRecord(
                {
                    "calibration_repeat_purchases": g.label,
                    "customers": g.customers,
                    "actual": g.actual,
                    "predicted": g.predicted,
                    "mean_absolute_error": g.mean_absolute_error,
                }
            )
            for g in result.groups
        ],
        schema=CALIBRATION_SCHEMA,
    )
