{#- The quarterly candidate's membership, computed beside production and never published: the
    candidate dictionary (segment_cadence/defs/strategic) compiled like the production one and
    passed as the same vars (segment_rules, fallback_segment), run as the same CASE
    (macros/segment_case.sql) over the published features of the quarter's last month. -#}
{{ config(**keyed_table_config("quarter")) }}

select
    {{ text_literal(cadence_var("quarter")) }} as quarter,
    features.month_end,
    features.customer_id,
    {{ segment_case() }} as segment_id

from {{ source_if_exists("published", "customer_features",
                         {"customer_id": "varchar", "month_end": "date"}) }} as features
where features.month_end = {{ month_end() }}
