{#- What consumers read: the published segment transitions of each month's
    publication in force, the one the ledger names (macros/publication.sql). Same name
    and columns as ever; a view, so nothing is copied twice. -#}
{{ config(**published_view_config("segment_transitions")) }}

select
    store.month_end,
    store.from_segment_id,
    store.to_segment_id,
    store.customers
from {{ in_force("store_segment_transitions") }}
