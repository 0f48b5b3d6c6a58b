{#- Lift per campaign, as sums per arm: the members of the campaign's targeted segment in
    the membership in force at its first send (the month published before it), treated and
    held out, before and after the send: bought in the lift_pre_days before it, bought and
    spent in the lift_post_days from it. A campaign is measured once, in the month its
    post-send window ends. The post difference is its lift (intent to treat on the targeted
    segment); the change from before to after, treated against held out, its difference in
    differences; the pre-send difference, the parallel-trends check (near 0 when the holdout
    is as good as random). Intervals in Python (segment_cadence/defs/segments/lift.py). -#}
{{ config(**month_table_config()) }}
{%- set pre_days = cadence_var("lift_pre_days") | int %}
{%- set post_days = cadence_var("lift_post_days") | int %}

with sends as (

    select *
    from {{ source_if_exists("raw", "campaign_sends", campaign_sends_columns()) }}
    where {{ "true" if has_send_log() else "false" }}

),

campaigns as (

    select
        campaign_id,
        targeted_segment,
        min(campaign_name) as campaign_name,
        min(cast(sent_at as date)) as first_sent,
        count(distinct customer_id) as recipients

    from sends
    group by campaign_id, targeted_segment

),

due as (

    select *
    from campaigns
    where {{ days_between("first_sent", month_end()) }} >= {{ post_days - 1 }}
      and {{ days_between("first_sent", previous_month_end()) }} < {{ post_days - 1 }}

),

membership_month as (

    select due.campaign_id, due.targeted_segment, max(publications.month_end) as month_end
    from due
    inner join {{ source("published", "publications") }} as publications
        on publications.month_end < due.first_sent
    group by due.campaign_id, due.targeted_segment

),

members as (

    select
        due.campaign_id,
        due.targeted_segment,
        due.first_sent,
        membership.customer_id,
        case when membership.holdout is null then 'treated' else 'held_out' end as arm

    from due
    inner join membership_month
        on membership_month.campaign_id = due.campaign_id
        and membership_month.targeted_segment = due.targeted_segment
    inner join {{ source("published", "segment_membership") }} as membership
        on membership.month_end = membership_month.month_end
        and membership.segment_id = due.targeted_segment

),

windows as (

    select
        members.campaign_id,
        members.targeted_segment,
        members.customer_id,
        max(case when {{ days_between("orders.order_date", "members.first_sent") }}
                      between 1 and {{ pre_days }} then 1 else 0 end) as bought_before,
        max(case when {{ days_between("members.first_sent", "orders.order_date") }}
                      between 0 and {{ post_days - 1 }} then 1 else 0 end) as bought_after,
        sum(case when {{ days_between("members.first_sent", "orders.order_date") }}
                      between 0 and {{ post_days - 1 }} then orders.amount else 0 end)
            as revenue_after

    from members
    inner join {{ ref("stg_orders") }} as orders
        on orders.customer_id = members.customer_id
        and {{ days_between("orders.order_date", "members.first_sent") }} between {{ 1 - post_days }} and {{ pre_days }}
    group by members.campaign_id, members.targeted_segment, members.customer_id

),

outcomes as (

    select
        members.campaign_id,
        members.targeted_segment,
        members.arm,
        coalesce(windows.bought_before, 0) as bought_before,
        coalesce(windows.bought_after, 0) as bought_after,
        coalesce(windows.revenue_after, 0) as revenue_after,
        case when sent.customer_id is null then 0 else 1 end as reached

    from members
    left join windows
        on windows.campaign_id = members.campaign_id
        and windows.targeted_segment = members.targeted_segment
        and windows.customer_id = members.customer_id
    left join (select distinct campaign_id, customer_id from sends) as sent
        on sent.campaign_id = members.campaign_id and sent.customer_id = members.customer_id

),

final as (

    select
        {{ month_end() }} as month_end,
        cast(outcomes.campaign_id as {{ string_type() }}) as campaign_id,
        cast(min(due.campaign_name) as {{ string_type() }}) as campaign_name,
        cast(outcomes.targeted_segment as {{ string_type() }}) as segment_id,
        min(due.first_sent) as first_sent,
        cast(outcomes.arm as {{ string_type() }}) as arm,
        cast(count(*) as bigint) as customers,
        cast(sum(outcomes.reached) as bigint) as reached,
        cast(sum(outcomes.bought_before) as bigint) as purchasers_before,
        cast(sum(outcomes.bought_after) as bigint) as purchasers_after,
        round(sum(outcomes.revenue_after), 2) as revenue_after,
        round(sum(outcomes.revenue_after * outcomes.revenue_after), 2) as revenue_after_squared,
        cast(sum(outcomes.bought_after - outcomes.bought_before) as bigint) as change_total,
        cast(sum((outcomes.bought_after - outcomes.bought_before)
                 * (outcomes.bought_after - outcomes.bought_before)) as bigint)
            as change_squared

    from outcomes
    inner join due
        on due.campaign_id = outcomes.campaign_id
        and due.targeted_segment = outcomes.targeted_segment
    group by outcomes.campaign_id, outcomes.targeted_segment, outcomes.arm

)

select * from final
