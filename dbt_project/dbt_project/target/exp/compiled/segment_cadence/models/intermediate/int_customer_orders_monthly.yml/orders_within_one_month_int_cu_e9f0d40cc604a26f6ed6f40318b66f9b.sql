
    with nearby as (

        select order_id, cast(date_trunc('month', order_date) as date) as activity_month
        from "warehouse"."staging"."stg_orders"
        where order_date >= cast('2025-11-01' as date) and order_date < cast('2026-02-01' as date)

    )

    select order_id, min(activity_month) as first_month, max(activity_month) as last_month
    from nearby
    group by order_id
    having min(activity_month) <> max(activity_month)
       and max(case when activity_month = cast('2025-12-01' as date) then 1 else 0 end) = 1
