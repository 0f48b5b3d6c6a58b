with source as (

    select * from "warehouse"."raw"."orders"

),

renamed as (

    select
        order_line_id,
        order_id,
        customer_id,
        order_date,
        amount,
        category

    from source

)

select * from renamed