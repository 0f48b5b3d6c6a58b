{#- Campaign response per customer: a send counts as answered when the customer clicks,
    replies, visits a store or buys within 14 days of it.

    Sends and response days go on one timeline per customer; each send looks ahead to the
    next response day on or after its own day (responses sort after sends on the same day).
    A sort, rather than a join of every send with every response of the customer. -#}
with sends as (

    select send_id, customer_id, sent_date
    from {{ ref('stg_campaign_sends') }}
    where sent_date <= {{ month_end() }}
      and sent_date > {{ days_before_month_end(365) }}

),

response_days as (

    select customer_id, event_date as response_date
    from {{ ref('stg_engagement_events') }}
    where event_type in ('email_click', 'reply', 'store_visit')
      and event_date <= {{ month_end() }}
      and event_date > {{ days_before_month_end(365) }}

    union

    select customer_id, order_date as response_date
    from {{ ref('stg_orders') }}
    where order_date <= {{ month_end() }}
      and order_date > {{ days_before_month_end(365) }}

),

timeline as (

    select customer_id, sent_date as day, 0 as is_response from sends
    union all
    select customer_id, response_date as day, 1 as is_response from response_days

),

looking_ahead as (

    select
        customer_id,
        day,
        is_response,
        min(case when is_response = 1 then day end) over (
            partition by customer_id
            order by day, is_response
            rows between current row and unbounded following
        ) as next_response_day

    from timeline

),

per_customer as (

    select
        customer_id,
        count(*) as campaign_sends_365d,
        count(case when next_response_day <= {{ dbt.dateadd('day', 14, 'day') }} then 1 end)
            as campaign_responses_365d

    from looking_ahead
    where is_response = 0
    group by customer_id

)

select * from per_customer
