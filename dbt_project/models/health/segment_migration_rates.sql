{#- Migration rates per segment and month, over the whole published KPI history: the share of
    last month's members who left, the share of this month's who arrived, and retention. A
    view, so it always shows every published month. -#}
{{ config(materialized="view", schema="published") }}

with kpis as (

    select * from {{ source("published", "segment_kpis") }}

),

final as (

    select
        month_end,
        segment_id,
        customers,
        previous_customers,
        stayed,
        moved_in,
        moved_out,
        new_customers,
        {{ as_double("moved_out") }} / nullif(previous_customers, 0) as migration_out_rate,
        {{ as_double("moved_in") }} / nullif(customers, 0) as migration_in_rate,
        retention_rate
    from kpis

)

select * from final
