with source as (

    select * from "warehouse"."raw"."team_members"

),

renamed as (

    select
        sender_id,
        name as sender_name,
        team,
        joined_date

    from source

)

select * from renamed