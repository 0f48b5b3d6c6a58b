
    
    select
      count(*) as failures,
      count(*) != 0 as should_warn,
      count(*) != 0 as should_error
    from (
      
    
  
    
    

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



  
  
      
    ) dbt_internal_test