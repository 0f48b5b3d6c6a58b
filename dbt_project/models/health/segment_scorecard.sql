{#- The segment scorecard: each KPI a segment declares in the dictionary (the var
    kpi_targets, from segment_cadence/defs/health/scorecard.py), this month's value beside
    last month's, against the target of the segment's maturity. A segment is mature from
    kpi_mature_after_months months after its first published month; before that its `new`
    target applies (growth), after it its `mature` one (stability). A KPI with no value (lift
    with an arm below lift_min_customers_per_arm, a segment nobody has left) is `no_data`,
    one with no target at this maturity `no_target`: neither is a miss. -#}
{{ config(**month_table_config()) }}
{%- set mature_after = cadence_var("kpi_mature_after_months") | int %}
{%- set min_arm = cadence_var("lift_min_customers_per_arm") | int %}
{%- set two_months_back = cadence_day("previous_month_end").replace(day=1)
    - modules.datetime.timedelta(days=1) %}

with targets as (

    {{ vars_rows(cadence_var("kpi_targets"), {
        "segment_id": "varchar", "kpi": "varchar", "indicator": "varchar",
        "direction": "varchar", "owner": "varchar", "severity": "varchar",
        "new_low": "double", "new_high": "double", "mature_low": "double",
        "mature_high": "double"}) }}

),

published_kpis as (

    select *
    from {{ source("published", "segment_kpis") }}
    where month_end <= {{ month_end() }}

),

first_published as (

    select segment_id, min(month_end) as first_month
    from published_kpis
    group by segment_id

),

lift_arms as (

    select
        month_end,
        segment_id,
        sum(case when arm = 'treated' then customers else 0 end) as treated,
        sum(case when arm = 'held_out' then customers else 0 end) as held_out,
        sum(case when arm = 'treated' then purchasers else 0 end) as treated_purchasers,
        sum(case when arm = 'held_out' then purchasers else 0 end) as held_out_purchasers

    from {{ ref("segment_lift_arms") }}
    where month_end in ({{ month_end() }}, {{ previous_month_end() }})
    group by month_end, segment_id

),

lift as (

    select
        month_end,
        segment_id,
        case when least(treated, held_out) >= {{ min_arm }} then round(
            {{ as_double("treated_purchasers") }} / treated
            - {{ as_double("held_out_purchasers") }} / held_out, 9)
        end as lift

    from lift_arms

),

months as (

    select
        this_month.month_end,
        this_month.segment_id,
        {{ as_double("this_month.customers") }} as size,
        round({{ as_double("this_month.customers") }} / nullif(before.customers, 0) - 1, 9)
            as size_change,
        this_month.retention_rate as retention,
        this_month.campaign_response_rate as response_rate,
        this_month.avg_churn_likelihood as churn_likelihood,
        round(this_month.revenue_365d / nullif(this_month.customers, 0), 4)
            as revenue_per_customer,
        this_month.avg_clv as clv,
        lift.lift

    from published_kpis as this_month
    left join published_kpis as before
        on before.segment_id = this_month.segment_id
        and before.month_end = case
            when this_month.month_end = {{ month_end() }} then {{ previous_month_end() }}
            else {{ date_literal(two_months_back) }}
        end
    left join lift
        on lift.segment_id = this_month.segment_id and lift.month_end = this_month.month_end
    where this_month.month_end in ({{ month_end() }}, {{ previous_month_end() }})

),

measures as (

    {%- for kpi in ["size", "size_change", "retention", "response_rate", "churn_likelihood",
                    "revenue_per_customer", "clv", "lift"] %}
    select month_end, segment_id, '{{ kpi }}' as kpi, {{ kpi }} as value from months
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}

),

aged as (

    select
        targets.*,
        cast(coalesce(
            (year({{ month_end() }}) * 12 + month({{ month_end() }}))
            - (year(first_published.first_month) * 12 + month(first_published.first_month)),
            0) as integer) as months_since_added

    from targets
    left join first_published on first_published.segment_id = targets.segment_id

),

compared as (

    select
        aged.*,
        case when aged.months_since_added >= {{ mature_after }} then 'mature' else 'new' end
            as maturity,
        case when aged.months_since_added >= {{ mature_after }} then aged.mature_low
            else aged.new_low end as target_low,
        case when aged.months_since_added >= {{ mature_after }} then aged.mature_high
            else aged.new_high end as target_high,
        this_month.value as actual,
        last_month.value as last_month

    from aged
    left join measures as this_month
        on this_month.segment_id = aged.segment_id and this_month.kpi = aged.kpi
        and this_month.month_end = {{ month_end() }}
    left join measures as last_month
        on last_month.segment_id = aged.segment_id and last_month.kpi = aged.kpi
        and last_month.month_end = {{ previous_month_end() }}

),

final as (

    select
        {{ month_end() }} as month_end,
        cast(segment_id as {{ string_type() }}) as segment_id,
        cast(kpi as {{ string_type() }}) as kpi,
        cast(indicator as {{ string_type() }}) as indicator,
        cast(direction as {{ string_type() }}) as direction,
        cast(owner as {{ string_type() }}) as owner,
        cast(severity as {{ string_type() }}) as severity,
        cast(maturity as {{ string_type() }}) as maturity,
        months_since_added,
        target_low,
        target_high,
        actual,
        last_month,
        cast(case
            when target_low is null and target_high is null then 'no_target'
            when actual is null then 'no_data'
            when actual < target_low or actual > target_high then 'missed'
            else 'met'
        end as {{ string_type() }}) as status

    from compared

)

select * from final
