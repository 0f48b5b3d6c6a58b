{#- Engagement depth per customer: how much and on how many channels, in the last 90 and
    365 days to month_end. -#}
with events as (

    select * from {{ ref('stg_engagement_events') }}
    where event_date <= {{ month_end() }}
      and event_date > {{ days_before_month_end(365) }}

),

per_customer as (

    select
        customer_id,
        count(*) as engagement_events_365d,
        sum(case when event_date > {{ days_before_month_end(90) }} then 1 else 0 end)
            as engagement_events_90d,
        count(distinct case when event_date > {{ days_before_month_end(90) }} then channel end)
            as engagement_channels_90d,
        max(event_date) as last_engagement_date

    from events
    group by customer_id

)

select * from per_customer
