{#- landing.checked: every landed row of the source being loaded, typed under its canonical
    names, with its position and the first ingest rule it fails (NULL: none). Built once per
    load, so the rules read the landed file once: raw.<source> takes the accepted rows and
    quarantine.rejected_rows the refused ones from here. Which source is loaded is a
    parameter of the run (ingest_source), so every landed source is named as a dependency. -#}
-- depends_on: {{ source("landing", "customers") }}, {{ source("landing", "team_members") }}
-- depends_on: {{ source("landing", "orders") }}, {{ source("landing", "engagement_events") }}
-- depends_on: {{ source("landing", "campaign_sends") }}
{{ config(alias="checked", schema="landing", materialized="table") }}
{%- set loaded = cadence_var("ingest_source") %}

with {{ ingest_checked(loaded) }}

select
    {%- for column in var("ingest_sources")[loaded]["columns"] %}
    {{ column }},
    {%- endfor %}
    _source_row,
    _reason
from checked
