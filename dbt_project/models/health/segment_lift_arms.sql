{#- Lift per segment, as sums per arm: last month's published members of each segment,
    treated (not held out) and held out (the global control and the segment's own holdout),
    and what they did in the lift_purchase_within_days after that month's end: whether they
    bought, what they spent, and whether they were still in the segment this month. Intent to
    treat: a treated member counts whether or not a campaign reached them. The interval is
    Python's (segment_cadence/defs/segments/lift.py), from these sums only. A membership
    published before holdouts existed has no held-out arm: "not enough data" there. -#}
{{ config(**month_table_config()) }}
{%- set window_end = cadence_day("previous_month_end")
    + modules.datetime.timedelta(days=cadence_var("lift_purchase_within_days") | int) %}

with members as (

    select customer_id, segment_id, holdout
    from {{ source("published", "segment_membership") }}
    where month_end = {{ previous_month_end() }}

),

current_members as (

    select customer_id, segment_id
    from {{ source("published", "segment_membership") }}
    where month_end = {{ month_end() }}

),

window_orders as (

    select customer_id, sum(amount) as revenue
    from {{ ref("stg_orders") }}
    where order_date > {{ previous_month_end() }}
      and order_date <= {{ date_literal(window_end) }}
    group by customer_id

),

outcomes as (

    select
        members.segment_id,
        case when members.holdout is null then 'treated' else 'held_out' end as arm,
        case when window_orders.customer_id is null then 0 else 1 end as purchased,
        coalesce(window_orders.revenue, 0) as revenue,
        case when current_members.segment_id = members.segment_id then 1 else 0 end as retained

    from members
    left join window_orders on window_orders.customer_id = members.customer_id
    left join current_members on current_members.customer_id = members.customer_id

),

final as (

    select
        {{ month_end() }} as month_end,
        {{ previous_month_end() }} as membership_month,
        cast(segment_id as {{ string_type() }}) as segment_id,
        cast(arm as {{ string_type() }}) as arm,
        cast(count(*) as bigint) as customers,
        cast(sum(purchased) as bigint) as purchasers,
        round(sum(revenue), 2) as revenue,
        round(sum(revenue * revenue), 2) as revenue_squared,
        cast(sum(retained) as bigint) as retained

    from outcomes
    group by segment_id, arm

)

select * from final
