{#- Segment health metrics of the published month, long-form: one row per (month, segment,
    metric), so thresholds (config/thresholds.yaml, evaluated in Python by the
    health/segment_health asset) can address any of them and the history accumulates for
    robust baselines. Input metrics use the segment id '*'.

    - segment metrics from the published KPIs and features: size, share, migration out and
      in, dwell, churn likelihood, engagement depth, campaign response, repeat-purchase
      velocity, and the share shift against last month;
    - input metrics: freshness, the month's order lines, the quarantine rate, churn nulls
      among buyers, and feature drift against last month (PSI over ten quantile bins of last
      month, and the earth mover's distance in units of last month's standard deviation),
      only when last month has features;
    - pause violations per segment paused at send time, when they were evaluated.

    Everything reads published tables (and the raw inputs for freshness and volume), so
    health describes what consumers actually see. Sums of floating-point values are ordered
    (`sum(x order by ...)`): a parallel aggregation adds in no fixed order, and a re-run of
    a month must give the same values to the last digit. -#}
{{ config(**month_table_config()) }}
{%- set drift_features = ["recency_days", "frequency", "monetary_value", "engagement_events_90d"] %}
{%- set psi_bins = 10 %}
{%- set psi_epsilon = 0.0001 %}
{%- set psi_fractions = [] %}
{%- for i in range(psi_bins + 1) %}{% do psi_fractions.append(i / psi_bins) %}{% endfor %}

with kpis as (

    select *
    from {{ source("published", "segment_kpis") }}
    where month_end = {{ month_end() }}

),

previous_kpis as (

    select segment_id, share
    from {{ source("published", "segment_kpis") }}
    where month_end = {{ previous_month_end() }}

),

membership as (

    select customer_id, segment_id
    from {{ source("published", "segment_membership") }}
    where month_end = {{ month_end() }}

),

features as (

    select *
    from {{ source_if_exists("published", "customer_features", {
        "customer_id": "varchar", "month_end": "date", "frequency": "bigint",
        "churn_likelihood": "double", "repeat_purchase_velocity": "double",
        "recency_days": "double", "monetary_value": "double",
        "engagement_events_90d": "double"}) }}
    where month_end in ({{ month_end() }}, {{ previous_month_end() }})

),

velocity as (

    select
        membership.segment_id,
        {{ ordered_aggregate('avg', 'features.repeat_purchase_velocity', 'membership.customer_id') }}
            as repeat_purchase_velocity
    from membership
    inner join features
        on features.customer_id = membership.customer_id
        and features.month_end = {{ month_end() }}
    group by membership.segment_id

),

segment_metrics as (

    select kpis.segment_id, metric, value
    from kpis
    left join velocity on velocity.segment_id = kpis.segment_id
    left join previous_kpis on previous_kpis.segment_id = kpis.segment_id
    {{ metric_rows([
        ["size", as_double("kpis.customers")],
        ["share", "kpis.share"],
        ["migration_out_rate",
            "kpis.moved_out * " ~ float_literal("1.0") ~ " / nullif(kpis.previous_customers, 0)"],
        ["migration_in_rate", "kpis.moved_in * " ~ float_literal("1.0") ~ " / nullif(kpis.customers, 0)"],
        ["dwell_months", "kpis.avg_months_in_segment"],
        ["churn_likelihood", "kpis.avg_churn_likelihood"],
        ["engagement_depth", "kpis.avg_engagement_events_90d"],
        ["campaign_response_rate", "kpis.campaign_response_rate"],
        ["repeat_purchase_velocity", "velocity.repeat_purchase_velocity"],
        ["share_shift", "kpis.share - previous_kpis.share"],
    ]) }}

),

orders as (

    select order_date
    from {{ source_if_exists("raw", "orders", {"order_date": "date"}) }}
    where order_date <= {{ month_end() }}

),

