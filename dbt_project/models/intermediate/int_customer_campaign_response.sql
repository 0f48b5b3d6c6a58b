{#- Campaign response per customer: a send counts as answered when the customer clicks,
    replies, visits a store or buys within 14 days of it.

    Each send asks whether such a response exists (a semi-join on the customer with the
    14-day range), so no send is paired with every response of its customer and nothing
    needs de-duplicating afterwards. -#}
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

),

purchases as (

    select customer_id, order_date as response_date
    from {{ ref('stg_orders') }}
    where order_date <= {{ month_end() }}
      and order_date > {{ days_before_month_end(365) }}

),

per_send as (

    select
        sends.customer_id,
        case
            when exists (
                select 1 from responding_events
                where responding_events.customer_id = sends.customer_id
                  and responding_events.response_date >= sends.sent_date
                  and responding_events.response_date <= {{ dbt.dateadd('day', 14, 'sends.sent_date') }}
            ) or exists (
                select 1 from purchases
                where purchases.customer_id = sends.customer_id
                  and purchases.response_date >= sends.sent_date
                  and purchases.response_date <= {{ dbt.dateadd('day', 14, 'sends.sent_date') }}
            ) then 1
        end as answered

    from sends

),

per_customer as (

    select
        customer_id,
        count(*) as campaign_sends_365d,
        count(answered) as campaign_responses_365d

    from per_send
    group by customer_id

)

select * from per_customer
