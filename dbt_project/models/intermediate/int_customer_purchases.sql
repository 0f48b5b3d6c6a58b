{#- Purchase history per customer as of month_end: the inputs of RFM and of BG/NBD.
    BG/NBD counts repeat purchase *days* in weeks, as in Fader, Hardie & Lee (2005):
    x = distinct purchase days - 1, t_x = first to last purchase, T = first purchase to month_end. -#}
with orders as (

    select * from {{ ref('stg_orders') }}
    where order_date <= {{ month_end() }}

),

per_customer as (

    select
        customer_id,
        min(order_date) as first_order_date,
        max(order_date) as last_order_date,
        count(distinct order_id) as order_count,
        count(distinct order_date) as purchase_days,
        sum(amount) as monetary_value,
        sum(case when order_date >= {{ month_start() }} then amount else 0 end) as spend_this_month,
        sum(case when order_date > {{ days_before_month_end(365) }} then amount else 0 end) as spend_365d,
        count(distinct case when order_date > {{ days_before_month_end(365) }} then order_id end)
            as orders_365d

    from orders
    group by customer_id

),

final as (

    select
        customer_id,
        first_order_date,
        last_order_date,
        order_count,
        purchase_days,
        monetary_value,
        spend_this_month,
        spend_365d,
        orders_365d,
        {{ dbt.datediff('last_order_date', month_end(), 'day') }} as recency_days,
        purchase_days - 1 as bgnbd_x,
        {{ as_double(dbt.datediff('first_order_date', 'last_order_date', 'day')) }} / 7 as bgnbd_t_x,
        {{ as_double(dbt.datediff('first_order_date', month_end(), 'day')) }} / 7 as bgnbd_T

    from per_customer

)

select * from final
