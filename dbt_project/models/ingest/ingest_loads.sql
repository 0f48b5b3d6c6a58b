{#- raw._loads: one row per load of a source (appended), with the fingerprint of what was
    read and checked (files, mapping, bounds; computed by the front door, ingest.py) and the
    rows accepted and refused. The front door skips a load whose fingerprint is the latest
    here; the publish gate binds a release to the latest fingerprints and bounds each
    source's quarantine rate by the latest counts. Built last, so a load interrupted before
    it is simply done again. -#}
-- depends_on: {{ ref("ingest_customers") }}, {{ ref("ingest_team_members") }}
-- depends_on: {{ ref("ingest_orders") }}, {{ ref("ingest_engagement_events") }}
-- depends_on: {{ ref("ingest_campaign_sends") }}, {{ ref("ingest_month_fingerprints") }}
{{ config(alias="_loads", schema="raw", **append_table_config()) }}
{%- set loaded = cadence_var("ingest_source") %}

select
    cast('{{ loaded }}' as {{ string_type() }}) as source,
    cast('{{ cadence_var("ingest_fingerprint") }}' as {{ string_type() }}) as fingerprint,
    {{ local_now() }} as loaded_at,
    (select count(*) from {{ ref("ingest_" ~ loaded) }}) as rows_loaded,
    (
        select count(*) from {{ ref("ingest_rejected_rows") }}
        where source = '{{ loaded }}'
    ) as rows_quarantined
