with source as (

    select * from "warehouse"."raw"."campaign_sends"

),

renamed as (

    select
        send_id,
        campaign_id,
        campaign_name,
        customer_id,
        sender_id,
        channel,
        targeted_segment as targeted_segment_id,
        sent_at,
        cast(sent_at as date) as sent_date

    from source

)

select * from renamed