
  
  create view "warehouse"."staging"."stg_customers__dbt_tmp" as (
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
  );
