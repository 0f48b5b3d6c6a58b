{#- Every customer in exactly one segment for the month: the dictionary's rules in
    priority order, the fallback for the rest. Dwell (months_in_segment) continues from the
    previous month's *published* membership, so only checked months count (none before the
    first publication: the view published.segment_membership does not exist yet). The
    holdout comes from the salted draw of the customer id (macros/holdouts.sql), the same
    every month. -#}
with features as (

    select * from {{ ref('customer_features') }}

),

previous_month as (

    select customer_id, segment_id, months_in_segment
    from {{ source_if_exists('published', 'segment_membership',
                             {'customer_id': 'varchar', 'month_end': 'date', 'segment_id': 'varchar',
                              'months_in_segment': 'integer'}) }} as published
    where month_end = {{ previous_month_end() }}

),

assigned as (

    select
        customer_id,
        month_end,
        {{ segment_case() }} as segment_id

    from features

),

final as (

    select
        assigned.customer_id,
        assigned.month_end,
        assigned.segment_id,
        '{{ cadence_var("definition_version") }}' as definition_version,
        previous_month.segment_id as previous_segment_id,
        case
            when previous_month.segment_id = assigned.segment_id
                then previous_month.months_in_segment + 1
            else 1
        end as months_in_segment,
        {{ holdout_case('assigned.customer_id', 'assigned.segment_id') }} as holdout

    from assigned
    left join previous_month on previous_month.customer_id = assigned.customer_id

)

select * from final
