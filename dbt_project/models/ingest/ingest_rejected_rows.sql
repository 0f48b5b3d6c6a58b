{#- quarantine.rejected_rows: the landed rows of the loaded source that an ingest rule
    refused (models/ingest/ingest_checked.sql), with the first reason and the original record
    as read. Kept per source: a load replaces its source's rows and leaves the other sources'
    alone. Which source is loaded is a parameter of the run (ingest_source), so every landed
    source is named here as a dependency. -#}
-- depends_on: {{ source("landing", "customers") }}, {{ source("landing", "team_members") }}
-- depends_on: {{ source("landing", "orders") }}, {{ source("landing", "engagement_events") }}
-- depends_on: {{ source("landing", "campaign_sends") }}
{{ config(alias="rejected_rows", schema="quarantine", **source_table_config()) }}
{%- set loaded = cadence_var("ingest_source") %}
{#- The record as read: the file's own columns, not the position or the front door's
    canonical rewrites (_as_<column>). #}
{%- set record_columns = [] %}
{%- for column in landed_column_types(loaded) if column != "_source_row" and not column.startswith("_as_") %}
{%- do record_columns.append(column) %}
{%- endfor %}

with refused as (

    select _source_row, _reason from {{ ref("ingest_checked") }} where _reason is not null

),

landed as (

    select * from {{ source("landing", loaded) }}

)

select
    cast('{{ loaded }}' as {{ string_type() }}) as source,
    cast(refused._source_row as bigint) as source_row,
    refused._reason as reason,
    {{ json_record("landed", record_columns) if record_columns else "cast(null as " ~ string_type() ~ ")" }} as record,
    {{ local_now() }} as loaded_at
from refused
inner join landed on landed._source_row = refused._source_row
