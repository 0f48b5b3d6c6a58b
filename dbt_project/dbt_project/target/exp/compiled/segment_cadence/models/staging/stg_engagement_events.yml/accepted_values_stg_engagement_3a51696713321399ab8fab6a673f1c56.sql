
    
    

with all_values as (

    select
        event_type as value_field,
        count(*) as n_records

    from "warehouse"."staging"."stg_engagement_events"
    group by event_type

)

select *
from all_values
where value_field not in (
    'email_open','email_click','site_visit','store_visit','reply'
)


