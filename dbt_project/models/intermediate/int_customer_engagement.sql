{#- Engagement depth per customer: how much and on how many channels, in the last 90 and
    365 days to month_end. Channel breadth is counted over the 90-day events alone, apart
    from the totals, so the 365-day scan needs no distinct count. -#}
with events as (

    select customer_id, channel, event_date
    from {{ ref('stg_engagement_events') }}
    where event_date <= {{ month_end() }}
      and event_date > {{ days_before_month_end(365) }}

),

per_customer as (

    select
        customer_id,
        count(*) as engagement_events_365d,
        sum(case when event_date > {{ days_before_month_end(90) }} then 1 else 0 end)
            as engagement_events_90d,
        max(event_date) as last_engagement_date

    from events
    group by customer_id

),

channels_90d as (

    select customer_id, count(*) as engagement_channels_90d
    from (
        select distinct customer_id, channel
        from events
        where event_date > {{ days_before_month_end(90) }}
          and channel is not null
    ) as used
    group by customer_id

),

final as (

    select
        per_customer.customer_id,
        per_customer.engagement_events_365d,
        per_customer.engagement_events_90d,
        coalesce(channels_90d.engagement_channels_90d, 0) as engagement_channels_90d,
        per_customer.last_engagement_date

    from per_customer
    left join channels_90d on channels_90d.customer_id = per_customer.customer_id

)

select * from final
