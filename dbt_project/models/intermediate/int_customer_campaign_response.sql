{#- Campaign response per customer: a send counts as answered when the customer clicks,
    replies, visits a store or buys within 14 days of it. -#}
with sends as (

    select send_id, customer_id, sent_date
    from {{ ref('stg_campaign_sends') }}
    where sent_date <= {{ month_end() }}
      and sent_date > {{ days_before_month_end(365) }}

),

responding_events as (

    select customer_id, event_date as response_date
    from {{ ref('stg_engagement_events') }}
    where event_type in ('email_click', 'reply', 'store_visit')
      and event_date <= {{ month_end() }}
      and event_date > {{ days_before_month_end(365) }}

    union all

    select customer_id, order_date as response_date
    from {{ ref('stg_orders') }}
    where order_date <= {{ month_end() }}
      and order_date > {{ days_before_month_end(365) }}

),

answered as (

    select distinct sends.send_id
    from sends
    inner join responding_events
        on responding_events.customer_id = sends.customer_id
        and responding_events.response_date >= sends.sent_date
        and responding_events.response_date <= {{ dbt.dateadd('day', 14, 'sends.sent_date') }}

),

per_customer as (

    select
        sends.customer_id,
        count(*) as campaign_sends_365d,
        count(answered.send_id) as campaign_responses_365d

    from sends
    left join answered on answered.send_id = sends.send_id
    group by sends.customer_id

)

select * from per_customer