loaded as (

    {%- set loaded_tables = [] %}
    {%- for table in ["customers", "orders", "engagement_events", "campaign_sends"] %}
        {%- if source_exists("raw", table) %}{% do loaded_tables.append(table) %}{% endif %}
    {%- endfor %}
    select cast(0 as bigint) as rows_loaded
    {%- for table in loaded_tables %}
    union all
    select count(*) from {{ source("raw", table) }}
    {%- endfor %}

),

quarantined as (

    select count(*) as rows_quarantined
    from {{ source_if_exists("quarantine", "rejected_rows", {"source": "varchar"}) }}

),

input_metrics as (

    select 'freshness_days' as metric, {{ as_double(days_between("max(order_date)", month_end())) }} as value
    from orders
    union all
    select
        'order_lines_in_month',
        {{ as_double("count(*) filter (where order_date >= " ~ month_first_day() ~ ")") }}
    from orders
    union all
    select
        'quarantine_rate',
        case
            when loaded.rows + quarantined.rows_quarantined > 0
                then quarantined.rows_quarantined * {{ float_literal('1.0') }}
                    / (loaded.rows + quarantined.rows_quarantined)
            else 0.0
        end
    from (select sum(rows_loaded) as rows from loaded) as loaded
    cross join quarantined
    union all
    select
        'churn_null_rate_among_buyers',
        avg(case when churn_likelihood is null then {{ float_literal('1.0') }} else {{ float_literal('0.0') }} end)
    from features
    where month_end = {{ month_end() }} and frequency >= 1

),

