{#- The engagement events that pass the ingest rules (macros/ingest.sql), typed and under
    their canonical names: raw.engagement_events, read by models/staging. -#}
{{ config(alias="engagement_events", schema="raw", materialized="table") }}

{{ ingest_accepted("engagement_events") }}
