{#- Who moved where against the previous published month: one row per (from, to) pair.
    Customers without a previous placement come from '(new)'. -#}
with membership as (

    select * from {{ ref('segment_membership') }}

),

final as (

    select
        month_end,
        coalesce(previous_segment_id, '(new)') as from_segment_id,
        segment_id as to_segment_id,
        count(*) as customers

    from membership
    group by month_end, coalesce(previous_segment_id, '(new)'), segment_id

)

select * from final