{#- Drift samples. A missing feature value counts as 0, as the numpy implementation this
    replaced read it (DuckDB hands NULL to numpy as 0). -#}
feature_values as (

    {%- for feature in drift_features %}
    {{ "union all" if not loop.first }}
    select
        '{{ feature }}' as feature,
        month_end = {{ month_end() }} as is_current,
        coalesce({{ as_double(feature) }}, 0.0) as value
    from features
    {%- endfor %}

),

drifted_features as (

    select feature
    from feature_values
    group by feature
    having count(*) filter (where not is_current) > 0

),

samples as (

    select feature_values.*
    from feature_values
    inner join drifted_features on drifted_features.feature = feature_values.feature
    where {{ is_finite('value') }}

),

sample_sizes as (

    select
        drifted_features.feature,
        count(samples.value) filter (where not samples.is_current) as expected_n,
        count(samples.value) filter (where samples.is_current) as actual_n,
        coalesce(
            {{ ordered_aggregate('stddev_pop', 'samples.value', 'samples.value') }} filter (where not samples.is_current),
            0
        ) as expected_sd
    from drifted_features
    left join samples on samples.feature = drifted_features.feature
    group by drifted_features.feature

),

{#- PSI: quantile edges of last month (linear interpolation, distinct), a value's bin is the
    number of inner edges at or below it; empty shares are floored at epsilon. -#}
psi_edges as (

    select
        feature,
        {{ distinct_quantiles("value", psi_fractions) }} as edges
    from samples
    where not is_current
    group by feature

),

psi_bins as (

    select
        samples.feature,
        {{ inner_elements_at_or_below("psi_edges.edges", "samples.value") }} as bin,
        count(*) filter (where not samples.is_current) as expected,
        count(*) filter (where samples.is_current) as actual
    from samples
    inner join psi_edges on psi_edges.feature = samples.feature
    group by all

),

psi_terms as (

    select
        psi_bins.feature,
        psi_bins.bin,
        greatest(psi_bins.expected * {{ float_literal('1.0') }} / sample_sizes.expected_n, {{ psi_epsilon }}) as e_share,
        greatest(psi_bins.actual * {{ float_literal('1.0') }} / sample_sizes.actual_n, {{ psi_epsilon }}) as a_share
    from psi_bins
    inner join sample_sizes on sample_sizes.feature = psi_bins.feature

),

single_edge as (

    select
        samples.feature,
        bool_and(abs(samples.value - {{ array_first('psi_edges.edges') }})
            <= 1e-8 + 1e-5 * abs({{ array_first('psi_edges.edges') }}))
            as all_at_the_edge
    from samples
    inner join psi_edges on psi_edges.feature = samples.feature
    where samples.is_current and {{ array_length('psi_edges.edges') }} < 2
    group by samples.feature

),

psi as (

    select
        sample_sizes.feature,
        case
            when sample_sizes.expected_n = 0 or sample_sizes.actual_n = 0 then cast('nan' as double)
            when single_edge.feature is not null then
                case when single_edge.all_at_the_edge then 0.0 else cast('inf' as double) end
            else (
                select {{ ordered_aggregate("sum", "(psi_terms.a_share - psi_terms.e_share)
                    * ln(psi_terms.a_share / psi_terms.e_share)", "psi_terms.bin") }}
                from psi_terms where psi_terms.feature = sample_sizes.feature
            )
        end as value
    from sample_sizes
    left join single_edge on single_edge.feature = sample_sizes.feature

),

{#- Earth mover's distance: the area between the two distribution functions over the
    distinct values of both samples, in units of last month's standard deviation (1 when
    that is 0). -#}
cdf_steps as (

    select
        feature,
        value,
        count(*) filter (where not is_current) as expected,
        count(*) filter (where is_current) as actual
    from samples
    group by feature, value

),

cdfs as (

    select
        cdf_steps.feature,
        cdf_steps.value,
        (sum(cdf_steps.expected) over running) * {{ float_literal('1.0') }} / sample_sizes.expected_n as expected_cdf,
        (sum(cdf_steps.actual) over running) * {{ float_literal('1.0') }} / sample_sizes.actual_n as actual_cdf,
        (lead(cdf_steps.value) over running) - cdf_steps.value as width
    from cdf_steps
    inner join sample_sizes on sample_sizes.feature = cdf_steps.feature
    where sample_sizes.expected_n > 0 and sample_sizes.actual_n > 0
    window running as (partition by cdf_steps.feature order by cdf_steps.value)

),

wasserstein as (

    select
        sample_sizes.feature,
        case
            when sample_sizes.expected_n = 0 or sample_sizes.actual_n = 0 then cast('nan' as double)
            else coalesce((
                select {{ ordered_aggregate("sum", "abs(cdfs.expected_cdf - cdfs.actual_cdf) * cdfs.width", "cdfs.value") }}
                from cdfs where cdfs.feature = sample_sizes.feature and cdfs.width is not null
            ), 0.0) / case when sample_sizes.expected_sd = 0 then 1.0 else sample_sizes.expected_sd end
        end as value
    from sample_sizes

),

drift_metrics as (

    select 'psi_' || feature as metric, value from psi
    union all
    select 'wasserstein_' || feature as metric, value from wasserstein

),

pause_metrics as (

    select paused.segment_id, 'pause_violations' as metric, {{ as_double("count(violations.send_id)") }} as value
    from (
        select distinct segment_id from ({{ paused_segments_of(previous_month_end()) }})
    ) as paused
    left join {{ ref("pause_violations") }} as violations
        on violations.segment_id = paused.segment_id
        and violations.month_end = {{ month_end() }}
    where exists (
        select 1 from {{ ref("red_flags") }} as flags
        where flags.month_end = {{ month_end() }}
          and flags.metric = 'pause_violation_count'
          and flags.evaluated
    )
    group by paused.segment_id

),

metrics as (

    select segment_id, metric, value from segment_metrics
    union all
    select '*' as segment_id, metric, value from input_metrics
    union all
    select '*' as segment_id, metric, value from drift_metrics
    union all
    select segment_id, metric, value from pause_metrics

),

final as (

    select
        {{ month_end() }} as month_end,
        cast(segment_id as {{ string_type() }}) as segment_id,
        cast(metric as {{ string_type() }}) as metric,
        cast(value as double) as value,
        cast('{{ cadence_var("definition_version") }}' as {{ string_type() }}) as definition_version
    from metrics

)

select * from final
