with source as (

    select * from "warehouse"."raw"."customers"

),

renamed as (

    select
        customer_id,
        signup_date,
        region,
        age_band,
        language,
        email_consent

    from source

)

select * from renamed