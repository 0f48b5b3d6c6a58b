{#- What consumers read: the published segment membership of each month's
    publication in force, the one the ledger names (macros/publication.sql). Same name
    and columns as ever; a view, so nothing is copied twice. -#}
{{ config(**published_view_config("segment_membership")) }}

select
    store.customer_id,
    store.month_end,
    store.segment_id,
    store.definition_version,
    store.previous_segment_id,
    store.months_in_segment,
    store.holdout
from {{ in_force("store_segment_membership") }}
