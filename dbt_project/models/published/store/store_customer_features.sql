{#- The published customer features of every publication, keyed by (month_end,
    publication_id): every column of the build's customer_features (ref, so it runs only
    after the build and its tests), tagged with this publication. Readers see it through the
    view published.customer_features once the ledger names this publication
    (macros/publication.sql). New feature columns are added as they appear. -#}
{{ config(**store_table_config()) }}

select
    features.*,
    cast({{ publication_id() }} as {{ string_type() }}) as publication_id
from {{ ref('customer_features') }} as features
where features.month_end = {{ month_end() }}
