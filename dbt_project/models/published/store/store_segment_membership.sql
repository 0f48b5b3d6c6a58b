{#- The published segment membership of every publication, keyed by (month_end,
    publication_id): the build of the month (ref, so it runs only after the build and its
    tests), in the interface's column types, tagged with this publication. Readers see it
    through the view published.segment_membership once the ledger names this publication
    (macros/publication.sql). -#}
{{ config(**store_table_config()) }}

select
    cast(customer_id as {{ string_type() }}) as customer_id,
    cast(month_end as date) as month_end,
    cast(segment_id as {{ string_type() }}) as segment_id,
    cast(definition_version as {{ string_type() }}) as definition_version,
    cast(previous_segment_id as {{ string_type() }}) as previous_segment_id,
    cast(months_in_segment as integer) as months_in_segment,
    cast({{ publication_id() }} as {{ string_type() }}) as publication_id,
    cast(holdout as {{ string_type() }}) as holdout
from {{ ref('segment_membership') }}
where month_end = {{ month_end() }}
