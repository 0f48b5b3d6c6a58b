{#- Segment KPIs for the month, one row per active segment (size zero included).
    Sums and averages of floating-point values are rounded: a parallel aggregation adds in
    no fixed order, and a re-run must publish the same figures, not the same to 15 digits. -#}
with membership as (

    select * from {{ ref('segment_membership') }}

),

features as (

    select * from {{ ref('customer_features') }}

),

segments as (

    {{ segment_ids_relation() }}

),

dictionary as (

    select segment_id, segment_name, paused
    from {{ ref('segment_dictionary_versions') }}
    where definition_version = '{{ cadence_var("definition_version") }}'

),

population as (

    select count(*) as total_customers from membership

),

current_members as (

    select
        membership.segment_id,
        count(*) as customers,
        round(sum(features.spend_this_month), 2) as revenue_this_month,
        round(sum(features.spend_365d), 2) as revenue_365d,
        round(avg(features.monetary_value), 4) as avg_lifetime_value,
        round(avg(features.churn_likelihood), 9) as avg_churn_likelihood,
        round(avg(features.expected_purchases_12m), 9) as avg_expected_purchases_12m,
        round(avg(features.clv), 4) as avg_clv,
        round(sum(features.clv), 2) as total_clv,
        round(avg(features.engagement_events_90d), 9) as avg_engagement_events_90d,
        sum(features.campaign_sends_365d) as campaign_sends_365d,
        sum(features.campaign_responses_365d) as campaign_responses_365d,
        round(avg(membership.months_in_segment), 9) as avg_months_in_segment,
        sum(case when membership.previous_segment_id = membership.segment_id then 1 else 0 end)
            as stayed,
        sum(case when membership.previous_segment_id <> membership.segment_id then 1 else 0 end)
            as moved_in,
        sum(case when membership.previous_segment_id is null then 1 else 0 end) as new_customers

    from membership
    inner join features on features.customer_id = membership.customer_id
    group by membership.segment_id

),

previous_members as (

    select previous_segment_id as segment_id, count(*) as previous_customers
    from membership
    where previous_segment_id is not null
    group by previous_segment_id

),

final as (

    select
        {{ month_end() }} as month_end,
        segments.segment_id,
        dictionary.segment_name,
        coalesce(dictionary.paused, false) as paused,
        coalesce(current_members.customers, 0) as customers,
        {{ as_double('coalesce(current_members.customers, 0)') }}
            / nullif(population.total_customers, 0) as share,
        coalesce(current_members.revenue_this_month, 0) as revenue_this_month,
        coalesce(current_members.revenue_365d, 0) as revenue_365d,
        current_members.avg_lifetime_value,
        current_members.avg_churn_likelihood,
        current_members.avg_engagement_events_90d,
        {{ as_double('current_members.campaign_responses_365d') }}
            / nullif(current_members.campaign_sends_365d, 0) as campaign_response_rate,
        current_members.avg_months_in_segment,
        coalesce(previous_members.previous_customers, 0) as previous_customers,
        coalesce(current_members.stayed, 0) as stayed,
        coalesce(current_members.moved_in, 0) as moved_in,
        coalesce(previous_members.previous_customers, 0) - coalesce(current_members.stayed, 0)
            as moved_out,
        coalesce(current_members.new_customers, 0) as new_customers,
        {{ as_double('current_members.stayed') }}
            / nullif(previous_members.previous_customers, 0) as retention_rate,
        current_members.avg_expected_purchases_12m,
        current_members.avg_clv,
        current_members.total_clv

    from segments
    cross join population
    left join current_members on current_members.segment_id = segments.segment_id
    left join previous_members on previous_members.segment_id = segments.segment_id
    left join dictionary on dictionary.segment_id = segments.segment_id

)

select * from final
