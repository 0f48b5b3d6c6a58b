{#- Purchases per customer and calendar month: the building block of the purchase history.

    Incremental: a refresh builds only the month slices it must (macros/monthly_slices.sql:
    the refresh month, plus months never built or whose orders changed), so its cost follows
    the new month's orders, not the whole history. Each slice is replaced whole, never
    appended to, so re-running a month or running months out of order never counts twice.

    Every column recombines exactly across months: purchase days never span months, and an
    order's lines share the order's date, so an order falls in one month (checked for every
    refreshed month by the orders_within_one_month test).

    On Spark the model is partitioned by activity_month and each slice is a partition,
    overwritten whole (insert_overwrite); Parquet tables take no DELETE, so the slice hooks
    drop the partitions of months whose rows have gone. -#}
{{ config(
    materialized="incremental",
    schema="history",
    unique_key=(none if target.type == "spark" else "activity_month"),
    incremental_strategy=month_slice_strategy(),
    partition_by=(["activity_month"] if target.type == "spark" else none),
    file_format=("parquet" if target.type == "spark" else none),
    on_schema_change="sync_all_columns",
    pre_hook="{{ month_slices_pre_hook(['orders']) }}",
    post_hook="{{ month_slices_post_hook(['orders']) }}",
) }}
{%- set plan = month_slice_plan(["orders"]) %}

with orders as (

    select
        customer_id,
        order_id,
        order_date,
        amount,
        cast({{ dbt.date_trunc("month", "order_date") }} as date) as activity_month
    from {{ ref("stg_orders") }}
    where {{ month_slice_filter(plan, "order_date") }}

),

per_customer_day as (

    select
        customer_id,
        activity_month,
        order_date,
        count(distinct order_id) as orders,
        sum(amount) as spend

    from orders
    group by customer_id, activity_month, order_date

),

per_customer_month as (

    {#- An order's lines share its date, so the day's distinct orders add up to the month's.
        first_day_spend is what the month's first purchase day brought: for the customer's
        first month it is the first purchase, which the spend model leaves out (it counts
        repeat purchases only). -#}
    select
        customer_id,
        activity_month,
        min(order_date) as first_order_date,
        max(order_date) as last_order_date,
        cast(sum(orders) as {{ dbt.type_bigint() }}) as orders,
        count(*) as purchase_days,
        sum(spend) as spend,
        min_by(spend, order_date) as first_day_spend

    from per_customer_day
    group by customer_id, activity_month

)

select * from per_customer_month
