{#- The audit trail of assignments: every change of a customer's segment (and every first
    assignment) in the published month, with the definition version behind it. Append-only:
    a row is added once per (customer, month, definition version), so re-publishing a month
    under the same version adds nothing, and a month re-published under another version keeps
    both, because both happened. Never rebuilt from scratch (full_refresh=false): the trail
    is history, not something derived again. -#}
{{ config(**append_table_config()) }}

with membership as (

    select customer_id, month_end, segment_id, previous_segment_id, definition_version
    from {{ source("published", "segment_membership") }}
    where month_end = {{ month_end() }}

),

changes as (

    select *
    from membership
    where previous_segment_id is distinct from segment_id

),

new_changes as (

    select changes.*
    from changes
    {% if is_incremental() -%}
    where not exists (
        select 1
        from {{ this }} as recorded
        where recorded.customer_id = changes.customer_id
          and recorded.month_end = changes.month_end
          and recorded.definition_version = changes.definition_version
    )
    {%- endif %}

),

final as (

    select
        cast(customer_id as {{ string_type() }}) as customer_id,
        cast(month_end as date) as month_end,
        cast(previous_segment_id as {{ string_type() }}) as from_segment_id,
        cast(segment_id as {{ string_type() }}) as to_segment_id,
        cast(definition_version as {{ string_type() }}) as definition_version,
        {{ recorded_at() }} as recorded_at
    from new_changes

)

select * from final
