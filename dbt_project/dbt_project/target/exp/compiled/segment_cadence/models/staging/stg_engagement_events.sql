with source as (

    select * from "warehouse"."raw"."engagement_events"

),

renamed as (

    select
        event_id,
        customer_id,
        event_type,
        channel,
        event_at,
        cast(event_at as date) as event_date

    from source

)

select * from renamed