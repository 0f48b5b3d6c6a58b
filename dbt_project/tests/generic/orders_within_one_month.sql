{#- An order's lines share the order's date, so every order falls in one calendar month: what
    lets the monthly slices (int_customer_orders_monthly) add orders up month by month and
    still count each order once. Checked for the refresh month against the months on either
    side; returns the orders whose lines straddle a month boundary. -#}
{% test orders_within_one_month(model, lines) %}
    {%- set refresh_month = cadence_day("month_end").replace(day=1) -%}
    {%- set before = (refresh_month - modules.datetime.timedelta(days=1)).replace(day=1) -%}
    {%- set after = next_month_start(next_month_start(refresh_month)) %}
    with nearby as (

        select order_id, cast({{ dbt.date_trunc("month", "order_date") }} as date) as activity_month
        from {{ lines }}
        where order_date >= {{ date_literal(before) }} and order_date < {{ date_literal(after) }}

    )

    select order_id, min(activity_month) as first_month, max(activity_month) as last_month
    from nearby
    group by order_id
    having min(activity_month) <> max(activity_month)
       and max(case when activity_month = {{ date_literal(refresh_month) }} then 1 else 0 end) = 1
{% endtest %}
