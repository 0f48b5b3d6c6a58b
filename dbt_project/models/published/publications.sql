{#- The ledger: one row per published month naming the publication in force, with its
    definition version, customers, time, run, Parquet export and approved version. It runs
    after every store model has written this publication's rows, and replacing the month's
    row is the commit point of the whole publication (macros/publication.sql): before it the
    views show the previous publication, after it the new one. Its post-hook deletes the
    superseded publication's store rows in the same transaction. -#}
-- depends_on: {{ ref("store_segment_transitions") }}, {{ ref("store_segment_kpis") }}, {{ ref("store_customer_features") }}
{{ config(**ledger_table_config()) }}

with members as (

    select count(*) as customers
    from {{ ref("store_segment_membership") }}
    where month_end = {{ month_end() }} and publication_id = {{ publication_id() }}

)

select
    {{ month_end() }} as month_end,
    cast('{{ cadence_var("definition_version") }}' as {{ string_type() }}) as definition_version,
    cast(members.customers as bigint) as customers,
    cast({{ local_now() }} as timestamp) as published_at,
    cast('{{ cadence_var("run_id") }}' as {{ string_type() }}) as run_id,
    cast(nullif('{{ cadence_var("export_path") }}', '') as {{ string_type() }}) as export_path,
    cast(nullif('{{ cadence_var("version_label") }}', '') as {{ string_type() }}) as version_label,
    cast({{ publication_id() }} as {{ string_type() }}) as publication_id
from members
