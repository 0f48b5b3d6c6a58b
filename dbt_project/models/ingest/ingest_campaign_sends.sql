{#- The campaign sends that pass the ingest rules (macros/ingest.sql), typed and under
    their canonical names: raw.campaign_sends, read by models/staging. -#}
{{ config(alias="campaign_sends", schema="raw", materialized="table") }}

{{ ingest_accepted("campaign_sends") }}
