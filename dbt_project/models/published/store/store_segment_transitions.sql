{#- The published segment transitions of every publication, keyed by (month_end,
    publication_id): the build of the month (ref, so it runs only after the build and its
    tests), in the interface's column types, tagged with this publication. Readers see it
    through the view published.segment_transitions once the ledger names this publication
    (macros/publication.sql). -#}
{{ config(**store_table_config()) }}

select
    cast(month_end as date) as month_end,
    cast(from_segment_id as {{ string_type() }}) as from_segment_id,
    cast(to_segment_id as {{ string_type() }}) as to_segment_id,
    cast(customers as bigint) as customers,
    cast({{ publication_id() }} as {{ string_type() }}) as publication_id
from {{ ref('segment_transitions') }}
where month_end = {{ month_end() }}
