{#- raw._month_fingerprints: row count and checksum per calendar month of the loaded
    source's accepted rows. The incremental dbt models (macros/monthly_slices.sql) compare
    them with the fingerprints their slices were built from, so a month whose rows changed
    (late or corrected data) is rebuilt on the next refresh; the publish gate reads the
    month's order lines here. Kept per source, rebuilt only when the source is (re)loaded. -#}
-- depends_on: {{ ref("ingest_orders") }}, {{ ref("ingest_engagement_events") }}
-- depends_on: {{ ref("ingest_campaign_sends") }}
{{ config(alias="_month_fingerprints", schema="raw", **source_table_config()) }}
{%- set loaded = cadence_var("ingest_source") %}
{%- set spec = var("ingest_sources")[loaded] %}
{%- if spec.get("month_column") %}

select
    cast('{{ loaded }}' as {{ string_type() }}) as source,
    cast(date_trunc('month', {{ spec["month_column"] }}) as date) as month,
    count(*) as row_count,
    {{ rows_checksum(spec["columns"].keys() | list) }} as fingerprint
from {{ ref("ingest_" ~ loaded) }}
group by 2
{%- else %}

{#- A source without months (customers, team members) has no fingerprints. #}
select
    cast(null as {{ string_type() }}) as source,
    cast(null as date) as month,
    cast(null as bigint) as row_count,
    cast(null as {{ string_type() }}) as fingerprint
where false
{%- endif %}
