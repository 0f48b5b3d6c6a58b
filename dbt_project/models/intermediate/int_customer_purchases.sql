{#- Purchase history per customer as of month_end: the inputs of RFM and of BG/NBD.
    BG/NBD counts repeat purchase *days* in weeks, as in Fader, Hardie & Lee (2005):
    x = distinct purchase days - 1, t_x = first to last purchase, T = first purchase to month_end.

    Added up from the monthly slices (int_customer_orders_monthly), never from the whole
    order history. The 365-day window is whole months, except when a 29 February falls inside
    it: then the days of its first, partial month are read from the order lines. -#}
{%- set window_start = window_first_day(365) %}
{%- set whole_months_from = first_whole_month(365) %}

with monthly as (

    select * from {{ ref("int_customer_orders_monthly") }}
    where activity_month <= {{ month_end() }}

),

per_customer as (

    select
        customer_id,
        min(first_order_date) as first_order_date,
        max(last_order_date) as last_order_date,
        cast(sum(orders) as {{ dbt.type_bigint() }}) as order_count,
        cast(sum(purchase_days) as {{ dbt.type_bigint() }}) as purchase_days,
        sum(spend) as monetary_value,
        min_by(first_day_spend, activity_month) as first_purchase_day_spend,
        sum(case when activity_month = {{ date_literal(cadence_day("month_end").replace(day=1)) }} then spend else 0 end)
            as spend_this_month,
        sum(case when activity_month >= {{ date_literal(whole_months_from) }} then spend else 0 end)
            as spend_365d_whole_months,
        cast(sum(case when activity_month >= {{ date_literal(whole_months_from) }} then orders else 0 end)
            as {{ dbt.type_bigint() }}) as orders_365d_whole_months

    from monthly
    group by customer_id

),

window_first_month as (

    {%- if window_start < whole_months_from %}
    select customer_id, sum(amount) as spend, count(distinct order_id) as orders
    from {{ ref("stg_orders") }}
    where order_date >= {{ date_literal(window_start) }}
      and order_date < {{ date_literal(whole_months_from) }}
    group by customer_id
    {%- else %}
    select customer_id, 0.0 as spend, 0 as orders
    from {{ ref("stg_orders") }}
    where 1 = 0
    {%- endif %}

),

final as (

    select
        per_customer.customer_id,
        first_order_date,
        last_order_date,
        order_count,
        purchase_days,
        monetary_value,
        spend_this_month,
        spend_365d_whole_months + coalesce(window_first_month.spend, 0) as spend_365d,
        cast(orders_365d_whole_months + coalesce(window_first_month.orders, 0)
            as {{ dbt.type_bigint() }}) as orders_365d,
        {{ dbt.datediff('last_order_date', month_end(), 'day') }} as recency_days,
        purchase_days - 1 as bgnbd_x,
        {{ as_double(dbt.datediff('first_order_date', 'last_order_date', 'day')) }} / 7 as bgnbd_t_x,
        {{ as_double(dbt.datediff('first_order_date', month_end(), 'day')) }} / 7 as bgnbd_T,
        {#- The Gamma-Gamma model's m_x: mean spend of the x repeat purchase days (the first
            purchase left out, as in Fader, Hardie & Lee 2005); NULL without a repeat. -#}
        case when purchase_days >= 2
            then {{ as_double('monetary_value - first_purchase_day_spend') }} / (purchase_days - 1)
        end as mean_repeat_spend

    from per_customer
    left join window_first_month on window_first_month.customer_id = per_customer.customer_id

)

select * from final
